"""The README's "Use the sandbox in your own tests" example, run as written by pytest in a folder
of its own, as a user's project would run it: through the installed plugin's fixture, in-process
and over HTTP."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_readme import blocks

TITLE = "Use the sandbox in your own tests"


def test_the_readme_shows_one_python_example() -> None:
    assert [language for language, _ in blocks(TITLE)].count("python") == 1


@pytest.mark.parametrize("transport", ["wsgi", "http"])
def test_the_readme_fixture_example_passes_as_written(tmp_path: Path, transport: str) -> None:
    (example,) = [body for language, body in blocks(TITLE) if language == "python"]
    (tmp_path / "test_from_readme.py").write_text(example)
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--taskrouter-sandbox-transport={transport}",
            "test_from_readme.py",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "1 passed" in completed.stdout, completed.stdout
