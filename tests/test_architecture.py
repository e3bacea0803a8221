"""The project's structure, kept true by tests: read the failure message, it says what to do.

- The sandbox has the planned layout: each package and module of sandbox/ named below.
- The import contracts in pyproject.toml ([tool.importlinter]) hold: the sandbox's layers
  (api -> engine -> routing -> state -> store | domain -> leaves), callbacks only on domain,
  store alone, domain pure, Flask only at the edge, the sandbox never on the app's modules.
  `lint-imports --contract ID` (from the repo root, in the venv) shows one contract's report.
- No import cycle anywhere in the project, module by module.
- No product file over 600 lines and no class over 400 (tests/ excepted), but for the few
  allowed below, each with its reason (which its docstring also states).
- Every write of a task's, reservation's or worker's status is in
  taskrouter_sandbox/state/transitions.py.

Imports under `if TYPE_CHECKING:` never run, so none of these rules counts them.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import textwrap
import tomllib
from collections import deque
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# The folders at the repo's top that hold no product code.
NOT_PRODUCT = {"tests"}


def _top_level_names() -> list[str]:
    """Every top-level module and package of the project, found on disk (so a new one counts).

    tests/ is not a package (no __init__.py) and is left out; so are hidden folders (.venv).
    """
    names = [p.stem for p in ROOT.glob("*.py")]
    names += [
        p.parent.name
        for p in ROOT.glob("*/__init__.py")
        if not p.parent.name.startswith(".") and p.parent.name not in NOT_PRODUCT
    ]
    return sorted(names)


def _run_python(script: str, cwd: Path) -> str:
    """Run a script in a fresh interpreter of this venv (import-linter and grimp look modules
    up with importlib, which a test process that has imported the app would answer from
    sys.modules)."""
    env = {**os.environ, "COLUMNS": "110", "NO_COLOR": "1", "TERM": "dumb"}
    env.pop("PYTHONPATH", None)
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"helper script failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


# --- The planned layout -----------------------------------------------------------------------

SANDBOX_PACKAGES = {
    "eventbridge",
    "api",
    "engine",
    "routing",
    "state",
    "store",
    "domain",
    "callbacks",
    "testing",
}
SANDBOX_MODULES = {
    "runtime",
    "clock",
    "expressions",
    "jsonlimits",
    "scheduler",
    "seed",
    "pytest_plugin",
    "standalone",
    "__main__",
}


def test_sandbox_has_the_planned_layout() -> None:
    """The contracts name these; a module that fits none of them needs a place in the design."""
    sandbox = ROOT / "taskrouter_sandbox"
    packages = {p.parent.name for p in sandbox.glob("*/__init__.py")}
    modules = {p.stem for p in sandbox.glob("*.py")} - {"__init__"}
    problems = [
        f"taskrouter_sandbox/{name}/ should be a package (a folder with __init__.py)"
        for name in sorted(SANDBOX_PACKAGES - packages)
    ]
    problems += [
        f"taskrouter_sandbox/{name}.py should exist" for name in sorted(SANDBOX_MODULES - modules)
    ]
    problems += [
        f"taskrouter_sandbox/{name} is not in the planned layout"
        for name in sorted((packages | modules) - SANDBOX_PACKAGES - SANDBOX_MODULES)
    ]
    if problems:
        pytest.fail(
            "taskrouter_sandbox/ does not have the planned layout:\n  "
            + "\n  ".join(problems)
            + "\nThe layout: __init__ (Flask wiring), runtime (the Sandbox object), api -> engine"
            " -> routing -> state -> store | domain, callbacks, seed, scheduler, the entry points"
            " testing and pytest_plugin, and the leaves"
            " clock, expressions, jsonlimits. A new module goes inside one of these packages; a new"
            " top-level one also needs its place in pyproject.toml's [tool.importlinter] contracts"
            " and in SANDBOX_PACKAGES or SANDBOX_MODULES here.",
            pytrace=False,
        )


# --- import-linter's contracts ----------------------------------------------------------------

# Each contract is checked on its own, so that one which cannot run (a module it names does
# not exist yet) does not hide the others' reports.
_LINT_SCRIPT = """
import contextlib, io, json, sys, tomllib
from importlinter.cli import lint_imports  # import-linter's Python API

with open("pyproject.toml", "rb") as f:
    contracts = tomllib.load(f)["tool"]["importlinter"]["contracts"]
