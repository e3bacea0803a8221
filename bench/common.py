"""What every benchmark shares: the machine, statistics, child servers on free loopback ports,
peak memory of a process tree, and the report printed and appended to bench/RESULTS.md.
"""

from __future__ import annotations

import math
import os
import platform
import re
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS_PATH = Path(__file__).resolve().parent / "RESULTS.md"
README_PATH = REPO_ROOT / "README.md"
BIN = Path(sys.executable).parent
LOOPBACK = "127.0.0.1"

# The README's production command; used only when README.md does not show one.
DEFAULT_GUNICORN_COMMAND = (
    "gunicorn --workers 2 --threads 8 --bind 127.0.0.1:PORT 'app:create_app()'"
)

HEADLINE_START = "<!-- headline:start -->"
HEADLINE_END = "<!-- headline:end -->"

# A server that is not listening within this long has failed to start (imports, config).
SERVER_START_TIMEOUT = 30.0
SERVER_STOP_TIMEOUT = 10.0


class BenchError(Exception):
    """A benchmark could not produce a figure (a server failed, a check did not hold)."""


# -- the machine ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Machine:
    cores: int
    python: str
    platform: str
    date: str

    @classmethod
    def current(cls) -> Machine:
        return cls(
            cores=os.cpu_count() or 1,
            python=platform.python_version(),
            platform=platform.platform(),
            date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        )

    def describe(self) -> str:
        return f"{self.cores} cores, Python {self.python}, {self.platform}, {self.date}"


# -- statistics -------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linear between the closest ranks."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = math.ceil(rank)
    if low == high:
        return ordered[low]
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


# -- child processes --------------------------------------------------------------------------


