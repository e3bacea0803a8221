"""The Makefile: `make run` serves where HOST and PORT say (the command line, the environment,
`.env`, or the defaults, in that order; the server reads the same values to know its own
address); a Python older than the project supports stops make before a venv is made; and
`make test` fetches the contract tests' description of TaskRouter once, and `make run` and
`make test` install the desks' Worker SDK once, without failing when they cannot. Fake
`python3` and `npm` scripts stand in for real ones, so no pyenv or network is needed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def _copy_project(folder: Path) -> None:
    for name in (
        "Makefile",
        "pyproject.toml",
        "requirements.txt",
        "requirements-dev.txt",
        "tests/node/package.json",
        "tests/node/package-lock.json",
        "desk/package.json",
        "desk/package-lock.json",
    ):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, folder / name)


def _served_at(folder: Path, *args: str, **environ: str) -> str:
    _copy_project(folder)
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


# -- the Python version guard ----------------------------------------------------------------


def _script(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return path


def _fake_python(path: Path, version: str) -> Path:
    # The Makefile asks `python -c ...` for major.minor.micro: answer whatever is asked.
    return _script(path, f"#!/bin/sh\necho {version}\n")


def _make(folder: Path, *args: str, path: str | None = None) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key not in ("HOST", "PORT")}
    if path is not None:
        env["PATH"] = path
    return subprocess.run(
        [shutil.which("make"), "--no-print-directory", *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("goal", ["run", "test", "format", "bench"])
def test_an_old_python3_on_the_path_stops_make_before_the_venv(tmp_path, goal):
    _copy_project(tmp_path)
    fake = tmp_path / "fake-bin"
    _fake_python(fake / "python3", "3.9.18")

    completed = _make(tmp_path, goal, path=f"{fake}{os.pathsep}{os.environ['PATH']}")

    assert completed.returncode != 0
    assert completed.stdout == ""
    (line,) = completed.stderr.splitlines()
    assert "Python 3.11 or newer is needed (python3 is 3.9.18)" in line
    assert line.endswith(f"run make PYTHON=python3.11 {goal}.  Stop.")
    assert not (tmp_path / ".venv").exists()


@pytest.mark.parametrize("version", ["2.7.18", "3.6.15", "3.9.18", "3.10.13"])
def test_python_older_than_3_11_is_refused(tmp_path, version):
    _copy_project(tmp_path)
    fake = _fake_python(tmp_path / "old-python", version)

    completed = _make(tmp_path, "run", f"PYTHON={fake}")

    assert completed.returncode != 0
    assert f"Python 3.11 or newer is needed ({fake} is {version})" in completed.stderr
    assert not (tmp_path / ".venv").exists()


@pytest.mark.parametrize("version", ["3.11.0", "3.12.1", "3.13.0", "3.100.0", "4.0.0"])
def test_python_3_11_or_newer_makes_the_venv(tmp_path, version):
    _copy_project(tmp_path)
    fake = _fake_python(tmp_path / "new-python", version)

    completed = _make(tmp_path, "-n", "run", f"PYTHON={fake}")

    assert completed.returncode == 0, completed.stderr
    assert f"{fake} -m venv .venv" in completed.stdout.splitlines()


def test_a_missing_python_is_named(tmp_path):
    _copy_project(tmp_path)

    completed = _make(tmp_path, "test", "PYTHON=python-that-is-not-installed")

    assert completed.returncode != 0
    assert "(python-that-is-not-installed is not found)" in completed.stderr


def test_a_venv_made_with_an_old_python_is_caught(tmp_path):
    _copy_project(tmp_path)
    _fake_python(tmp_path / ".venv" / "bin" / "python", "3.10.13")
    new = _fake_python(tmp_path / "new-python", "3.11.7")

    completed = _make(tmp_path, "test", f"PYTHON={new}")

    assert completed.returncode != 0
    (line,) = completed.stderr.splitlines()
    assert "Python 3.11 or newer is needed (.venv was made with 3.10.13)" in line
    assert "run make clean, then make PYTHON=python3.11 test" in line
    # `make clean test` replaces that venv: only the Python that makes the new one counts.
    assert _make(tmp_path, "-n", "clean", "test", f"PYTHON={new}").returncode == 0


def test_clean_needs_no_python(tmp_path):
    _copy_project(tmp_path)
    _fake_python(tmp_path / ".venv" / "bin" / "python", "3.9.18")
    (tmp_path / ".cache" / "contracts").mkdir(parents=True)

    completed = _make(tmp_path, "clean", "PYTHON=python-that-is-not-installed")

    assert completed.returncode == 0, completed.stderr
    assert not (tmp_path / ".venv").exists()
    assert not (tmp_path / ".cache").exists()


# -- fetching the contract tests' description of TaskRouter ---------------------------------

MEMBER = "package/twilio-oai/spec/json/twilio_taskrouter_v1.json"
PINNED = re.search(r"^CONTRACT_VERSION := (\S+)$", (ROOT / "Makefile").read_text(), re.M)[1]
STAMP = f".cache/contracts/{PINNED}.fetched"

# Packs a package holding only the description, as `npm pack <name>@<version>` would; each
# call is logged, so the tests see whether npm was asked.
FAKE_NPM = f"""#!{sys.executable}
import io, sys, tarfile
from pathlib import Path