results = []
for contract in contracts:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = lint_imports(limit_to_contracts=(contract["id"],), no_cache=True, no_logo=True)
    results.append({"id": contract["id"], "name": contract["name"], "kept": status == 0,
                    "report": out.getvalue()})
json.dump(results, sys.stdout)
"""


def test_import_contracts_hold() -> None:
    with open(ROOT / "pyproject.toml", "rb") as f:
        contracts = tomllib.load(f)["tool"]["importlinter"]["contracts"]
    assert contracts, "pyproject.toml has no [[tool.importlinter.contracts]]"
    assert all("id" in c for c in contracts), "every contract needs an id (for --contract)"
    results = json.loads(_run_python(_LINT_SCRIPT, ROOT))
    broken = [r for r in results if not r["kept"]]
    if broken:
        reports = "\n".join(
            f"contract {r['id']} ({r['name']}):\n"
            + textwrap.indent(_violations(r["report"]), "    ")
            + "\n"
            for r in broken
        )
        pytest.fail(
            f"{len(broken)} of {len(results)} import contracts (pyproject.toml,"
            " [tool.importlinter]) are broken or cannot run:\n\n"
            f"{reports}\n"
            "Each report names the imports (module and line) that break the rule, or a module the"
            " contract names that does not exist yet. `lint-imports --contract ID` from the repo"
            " root shows one again. Fix the import; change a contract only when the design"
            " changes.",
            pytrace=False,
        )


def _violations(report: str) -> str:
    """import-linter's report of one contract without its headings and totals."""
    lines = report.strip().splitlines()
    if "Broken contracts" in lines:
        # Skip "Broken contracts" and its underline, then the contract's name and its underline.
        start = lines.index("Broken contracts") + 2
        while start < len(lines) and not lines[start].strip():
            start += 1
        lines = lines[start + 2 :]
    text = "\n".join(line.rstrip() for line in lines).strip()
    return re.sub(r"\n{3,}", "\n\n", text)


# --- No import cycles -------------------------------------------------------------------------

# grimp takes only packages as roots. Each single-file module (app.py, config.py, ...) is
# shown to it as a package of the same name whose __init__.py is that file, in a folder that
# links to the real files: module names, line numbers and lines stay the real ones.
_GRAPH_SCRIPT = """
import json, sys
import grimp

graph = grimp.build_graph(*NAMES, exclude_type_checking_imports=True, cache_dir=None)
edges = []
for importer in sorted(graph.modules):
    for imported in sorted(graph.find_modules_directly_imported_by(importer)):
        details = graph.get_import_details(importer=importer, imported=imported)
        lines = [(d["line_number"], d["line_contents"]) for d in details]
        edges.append([importer, imported, lines])
json.dump({"modules": sorted(graph.modules), "edges": edges}, sys.stdout)
"""


@pytest.fixture(scope="module")
def import_graph(tmp_path_factory: pytest.TempPathFactory) -> dict:
    names = _top_level_names()
    shim = tmp_path_factory.mktemp("project_as_packages")
    for name in names:
        if (ROOT / f"{name}.py").is_file():
            (shim / name).mkdir()
            (shim / name / "__init__.py").symlink_to(ROOT / f"{name}.py")
        else:
            (shim / name).symlink_to(ROOT / name, target_is_directory=True)
    return json.loads(_run_python(_GRAPH_SCRIPT.replace("NAMES", json.dumps(names)), shim))


