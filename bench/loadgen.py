"""HTTP load from another process: wrk with a Lua script posting one exact body, or, where wrk
is missing, a Python generator (threads on keep-alive connections) run as `python -m bench.loadgen`.
"""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

from bench.common import BenchError, percentile

GENERATORS = ("auto", "wrk", "python")
RESULT_MARK = "BENCH_RESULT "
# A request slower than this counts as an error (TaskRouter itself waits 5 s for an answer).
REQUEST_TIMEOUT = 5.0


@dataclass(frozen=True)
class LoadResult:
    generator: str
    connections: int
    duration: float
    requests: int
    errors: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def choose_generator(requested: str = "auto") -> str:
    if requested not in GENERATORS:
        raise BenchError(f"unknown load generator {requested!r}: use one of {GENERATORS}")
    if requested == "auto":
        return "wrk" if wrk_available() else "python"
    if requested == "wrk" and not wrk_available():
        raise BenchError("wrk is not installed (apt-get install wrk), or use --generator python")
    return requested


_WRK_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT_MARK{"requests":%d,"duration_us":%d,"errors":%d,"non_2xx":%d,"p50_us":%d,"p99_us":%d}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99)))
end
"""


def _lua_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def wrk_script(body: str, headers: Mapping[str, str]) -> str:
    """A wrk script posting body with headers, printing its own summary as one JSON line."""
    lines = ['wrk.method = "POST"', f"wrk.body = {_lua_string(body)}"]
    lines += [f"wrk.headers[{_lua_string(k)}] = {_lua_string(v)}" for k, v in headers.items()]
    # wrk's own summary has no p99 at sub-millisecond resolution; read it from the histogram.
    lines.append(_WRK_DONE.replace("RESULT_MARK", RESULT_MARK))
    return "\n".join(lines)


def _parse_result(output: str) -> dict:
    for line in output.splitlines():
        if line.startswith(RESULT_MARK):
            return json.loads(line[len(RESULT_MARK) :])
    raise BenchError(f"the load generator printed no result:\n{output[-2000:]}")


def run_wrk(
    url: str, body: str, headers: Mapping[str, str], connections: int, duration: float
) -> LoadResult:
    seconds = max(1, round(duration))  # wrk takes whole seconds
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as scratch:
        script = Path(scratch) / "post.lua"
        script.write_text(wrk_script(body, headers), encoding="utf-8")
        argv = [
            "wrk",
            f"--threads={min(2, connections)}",
            f"--connections={connections}",
            f"--duration={seconds}s",
            f"--timeout={int(REQUEST_TIMEOUT)}s",
            f"--script={script}",
            url,
        ]
        completed = subprocess.run(
            argv, capture_output=True, text=True, timeout=seconds + 30, check=False
        )
    if completed.returncode != 0:
        raise BenchError(f"wrk failed ({completed.returncode}): {completed.stderr.strip()}")
    result = _parse_result(completed.stdout)
    elapsed = result["duration_us"] / 1e6
    return LoadResult(
        generator="wrk",
        connections=connections,
        duration=elapsed,
        requests=result["requests"],
        errors=result["errors"] + result["non_2xx"],
        requests_per_second=result["requests"] / elapsed,
        p50_ms=result["p50_us"] / 1000,
        p99_ms=result["p99_us"] / 1000,
    )


def run_python(
    url: str, body: str, headers: Mapping[str, str], connections: int, duration: float
) -> LoadResult:
    """The Python generator in a child process, so it never shares a GIL with the caller."""
    with tempfile.TemporaryDirectory(prefix="bench-load-") as scratch:
        request_file = Path(scratch) / "request.json"
        request_file.write_text(json.dumps({"body": body, "headers": dict(headers)}))
        argv = [
            sys.executable,
            "-m",
            "bench.loadgen",
            url,
            str(request_file),
            f"--connections={connections}",
            f"--duration={duration}",
        ]
        completed = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=duration + 60,
            check=False,
            cwd=Path(__file__).resolve().parents[1],
        )
    if completed.returncode != 0:
        raise BenchError(f"the Python load generator failed: {completed.stderr.strip()[-2000:]}")
    return LoadResult(**_parse_result(completed.stdout))


def run_load(
    url: str,
    body: str,
    headers: Mapping[str, str],
    *,
    connections: int,
    duration: float,
    generator: str = "auto",
) -> LoadResult:
    """POST body to url on `connections` keep-alive connections for `duration` seconds."""
    generator = choose_generator(generator)
    runner = run_wrk if generator == "wrk" else run_python
    return runner(url, body, headers, connections, duration)


# -- the Python generator itself (runs in the child) --------------------------------------------


class _Connection(threading.Thread):
    def __init__(self, host: str, port: int, path: str, body: bytes, headers: dict, stop_at: float):
        super().__init__(daemon=True)
        self.target = (host, port, path)
        self.body = body
        self.headers = headers
        self.stop_at = stop_at
        self.latencies: list[float] = []
        self.errors = 0

    def run(self) -> None:
        host, port, path = self.target
        connection = http.client.HTTPConnection(host, port, timeout=REQUEST_TIMEOUT)
        sent = False
        try:
            # At least one request, however late a busy machine starts this thread.
            while not sent or time.perf_counter() < self.stop_at:
                sent = True
                started = time.perf_counter()
                try:
                    connection.request("POST", path, self.body, self.headers)
                    response = connection.getresponse()
                    response.read()
                except (OSError, http.client.HTTPException):
                    self.errors += 1
                    connection.close()
                    connection = http.client.HTTPConnection(host, port, timeout=REQUEST_TIMEOUT)
                    continue
                self.latencies.append(time.perf_counter() - started)
                if not 200 <= response.status < 300:
                    self.errors += 1
        finally:
            connection.close()


def generate(
    url: str, body: str, headers: Mapping[str, str], connections: int, duration: float
) -> LoadResult:
    parts = urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise BenchError(f"load is only ever sent to loopback, not {parts.hostname}")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    headers = {"Content-Length": str(len(body.encode())), **headers}
    started = time.perf_counter()
    threads = [
        _Connection(
            parts.hostname, parts.port or 80, path, body.encode(), headers, started + duration
        )
        for _ in range(connections)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(duration + REQUEST_TIMEOUT + 5)
    elapsed = time.perf_counter() - started
    latencies = [value for thread in threads for value in thread.latencies]
    if not latencies:
        raise BenchError(f"no request to {url} completed")
    return LoadResult(
        generator="python",
        connections=connections,
        duration=elapsed,
        requests=len(latencies),
        errors=sum(thread.errors for thread in threads),
        requests_per_second=len(latencies) / elapsed,
        p50_ms=percentile(latencies, 50) * 1000,
        p99_ms=percentile(latencies, 99) * 1000,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("request_file", help='JSON {"body": "...", "headers": {...}}')
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--duration", type=float, default=10.0)
    args = parser.parse_args(argv)
    if args.connections < 1 or not 0 < args.duration <= 600:
        parser.error("connections must be >= 1 and duration in (0, 600] seconds")
    request = json.loads(Path(args.request_file).read_text())
    result = generate(
        args.url, request["body"], request["headers"], args.connections, args.duration
    )
    print(RESULT_MARK + json.dumps(asdict(result)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