def free_port() -> int:
    """A port the kernel just handed out on loopback; the server binds it a moment later."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def gunicorn_command_from_readme(readme: Path = README_PATH) -> tuple[str, str]:
    """The README's gunicorn command (and where it came from), so the benchmark serves what
    people are told to run."""
    try:
        text = readme.read_text(encoding="utf-8")
    except OSError:
        return DEFAULT_GUNICORN_COMMAND, "built-in default (README.md not found)"
    for line in text.splitlines():
        match = re.search(r"(gunicorn\s[^`\n]*?'app:create_app\(\)')", line)
        if match:
            return match.group(1), "README.md"
    return DEFAULT_GUNICORN_COMMAND, "built-in default (README.md shows no gunicorn command)"


def gunicorn_argv(command: str, port: int, app_spec: str) -> list[str]:
    """The command as argv for this venv, bound to 127.0.0.1:port and serving app_spec."""
    words = shlex.split(command)
    if not words or words[0] != "gunicorn":
        raise BenchError(f"not a gunicorn command: {command!r}")
    argv = [str(BIN / "gunicorn")]
    rest = iter(words[1:])
    for word in rest:
        if word in ("--bind", "-b"):
            next(rest, None)
            argv += ["--bind", f"{LOOPBACK}:{port}"]
        elif word.startswith("--bind="):
            argv.append(f"--bind={LOOPBACK}:{port}")
        elif re.fullmatch(r"[\w.]+:\w+(\(.*\))?", word):
            argv.append(app_spec)
        else:
            argv.append(word)
    if not any(word.startswith(("--bind", "-b")) for word in argv[1:]):
        argv += ["--bind", f"{LOOPBACK}:{port}"]
    return argv


class Server:
    """A server in a child process on a loopback port, always stopped on exit.

    Its output goes to a file (a pipe nobody reads would fill and stall it); the tail is
    quoted when it fails to start.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        port: int,
        env: Mapping[str, str],
        log_path: Path,
        ready_path: str = "/",
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.port = port
        self.env = dict(env)
        self.log_path = log_path
        self.ready_path = ready_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> Server:
        log = open(self.log_path, "wb")  # noqa: SIM115 - the child holds it until stop()
        try:
            # A session of its own, so stop() can signal the server and its workers together.
            self.process = subprocess.Popen(
                self.argv,
                cwd=REPO_ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()
        return self

    def wait_ready(self, timeout: float = SERVER_START_TIMEOUT) -> None:
        """Return once the server answers HTTP at ready_path (any status counts)."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(
                    f"{self.name} exited with status {self.process.returncode} while starting:\n"
                    f"{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(self.url + self.ready_path, timeout=2):
                    return
            except urllib.error.HTTPError:
                return
            except OSError:
                time.sleep(0.05)
        raise BenchError(f"{self.name} did not answer within {timeout:g} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no output)"
        return "\n".join(text.splitlines()[-lines:])

    def pids(self) -> list[int]:
        """The server process and its descendants (gunicorn's workers)."""
        if self.process is None:
            return []
        return process_tree(self.process.pid)

    def peak_memory_mb(self) -> tuple[float, float]:
        """(largest, sum) of VmHWM over the server's processes, in MB, read while running."""
        peaks = [peak_rss_kb(pid) for pid in self.pids()]
        peaks = [peak for peak in peaks if peak is not None]
        if not peaks:
            return float("nan"), float("nan")
        return max(peaks) / 1024, sum(peaks) / 1024

    def cpu_seconds(self) -> float:
        """User and system CPU time used so far by the server's running processes (a worker
        that exits takes its share with it: gunicorn's workers live as long as a benchmark)."""
        return sum(cpu_seconds(pid) for pid in self.pids())

    def connection_split(self) -> tuple[int, ...]:
        """How many established TCP connections to the server's port each of its workers
        holds, fewest first: () where /proc cannot tell (not Linux, or no worker found)."""
        if self.process is None:
            return ()
        sockets = established_sockets(self.port)
        counts = []
        for pid in self.pids():
            if pid == self.process.pid:
                continue  # gunicorn's master holds the listening socket alone
            try:
                links = [os.readlink(entry) for entry in Path(f"/proc/{pid}/fd").iterdir()]
            except OSError:
                continue
            counts.append(sum(link in sockets for link in links))
        return tuple(sorted(counts))

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        try:
            # gunicorn's quick shutdown: the figures are taken, nothing is left to drain.
            os.killpg(process.pid, signal.SIGINT)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=SERVER_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=SERVER_STOP_TIMEOUT)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def established_sockets(port: int) -> set[str]:
    """The sockets (as /proc/<pid>/fd links name them) of the established TCP connections
    whose local port is `port`: the server's ends of its clients' connections. Empty where
    /proc/net does not exist."""
    sockets = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            # local_address is HEXIP:HEXPORT; state 01 is ESTABLISHED; the inode is field 9.
            if fields[3] == "01" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                sockets.add(f"socket:[{fields[9]}]")
    return sockets


def process_tree(root_pid: int) -> list[int]:
    """root_pid and every descendant, read from /proc (Linux); [root_pid] elsewhere."""
    children: dict[int, list[int]] = {}
    proc = Path("/proc")
    if not proc.is_dir():
        return [root_pid]
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name in parentheses may hold spaces; the parent PID follows it.
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    tree, stack = [], [root_pid]
    while stack:
        pid = stack.pop()
        tree.append(pid)
        stack.extend(children.get(pid, ()))
    return tree


def peak_rss_kb(pid: int) -> int | None:
    """The process's peak resident set size (VmHWM) in kB, or None once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) if match else None


def cpu_seconds(pid: int) -> float:
    """The process's user and system CPU time so far, or 0 once it is gone (Linux)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    # After the parenthesised command name: utime and stime are fields 14 and 15 of stat.
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_all_ready(servers: Iterable[Server]) -> None:
    for server in servers:
        server.wait_ready()


# -- reporting --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One figure of a benchmark beside its peer's; ratio is value / peer."""

    label: str
    value: float
    unit: str
    peer: float | None = None
    target: str = ""
    met: bool | None = None
    headline: bool = False
    # The peer this row compares with, where it is not the report's own.
    peer_name: str | None = None

    @property
    def ratio(self) -> float | None:
        if self.peer is None or not self.peer or math.isnan(self.peer):
            return None
        return self.value / self.peer


@dataclass
class Report:
    """What one benchmark found: its rows, the peer's name and notes on how it was measured."""

    title: str
    subject: str
    peer: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *rows: Row) -> None:
        self.rows.extend(rows)

    @property
    def missed(self) -> list[Row]:
        return [row for row in self.rows if row.met is False]