def _strongly_connected_components(
    nodes: list[str], successors: dict[str, list[str]]
) -> list[list[str]]:
    """Tarjan's algorithm, iterative (no recursion limit to hit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for start in nodes:
        if start in index:
            continue
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        work: list[tuple[str, Iterator[str]]] = [(start, iter(successors.get(start, ())))]
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(successors.get(child, ()))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    components.append(sorted(component))
    return components


def _shortest_cycle(start: str, members: set[str], successors: dict[str, list[str]]) -> list[str]:
    """The shortest path start -> ... -> start inside one component (breadth first)."""
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for child in successors.get(node, ()):
            if child not in members:
                continue
            if child == start:
                path = [node]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return [*reversed(path), start]
            if child not in came_from:
                came_from[child] = node
                queue.append(child)
    raise AssertionError(f"no cycle through {start}")  # pragma: no cover


def _module_path(module: str) -> str:
    base = ROOT.joinpath(*module.split("."))
    path = base / "__init__.py" if base.is_dir() else base.with_suffix(".py")
    return path.relative_to(ROOT).as_posix()


def test_no_import_cycles(import_graph: dict) -> None:
    """Module by module, across every top-level module and package of the project."""
    modules = import_graph["modules"]
    assert len(modules) > len(_top_level_names()), "the import graph came out empty"
    successors: dict[str, list[str]] = {m: [] for m in modules}
    lines: dict[tuple[str, str], list] = {}
    for importer, imported, where in import_graph["edges"]:
        successors[importer].append(imported)
        lines[importer, imported] = where
    cycles = [
        c
        for c in _strongly_connected_components(modules, successors)
        if len(c) > 1 or c[0] in successors[c[0]]
    ]
    described = []
    for component in cycles:
        path = _shortest_cycle(component[0], set(component), successors)
        text = f"{len(component)} modules import each other: {', '.join(component)}\n"
        text += "  for instance:\n"
        for importer, imported in pairwise(path):
            line_number, line = (lines[importer, imported] or [(0, "?")])[0]
            text += f"    {importer} -> {imported}   ({_module_path(importer)}:{line_number}: "
            text += f"{line.strip()})\n"
        described.append(text)
    if cycles:
        pytest.fail(
            f"{len(cycles)} import cycle(s) (imports under `if TYPE_CHECKING:` not counted):\n\n"
            + "\n".join(described)
            + "\nA cycle means neither module can be understood, tested or moved without the other."
            " Break it by moving what both need into a lower module, or by passing a value or a"
            " callable down instead of importing upwards.",
            pytrace=False,
        )


# --- Sizes ------------------------------------------------------------------------------------

MAX_FILE_LINES = 600
MAX_CLASS_LINES = 400

# Product files allowed over MAX_FILE_LINES, each with its reason; the file's docstring must say
# "600 lines" and why, too. Keep this short: the list is for code that reads best whole.
LONG_FILES_ALLOWED = {
    "taskrouter_sandbox/expressions.py": "one grammar: its tokenizer, parser and evaluator read "
    "best together, and nothing else imports their parts",
}
# Classes ("path::Class" or "path::Outer.Inner") allowed over MAX_CLASS_LINES, with reasons; the
# class's docstring must say "400 lines" and why.
LONG_CLASSES_ALLOWED: dict[str, str] = {}


def _product_files() -> list[Path]:
    """The app's modules at the repo's top and every .py file of its packages (sandbox, routes,
    cli, bench). tests/ is left out: a test file holds one module's cases and grows with them,
    and its tests are read one by one, not as one design."""
    files = list(ROOT.glob("*.py"))
    for name in _top_level_names():
        if (ROOT / name).is_dir():
            files += (ROOT / name).rglob("*.py")
    return sorted(f for f in files if "__pycache__" not in f.parts)


def _classes(tree: ast.AST, prefix: str = "") -> Iterator[tuple[str, ast.ClassDef]]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.ClassDef):
            yield prefix + node.name, node
            yield from _classes(node, prefix + node.name + ".")
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield from _classes(node, prefix + node.name + ".<locals>.")


def test_files_and_classes_stay_small() -> None:
    problems = []
    seen_files, seen_classes = set(), set()
    for path in _product_files():
        relative = path.relative_to(ROOT).as_posix()
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text, filename=relative)
        count = len(text.splitlines())
        if count > MAX_FILE_LINES:
            seen_files.add(relative)
            if relative not in LONG_FILES_ALLOWED:
                problems.append(f"{relative} has {count} lines (at most {MAX_FILE_LINES})")
            elif f"{MAX_FILE_LINES} lines" not in (ast.get_docstring(tree) or ""):
                problems.append(
                    f"{relative} is allowed {count} lines, but its docstring does not say why "
                    f'("over {MAX_FILE_LINES} lines because ...")'
                )
        for name, node in _classes(tree):
            key = f"{relative}::{name}"
            size = node.end_lineno - node.lineno + 1
            if size > MAX_CLASS_LINES:
                seen_classes.add(key)
                if key not in LONG_CLASSES_ALLOWED:
                    problems.append(
                        f"class {name} ({relative}:{node.lineno}) has {size} lines "
                        f"(at most {MAX_CLASS_LINES})"
                    )
                elif f"{MAX_CLASS_LINES} lines" not in (ast.get_docstring(node) or ""):
                    problems.append(
                        f"class {key} is allowed {size} lines, but its docstring does not say why"
                    )
    for stale in sorted(set(LONG_FILES_ALLOWED) - seen_files):
        problems.append(
            f"{stale} is no longer over {MAX_FILE_LINES} lines (or is gone): remove"
            " it from LONG_FILES_ALLOWED"
        )
    for stale in sorted(set(LONG_CLASSES_ALLOWED) - seen_classes):
        problems.append(
            f"{stale} is no longer over {MAX_CLASS_LINES} lines (or is gone): remove"
            " it from LONG_CLASSES_ALLOWED"
        )
    if problems:
        pytest.fail(
            "Files or classes too long:\n  "
            + "\n  ".join(problems)
            + "\nSplit by responsibility (one module per resource or concern, each a page or a"
            " few long). Only code that truly reads best whole may stay long: add it to"
            " LONG_FILES_ALLOWED or LONG_CLASSES_ALLOWED in tests/test_architecture.py with the"
            " reason, and say the reason in its docstring.",
            pytrace=False,
        )


# --- Status writes in one place ---------------------------------------------------------------

TRANSITIONS = "taskrouter_sandbox/state/transitions.py"
# table -> the columns that are its status.
STATUS_COLUMNS = {
    "tasks": {"assignment_status"},
    "reservations": {"reservation_status"},
    "workers": {"activity_sid", "available"},
}
_SQL_UPDATE = re.compile(
    r"\bUPDATE\s+(?:OR\s+\w+\s+)?(tasks|reservations|workers)\s+SET\s+(.*?)(?:\bWHERE\b|\bFROM\b"
    r"|\bRETURNING\b|;|$)",
    re.IGNORECASE | re.DOTALL,
)
_SQL_INSERT = re.compile(
    r"\b(?:INSERT|REPLACE)\s+(?:OR\s+\w+\s+)?INTO\s+(tasks|reservations|workers)\s*\(([^)]*)\)",
    re.IGNORECASE,
)


def _string_value(node: ast.AST) -> str | None:
    """A string literal's text; an f-string's with each {...} as a placeholder."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(
            part.value if isinstance(part, ast.Constant) else "?" for part in node.values
        )
    return None


