"""The example project as an outsider runs it: this repository built into a wheel by its
standard backend and pip-installed (not editable) into a virtual environment of its own,
examples/support_desk installed beside it with its test extra, and the example's pytest run
there from the example's folder, in-process and over HTTP.

What this proves beyond the repository's own run: pyproject.toml's packages, package data,
dependencies and entry points (the console command, the pytest plugin) are right, and the
example needs nothing of the checkout.

The virtual environment with the dependencies is kept in .cache (keyed on the files that
decide what it holds, and rebuilt when one changes): a fresh one costs about 30 s of pip,
reusing it about 10 s. The project and the example are reinstalled from a new build on every
run, and `pip check` confirms the wheel's declared dependencies are all there.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import venv
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = Path("examples") / "support_desk"
# What decides the cached environment's contents: when one changes, it is made afresh.
ENVIRONMENT_INPUTS = (
    "pyproject.toml",
    "requirements.txt",
    "requirements-dev.txt",
    str(EXAMPLE / "pyproject.toml"),
)
PIP_TIMEOUT = 600
RUN_TIMEOUT = 300


@dataclass(frozen=True)
class Outsider:
    python: Path  # the outsider environment's interpreter
    wheel: Path  # this repository, built
    example: Path  # the example's folder, in a copy of the checkout


def _run(args: list[str], *, cwd: Path, timeout: float = PIP_TIMEOUT) -> str:
    """Run args with an environment that points at nothing of this process or checkout."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
        and not name.startswith(("PYTEST_", "COV_"))
    }
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    result = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, (
        f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    )
    return result.stdout


def _source_copy(destination: Path) -> Path:
    """The checkout's files (tracked, or new and not ignored) copied to destination: the build
    and the example's run then write nothing into the checkout, and no stale build/ or
    egg-info of a developer's can leak into the wheel."""
    listed = _run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT)
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


def _environment_key() -> str:
    digest = hashlib.sha256(sys.version.encode())
    for name in ENVIRONMENT_INPUTS:
        digest.update(name.encode() + b"\0" + (ROOT / name).read_bytes())
    return digest.hexdigest()[:16]


@contextmanager
def _outsider_environment(scratch: Path) -> Iterator[Outsider]:
    """This repository's wheel and the example installed into a virtual environment of their
    own, while the test holds the cache's lock."""
    source = _source_copy(scratch / "checkout")
    wheels = scratch / "wheels"
    cache = ROOT / ".cache" / "example-project"
    cache.mkdir(parents=True, exist_ok=True)
    environment = cache / _environment_key()
    python = environment / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "--quiet"]
    # Several checkouts may share .cache: one run at a time builds or reinstalls into it.
    with open(cache / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        # A real build by pyproject's backend, in an isolated build environment.
        build = ["pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(wheels)]
        _run([sys.executable, "-m", *build, str(source)], cwd=source)
        (wheel,) = wheels.glob("*.whl")
        example = source / EXAMPLE
        if not (environment / "complete").exists():
            for stale in cache.iterdir():
                if stale.is_dir():
                    shutil.rmtree(stale)
            venv.create(environment, with_pip=True)
            constraints = ["-c", str(source / "requirements-dev.txt")]
            _run([*pip, *constraints, str(wheel), f"{example}[test]"], cwd=source)
            (environment / "complete").touch()
        else:
            reinstall = ["--no-deps", "--force-reinstall"]
            _run([*pip, *reinstall, str(wheel), str(example)], cwd=source)
        _run([str(python), "-m", "pip", "check"], cwd=source)
        yield Outsider(python, wheel, example)


def _check_wheel(wheel_path: Path) -> None:
    """Both packages and nothing else, the server's templates and static files, the console
    command and the pytest plugin."""
    with zipfile.ZipFile(wheel_path) as wheel:
        names = wheel.namelist()
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        declared = wheel.read(entry_points).decode()
    tops = {name.split("/")[0] for name in names}
    assert {top for top in tops if not top.endswith(".dist-info")} == {
        "taskrouter_sandbox",
        "taskrouter_quickstart",
    }
    for data in ("templates/base.html", "templates/console.html", "static/console.js"):
        assert f"taskrouter_quickstart/{data}" in names
    assert "taskrouter_sandbox/pytest_plugin.py" in names
    assert "taskrouter-sandbox = taskrouter_sandbox.standalone:main" in declared
    assert "taskrouter_sandbox = taskrouter_sandbox.pytest_plugin" in declared


def _check_installed(outsider: Outsider, cwd: Path) -> None:
    """The packages import from the environment's site-packages (the server's app module
    with them), and the console command is there."""
    purelib, *located = _run(
        [
            str(outsider.python),
            "-c",
            "import sysconfig, taskrouter_sandbox, taskrouter_quickstart.app; "
            "print(sysconfig.get_paths()['purelib']); "
            "print(taskrouter_sandbox.__file__); print(taskrouter_quickstart.app.__file__)",
        ],
        cwd=cwd,
    ).split()
    assert Path(purelib).name == "site-packages"
    for path in map(Path, located):
        assert path.is_relative_to(purelib), f"{path} is not the installed copy"
    command = outsider.python.parent / "taskrouter-sandbox"
    assert command.is_file() and os.access(command, os.X_OK)
    assert "usage" in _run([str(command), "--help"], cwd=cwd).lower()


def _run_example_suite(outsider: Outsider, transport: str) -> str:
    return _run(
        [
            str(outsider.python),
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--taskrouter-sandbox-transport={transport}",
        ],
        cwd=outsider.example,
        timeout=RUN_TIMEOUT,
    )


# One test, so that xdist never builds and installs twice in parallel for one run.
def test_an_outsider_installs_the_package_and_the_example_suite_passes(tmp_path):
    with _outsider_environment(tmp_path) as outsider:
        _check_wheel(outsider.wheel)
        _check_installed(outsider, cwd=tmp_path)
        for transport in ("wsgi", "http"):
            output = _run_example_suite(outsider, transport)
            assert " passed" in output, output
            assert "failed" not in output and "skipped" not in output, output