args = sys.argv[1:]
with open(Path(__file__).with_suffix(".log"), "a") as log:
    print(" ".join(args), file=log)
destination = Path(args[args.index("--pack-destination") + 1])
body = b'{{"openapi": "3.0.1"}}'
with tarfile.open(destination / "twilio-alpha-mcp-0.0.0.tgz", "w:gz") as tgz:
    member = tarfile.TarInfo("{MEMBER}")
    member.size = len(body)
    tgz.addfile(member, io.BytesIO(body))
"""
# npm offline: the call is logged, and fails.
OFFLINE_NPM = '#!/bin/sh\necho "$@" >> "$0.log"\nexit 1\n'


def _fake_npm(folder: Path, script: str) -> tuple[str, Path]:
    bin_dir = folder / "fake-bin"
    _script(bin_dir / "npm", script)
    _fake_python(bin_dir / "python3", "3.11.7")
    return f"{bin_dir}{os.pathsep}{os.environ['PATH']}", bin_dir / "npm.log"


def test_the_description_is_fetched_once_by_pinned_name_and_version(tmp_path):
    _copy_project(tmp_path)
    path, log = _fake_npm(tmp_path, FAKE_NPM)
    fetched = tmp_path / ".cache" / "contracts" / "twilio_taskrouter_v1.json"

    first = _make(tmp_path, STAMP, path=path)
    second = _make(tmp_path, STAMP, path=path)

    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    assert first.stdout == first.stderr == ""
    assert json.loads(fetched.read_text()) == {"openapi": "3.0.1"}
    (call,) = log.read_text().splitlines()
    assert call.startswith("pack ")
    assert call.endswith(f" @twilio-alpha/mcp@{PINNED}")
    # Only the description and the stamp are kept: the package is removed once read.
    kept = sorted(child.name for child in fetched.parent.iterdir())
    assert kept == sorted([f"{PINNED}.fetched", fetched.name])


def test_a_failing_npm_leaves_no_stamp_and_does_not_fail_make(tmp_path):
    _copy_project(tmp_path)
    path, log = _fake_npm(tmp_path, OFFLINE_NPM)

    for _ in range(2):
        completed = _make(tmp_path, STAMP, path=path)
        assert completed.returncode == 0, completed.stderr
        (line,) = completed.stdout.splitlines()
        assert line.startswith(f"npm could not fetch @twilio-alpha/mcp@{PINNED}")

    # Tried again the next time: the machine may have been offline for a moment.
    assert len(log.read_text().splitlines()) == 2
    assert list((tmp_path / ".cache" / "contracts").iterdir()) == []


def test_without_npm_make_goes_on(tmp_path):
    _copy_project(tmp_path)
    # A PATH with the tools the Makefile uses, and no npm.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("mkdir", "rm", "touch", "mv", "tar", "awk", "sed", "tail", "tr"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    _fake_python(bin_dir / "python3", "3.11.7")

    completed = _make(tmp_path, STAMP, path=str(bin_dir))

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("npm is not available")
    assert not (tmp_path / STAMP).exists()


# -- the agents' desks: Twilio's Worker SDK, installed and bundled by npm ----------------------

DESK_STAMP = ".cache/desk/.installed"
DESK_BUNDLE = ".cache/desk/twilio-taskrouter.js"

# npm ci installs from the lock file beside it; npm run build bundles. Each call is logged
# with the folder it ran in.
FAKE_DESK_NPM = f"""#!{sys.executable}
import os, sys
from pathlib import Path

