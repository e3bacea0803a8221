"""Benchmark 4: the wall time of `make test` once installed: its three commands (ruff check,
ruff format --check, pytest) run the way the Makefile runs them, browser tests left out if any.
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

from bench.common import BIN, REPO_ROOT, Report, Row

TARGET_SECONDS = 60.0
BROWSER_MARKER = "browser"
COMMAND_TIMEOUT = 600


def has_browser_marker(root: Path = REPO_ROOT) -> bool:
    """True when pytest's settings register a `browser` marker (tests needing a browser)."""
    try:
        settings = (root / "pyproject.toml").read_text(encoding="utf-8")
    except OSError:
        return False
    return re.search(rf"^\s*[\"']{BROWSER_MARKER}\b", settings, re.MULTILINE) is not None


def commands(root: Path = REPO_ROOT) -> list[list[str]]:
    pytest = [str(BIN / "pytest")]
    if has_browser_marker(root):
        pytest += ["-m", f"not {BROWSER_MARKER}"]
    return [
        [str(BIN / "ruff"), "check", "."],
        [str(BIN / "ruff"), "format", "--check", "."],
        pytest,
    ]


def _summary(output: str) -> str:
    """pytest's last line, e.g. '312 passed, 2 skipped in 21.03s'."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def run() -> Report:
    timings: list[tuple[str, float]] = []
    failing: list[str] = []
    summary = ""
    for argv in commands():
        name = " ".join([Path(argv[0]).name, *argv[1:]])
        started = time.perf_counter()
        completed = subprocess.run(
            argv,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
        timings.append((name, time.perf_counter() - started))
        if completed.returncode != 0:
            # The time still counts; the failure is reported beside it.
            failing.append(f"`{name}` ({completed.returncode})")
        summary = _summary(completed.stdout or completed.stderr)
    total = sum(seconds for _, seconds in timings)
    pytest_seconds = timings[-1][1]
    report = Report("4. Test suite", "make test", "pytest alone")
    report.add(
        Row(
            "wall time",
            total,
            "s",
            pytest_seconds,
            target=f"< {TARGET_SECONDS:g} s",
            met=total < TARGET_SECONDS,
            headline=True,
        ),
        Row("commands failing", len(failing), "of 3", target="0", met=not failing),
    )
    report.notes += [
        "Commands: " + "; ".join(f"`{name}` {seconds:.1f} s" for name, seconds in timings) + ".",
        f"pytest: {summary}.",
        *([f"Failing: {', '.join(failing)}."] if failing else []),
        "Browser tests: "
        + ("left out with -m 'not browser'." if has_browser_marker() else "none registered."),
    ]
    return report