def _sql_status_writes(tree: ast.AST) -> Iterator[tuple[int, str, set[str]]]:
    """(line, table, status columns) for each SQL UPDATE ... SET or INSERT INTO in a literal."""
    for node in ast.walk(tree):
        text = _string_value(node)
        if text is None:
            continue
        for match in _SQL_UPDATE.finditer(text):
            table, assignments = match.group(1).lower(), match.group(2)
            written = {m.lower() for m in re.findall(r"(\w+)\s*=", assignments)}
            if columns := written & STATUS_COLUMNS[table]:
                yield node.lineno, table, columns
        for match in _SQL_INSERT.finditer(text):
            table = match.group(1).lower()
            written = {c.strip().lower() for c in match.group(2).split(",")}
            if columns := written & STATUS_COLUMNS[table]:
                yield node.lineno, table, columns


def _dict_keys(node: ast.AST, scope: ast.AST, depth: int = 0) -> set[str]:
    """The string keys a dict expression can hold: a literal's keys, dict(k=...)'s names, and for
    a name, what the enclosing function (or module) puts into it."""
    if depth > 5:
        return set()
    if isinstance(node, ast.Dict):
        keys = {k.value for k in node.keys if isinstance(k, ast.Constant)}
        for key, value in zip(node.keys, node.values, strict=True):
            if key is None:  # {**other}
                keys |= _dict_keys(value, scope, depth + 1)
        return keys
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict":
        keys = {kw.arg for kw in node.keywords if kw.arg}
        for arg in node.args:
            keys |= _dict_keys(arg, scope, depth + 1)
        return keys
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _dict_keys(node.left, scope, depth + 1) | _dict_keys(node.right, scope, depth + 1)
    if isinstance(node, ast.Name):
        return _name_keys(node.id, scope, depth + 1)
    return set()