def number(value: float | None) -> str:
    if value is None:
        return "-"
    if math.isnan(value):
        return "n/a"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _met(row: Row) -> str:
    return {True: "yes", False: "**no**", None: "-"}[row.met]


def report_markdown(report: Report) -> str:
    lines = [
        f"### {report.title}",
        "",
        f"| figure | {report.subject} | {report.peer} | ratio | target | met |",
        "|---|---:|---:|---:|---|---|",
    ]
    for row in report.rows:
        peer = number(row.peer)
        if row.peer_name is not None and row.peer is not None:
            peer += f" ({row.peer_name})"
        lines.append(
            f"| {row.label} ({row.unit}) | {number(row.value)} | {peer} "
            f"| {number(row.ratio)} | {row.target or '-'} | {_met(row)} |"
        )
    if report.notes:
        lines.append("")
        lines.extend(f"- {note}" for note in report.notes)
    return "\n".join(lines)


def headline_markdown(reports: Sequence[Report], machine: Machine) -> str:
    lines = [
        HEADLINE_START,
        f"Latest full run: {machine.describe()}.",
        "",
        "| benchmark | figure | measured | peer | ratio | target | met |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for report in reports:
        for row in report.rows:
            if row.headline:
                name = row.peer_name or report.peer
                peer = f"{number(row.peer)} ({name})" if row.peer is not None else "-"
                lines.append(
                    f"| {report.title} | {row.label} ({row.unit}) | {number(row.value)} "
                    f"| {peer} | {number(row.ratio)} | {row.target or '-'} | {_met(row)} |"
                )
    lines.append(HEADLINE_END)
    return "\n".join(lines)


RESULTS_PREAMBLE = """# Benchmark results

Written by `make bench` (`python -m bench`): the table below is the latest full run; every
run appends a dated section at the end. Absolute times on a shared machine are noisy, so
each figure stands beside its peer measured in the same run, and repeated figures are medians.
"""


def section_markdown(reports: Sequence[Report], machine: Machine, label: str) -> str:
    parts = [f"## {machine.date}: {label}", "", f"Machine: {machine.describe()}."]
    for report in reports:
        parts += ["", report_markdown(report)]
    return "\n".join(parts) + "\n"


def _with_headline(text: str, headline: str) -> str | None:
    """text with the table between the headline markers replaced; None without markers."""
    start, end = text.find(HEADLINE_START), text.find(HEADLINE_END)
    if start == -1 or end < start:
        return None
    return text[:start] + headline + text[end + len(HEADLINE_END) :]


def write_results(
    reports: Sequence[Report],
    machine: Machine,
    path: Path = RESULTS_PATH,
    *,
    label: str = "make bench",
    update_headline: bool = True,
    readme: Path | None = README_PATH,
) -> None:
    """Append a dated section to path and (for a full run) refresh the headline table there
    and in readme, where it shows between the same markers."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = RESULTS_PREAMBLE + f"\n{HEADLINE_START}\nNo full run yet.\n{HEADLINE_END}\n"
    if update_headline and any(row.headline for report in reports for row in report.rows):
        headline = headline_markdown(reports, machine)
        text = _with_headline(text, headline) or text.rstrip("\n") + "\n\n" + headline + "\n"
        if readme is not None and readme.exists():
            updated = _with_headline(readme.read_text(encoding="utf-8"), headline)
            if updated is not None:
                readme.write_text(updated, encoding="utf-8")
    text = text.rstrip("\n") + "\n\n" + section_markdown(reports, machine, label)
    path.write_text(text, encoding="utf-8")


def print_report(report: Report) -> None:
    print(report_markdown(report), flush=True)
    print(flush=True)