args = sys.argv[1:]
with open(Path(__file__).with_suffix(".log"), "a") as log:
    print(os.getcwd(), " ".join(args), file=log)
here = Path.cwd()
if args[0] == "ci":
    assert (here / "package-lock.json").exists()
    (here / "node_modules").mkdir(exist_ok=True)
elif args[:2] == ["run", "--silent"] and args[2] == "build":
    (here / "twilio-taskrouter.js").write_text("var Twilio;")
else:
    sys.exit(1)
"""


def test_the_desks_sdk_is_installed_and_bundled_once_from_the_lock_file(tmp_path):
    _copy_project(tmp_path)
    path, log = _fake_npm(tmp_path, FAKE_DESK_NPM)

    first = _make(tmp_path, DESK_STAMP, path=path)
    second = _make(tmp_path, DESK_STAMP, path=path)

    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    assert first.stdout == first.stderr == ""
    calls = log.read_text().splitlines()
    desk = tmp_path / ".cache" / "desk"
    assert [call.split(" ", 2)[:2] for call in calls] == [[str(desk), "ci"], [str(desk), "run"]]
    assert "--ignore-scripts" in calls[0]
    assert calls[1].endswith("run --silent build")
    assert (tmp_path / DESK_BUNDLE).read_text() == "var Twilio;"
    assert (desk / "package-lock.json").read_text() == (ROOT / "desk/package-lock.json").read_text()


@pytest.mark.parametrize("goal", ["run", "test"])
def test_make_run_and_make_test_install_the_desks_sdk(tmp_path, goal):
    _copy_project(tmp_path)
    completed = _make(tmp_path, "-n", goal)
    assert completed.returncode == 0, completed.stderr
    assert "npm ci" in completed.stdout
    assert "npm run --silent build" in completed.stdout


def test_the_desks_lock_pins_the_sdk_without_registry_urls():
    package = json.loads((ROOT / "desk/package.json").read_text())
    lock = json.loads((ROOT / "desk/package-lock.json").read_text())
    assert package["dependencies"] == {"twilio-taskrouter": "2.1.1"}
    assert lock["packages"]["node_modules/twilio-taskrouter"]["version"] == "2.1.1"
    assert all("resolved" not in entry for entry in lock["packages"].values())


def test_a_failing_npm_leaves_the_desks_off_and_does_not_fail_make(tmp_path):
    _copy_project(tmp_path)
    path, log = _fake_npm(tmp_path, OFFLINE_NPM)

    for _ in range(2):
        completed = _make(tmp_path, DESK_STAMP, path=path)
        assert completed.returncode == 0, completed.stderr
        (line,) = completed.stdout.splitlines()
        assert line.startswith("npm could not install or bundle desk's packages (offline?)")

    # Tried again the next time.
    assert len(log.read_text().splitlines()) == 2
    assert not (tmp_path / DESK_STAMP).exists()


def test_without_npm_the_desks_say_how_to_turn_them_on(tmp_path):
    _copy_project(tmp_path)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("mkdir", "cp", "awk", "sed", "tail", "tr"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    _fake_python(bin_dir / "python3", "3.11.7")

    completed = _make(tmp_path, DESK_STAMP, path=str(bin_dir))

    assert completed.returncode == 0, completed.stderr
    (line,) = completed.stdout.splitlines()
    assert line == (
        "npm is not available: the agents' desks on the page stay off (install npm, then make run)"
    )
    assert not (tmp_path / DESK_STAMP).exists()
