"""`make run` serves where HOST and PORT say: the command line, the environment, `.env`, or
the defaults, in that order (the server reads the same values to know its own address)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def _served_at(folder: Path, *args: str, **environ: str) -> str:
    for name in ("Makefile", "requirements.txt", "requirements-dev.txt"):
        shutil.copy(ROOT / name, folder / name)
    env = {key: value for key, value in os.environ.items() if key not in ("HOST", "PORT")}
    completed = subprocess.run(
        ["make", "--no-print-directory", "-n", "run", *args],
        cwd=folder,
        env={**env, **environ},
        capture_output=True,
        text=True,
        check=True,
    )
    served = completed.stdout.strip().splitlines()[-1]
    return served.split(" run ", 1)[1]


def test_defaults(tmp_path):
    assert _served_at(tmp_path) == "--host 127.0.0.1 --port 5000"


@pytest.mark.parametrize(
    "lines",
    [
        'HOST=0.0.0.0\nPORT="8001"',
        "# PORT=1\nHOST='0.0.0.0'\nPORT=8001  # local",
        "export HOST=0.0.0.0\nPORT = 8001",
        "PORT=1\nHOST=0.0.0.0\nPORT=8001",
    ],
)
def test_dotenv_values_are_used(tmp_path, lines):
    (tmp_path / ".env").write_text(lines + "\n")
    assert _served_at(tmp_path) == "--host 0.0.0.0 --port 8001"


def test_environment_and_command_line_win_over_dotenv(tmp_path):
    (tmp_path / ".env").write_text("PORT=8001\n")
    assert _served_at(tmp_path, PORT="9000") == "--host 127.0.0.1 --port 9000"
    assert _served_at(tmp_path, "PORT=7000", PORT="9000") == "--host 127.0.0.1 --port 7000"
