// What the page's scripts (console.js, desk.js) share: el(), which builds an element from a
// tag, attributes and children, with text always as text (never parsed as HTML).
"use strict";

window.pageDom = Object.freeze({
  el(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      if (value === null || value === undefined || value === false) continue;
      node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  },
});
