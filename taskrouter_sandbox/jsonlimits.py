"""How deeply a JSON document given in a request may nest, checked before it is parsed.

Python's json module parses and serialises recursively: about 1,000 levels of ``[[[[...`` (2 KB,
well within the size any Attributes or Configuration may have) raise RecursionError, which no
caller was written to expect. So every JSON value read from a request is scanned first,
without recursion, and refused when it nests deeper than MAX_DEPTH. Twilio documents sizes
(https://www.twilio.com/docs/taskrouter/limits) but no depth; 64 levels is far more than any
routing document uses, is the same bound the expression parser puts on parentheses, and leaves
every later walk (parse, re-serialise, store) thousands of frames away from the recursion limit.

Nothing here imports from the sandbox, so the store, the engine, the API and the quickstart's
own routes can all use it without an import cycle.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 64

# A string (so brackets inside it are not counted), a bracket, or a colon (a member's key
# is the string just before one). DOTALL: a backslash before a newline is still an escape.
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}:]', re.DOTALL)


class TooDeep(ValueError):
    """A JSON document nests arrays and objects deeper than the limit.

    key is the top-level object's member the limit was crossed in, when the document is an
    object (a JSON request body names the parameter that way); otherwise None.
    """

    def __init__(self, limit: int, key: str | None = None) -> None:
        super().__init__(f"must nest arrays and objects at most {limit} levels deep")
        self.limit = limit
        self.key = key


def check_depth(text: str | bytes, limit: int = MAX_DEPTH) -> None:
    """Raise TooDeep if text nests deeper than limit; text that is not JSON passes (the parser
    then says why)."""
    if isinstance(text, bytes | bytearray):
        # Only for counting: json.loads reads the bytes themselves, as it always did.
        text = bytes(text).decode(json.detect_encoding(text), errors="replace")
    level = 0
    key: str | None = None
    previous = ""
    for match in _TOKEN.finditer(text):
        token = match.group()
        if token in "[{":
            level += 1
            if level > limit:
                raise TooDeep(limit, key)
        elif token in "]}":
            level -= 1
        elif token == ":" and level == 1 and previous.startswith('"'):
            try:
                key = json.loads(previous)
            except ValueError:
                key = None
        previous = token


def loads(text: str | bytes, limit: int = MAX_DEPTH, **options: Any) -> Any:
    """json.loads for text from a request: TooDeep (a ValueError) past limit levels."""
    check_depth(text, limit)
    try:
        return json.loads(text, **options)
    except RecursionError:
        # Not reachable within the limit; kept so that no parse can ever raise it.
        raise TooDeep(limit) from None