def _name_keys(name: str, scope: ast.AST, depth: int) -> set[str]:
    keys: set[str] = set()
    for node in ast.walk(scope):
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name) and target.id == name:
                    keys |= _dict_keys(node.value, scope, depth)
                elif (
                    isinstance(target, ast.Subscript)
                    and isinstance(target.value, ast.Name)
                    and target.value.id == name
                    and isinstance(target.slice, ast.Constant)
                    and isinstance(target.slice.value, str)
                ):
                    keys.add(target.slice.value)  # values["assignment_status"] = ...
        elif (
            isinstance(node, ast.AugAssign)
            and isinstance(node.target, ast.Name)
            and node.target.id == name
        ):
            keys |= _dict_keys(node.value, scope, depth)  # values |= {...}
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == name
            and node.func.attr in {"update", "setdefault"}
        ):
            if node.func.attr == "setdefault" and node.args:
                keys |= {node.args[0].value} if isinstance(node.args[0], ast.Constant) else set()
            else:
                keys |= {kw.arg for kw in node.keywords if kw.arg}
                for arg in node.args:
                    keys |= _dict_keys(arg, scope, depth)
    return keys


def _table_name(node: ast.AST, module_constants: dict[str, str]) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        return module_constants.get(node.id)
    return None


def _own_nodes(scope: ast.AST) -> Iterator[ast.AST]:
    """The nodes of a function (or module) but not those of the functions inside it."""
    for child in ast.iter_child_nodes(scope):
        if not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            yield child
            yield from _own_nodes(child)


def _call_status_writes(tree: ast.Module) -> Iterator[tuple[int, str, set[str]]]:
    """(line, table, status columns) for each <x>.update(table, sid, values) or
    <x>.insert(table, values) call (the store's Transaction API, whoever holds it)."""
    constants = {
        target.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    scopes = [tree] + [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
    ]
    for scope in scopes:
        for node in _own_nodes(scope):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in {"update", "insert"}
            ):
                continue
            arguments = {kw.arg: kw.value for kw in node.keywords if kw.arg}
            table_node = node.args[0] if node.args else arguments.get("table")
            table = _table_name(table_node, constants) if table_node is not None else None
            if table not in STATUS_COLUMNS:
                continue
            values = [*node.args[1:], *(v for k, v in arguments.items() if k != "table")]
            keys: set[str] = set()
            for value in values:
                keys |= _dict_keys(value, scope)
            if columns := keys & STATUS_COLUMNS[table]:
                yield node.lineno, table, columns


def _status_writes(path: Path) -> list[tuple[int, str, set[str]]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return sorted(
        {*map(_freeze, _call_status_writes(tree)), *map(_freeze, _sql_status_writes(tree))}
    )


def _freeze(write: tuple[int, str, set[str]]) -> tuple[int, str, frozenset[str]]:
    return write[0], write[1], frozenset(write[2])


def _is_schema(relative: str) -> bool:
    """The store's schema (tables, triggers, migrations) names the columns but writes no status."""
    return relative == "taskrouter_sandbox/store.py" or relative.startswith(
        "taskrouter_sandbox/store/"
    )


def test_status_writes_only_in_transitions() -> None:
    outside = []
    inside: list[tuple[int, str, frozenset[str]]] = []
    for path in sorted((ROOT / "taskrouter_sandbox").rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if _is_schema(relative) or "__pycache__" in path.parts:
            continue
        writes = _status_writes(path)
        if relative == TRANSITIONS:
            inside = writes
            continue
        outside += [
            f"{relative}:{line}: writes {table}.{'/'.join(sorted(columns))}"
            for line, table, columns in writes
        ]
    problems = []
    if not (ROOT / TRANSITIONS).is_file():
        problems.append(f"{TRANSITIONS} does not exist")
    elif missing := sorted(set(STATUS_COLUMNS) - {table for _, table, _ in inside}):
        problems.append(
            f"no status write of {', '.join(missing)} found in {TRANSITIONS}: this test may no"
            " longer see them where they are. It looks for <x>.update(table, sid, values) and"
            " <x>.insert(table, values) calls whose table is a literal (or a module constant)"
            " and whose values are a dict literal or a dict built in the same function, and for"
            " SQL UPDATE ... SET / INSERT INTO literals. Write them so, or teach the test the new"
            " form"
        )
    if outside:
        problems.append(f"{len(outside)} status write(s) outside {TRANSITIONS}:")
        problems += [f"  {write}" for write in outside]
    if problems:
        pytest.fail(
            "\n".join(problems)
            + "\n\nA task's assignment_status, a reservation's reservation_status and a worker's"
            f" activity_sid/available change only in {TRANSITIONS}: one place checks every move"
            " against the lifecycles (sandbox.domain) and does what follows from it. Call its"
            " functions instead of writing the column (tx.update, tx.insert or SQL UPDATE ..."
            " SET). The store's schema (taskrouter_sandbox/store/) is not a write and is not"
            " searched.",
            pytrace=False,
        )
