"""Each benchmark of `make bench` once at a tiny size, so none can rot unnoticed.

Real gunicorn servers on free loopback ports and real load; figures are checked for shape only.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar
from urllib.parse import urlencode

import pytest
from twilio.request_validator import RequestValidator
from werkzeug.test import Client

from bench import (
    callback,
    documented_app,
    flex,
    floor_app,
    lifecycle,
    scale,
    statement_times,
    statistics_endpoints,
    suite,
)
from bench.__main__ import main as bench_main
from bench.common import (
    HEADLINE_END,
    HEADLINE_START,
    BenchError,
    Machine,
    Report,
    Row,
    gunicorn_argv,
    gunicorn_command_from_readme,
    percentile,
    write_results,
)
from bench.loadgen import LoadResult, run_load, wrk_available
from bench.loadgen import main as loadgen_main
from bench.receiver import ASSIGNMENT_PATH, CallbackReceiver


def rows_of(report: Report) -> dict[str, Row]:
    return {row.label: row for row in report.rows}


# -- the five benchmarks, tiny ------------------------------------------------------------------


def test_callback_benchmark_runs_all_five_servers_without_errors():
    report = callback.run(callback.SMOKE, generator="python")
    rows = rows_of(report)
    assert rows["requests/s"].value > 0 and rows["requests/s"].peer > 0
    # The second peer, the callback as Twilio's Flask guide writes it, loaded in the same run.
    documented = rows["requests/s against the documented handler"]
    assert documented.peer > 0 and documented.peer_name == callback.DOCUMENTED
    assert documented.target == "ratio >= 1.5"
    assert rows["p99 latency"].target == "ratio <= 1.2"
    assert any("Documented handler:" in note and " 0 failed" in note for note in report.notes)
    assert rows["p99 latency"].value >= rows["p50 latency"].value > 0
    # A wrong signature would turn every request into a 403 and count here.
    assert rows["failed or non-2xx"].value == 0
    assert rows["failed or non-2xx"].peer == 0
    assert rows["server CPU per request"].value > 0 and rows["server CPU per request"].peer > 0
    assert any("Generator: python" in note for note in report.notes)
    assert any("Checking the signature and logging" in note for note in report.notes)
    # The floor, the work no handler can skip, loaded in the same run.
    floor = rows["requests/s: the floor against the documented handler"]
    assert floor.value > 0 and floor.peer == documented.peer
    assert rows["requests/s against the floor"].peer == floor.value
    assert any(note.startswith("The floor (bench/floor_app.py") for note in report.notes)
    # The Flask floor, that work in bare Flask's view: the floor of the targets against it.
    flask_floor_p99 = rows["p99 latency: the Flask floor against bare Flask"]
    assert flask_floor_p99.value > 0 and flask_floor_p99.peer == rows["p99 latency"].peer
    assert rows["p99 latency against the Flask floor"].peer == flask_floor_p99.value
    flask_floor = rows["requests/s: the Flask floor against bare Flask"]
    assert flask_floor.value > 0 and flask_floor.peer == rows["requests/s"].peer
    assert rows["server CPU per request against the Flask floor"].peer > 0
    # Each load's connections per worker, read from /proc at mid-load (Linux), in the rounds.
    (rounds_note,) = [note for note in report.notes if note.startswith("Rounds (")]
    assert ", split " in rounds_note and "unknown" not in rounds_note
    assert any(note.startswith("A load counts when gunicorn's workers") for note in report.notes)


def test_a_load_counts_when_no_worker_holds_more_than_one_past_an_even_share():
    assert callback.even_split((8, 8), 16) and callback.even_split((7, 9), 16)
    assert not callback.even_split((6, 10), 16) and not callback.even_split((0, 16), 16)
    assert callback.even_split((16,), 16)  # one worker: nothing to share
    assert callback.even_split((), 16)  # unread: taken as it came


def test_a_missed_callback_p99_is_set_beside_the_floors_and_each_servers_rounds():
    def loaded(p99_ms: float) -> callback.Loaded:
        return callback.Loaded(LoadResult("wrk", 16, 10.0, 1000, 0, 100.0, 1.0, p99_ms), 200.0)

    def rounds(flask_floor: tuple[float, float]) -> list[dict[str, callback.Loaded]]:
        p99s = {
            callback.OURS: (9.0, 6.0),
            callback.BARE: (4.0, 6.0),
            callback.FLOOR: (5.0, 5.4),
            callback.FLASK_FLOOR: flask_floor,
            callback.DOCUMENTED: (11.0, 10.0),
        }
        return [{name: loaded(values[index]) for name, values in p99s.items()} for index in (0, 1)]

    # Medians of two rounds: ours 7.5, bare Flask 5.0, the floor 5.2, the Flask floor 6.5.
    note = callback._p99_missed(rounds((7.0, 6.0)))
    assert "ours 1.50x bare Flask's; the Flask floor" in note
    assert "1.30x, which misses 1.2x itself, and the floor" in note
    assert "1.04x, which meets 1.2x itself in this run" in note
    assert "ours 6.00-9.00 ms, bare Flask 4.00-6.00 ms, the Flask floor 6.00-7.00 ms" in note
    assert "floor (the signature check and the log line in bare Flask) 1.10x, which meets" in (
        callback._p99_missed(rounds((5.0, 6.0)))
    )


def test_the_documented_handler_refuses_a_request_twilio_did_not_sign():
    app = documented_app.create_app()
    client = app.test_client()
    form = {"ReservationSid": "WR" + "0" * 32}
    assert client.post("/assignment_callback", data=form).status_code == 403
    url = "http://localhost/assignment_callback"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TWILIO_AUTH_TOKEN", "a-token")
        signature = RequestValidator("a-token").compute_signature(url, form)
        answer = client.post(
            "/assignment_callback", data=form, headers={"X-Twilio-Signature": signature}
        )
    assert answer.status_code == 200
    assert answer.get_json() == {"instruction": "accept"}


@pytest.mark.parametrize("create", [floor_app.create_app, floor_app.create_flask_app])
def test_each_floor_refuses_a_request_twilio_did_not_sign(monkeypatch, create):
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "a-token")
    client = Client(create())
    url = "http://localhost/assignment_callback"
    form = {"ReservationSid": "WR" + "0" * 32, "TaskAttributes": '{"a": "é"}'}
    signature = RequestValidator("a-token").compute_signature(url, form)
    for forged in ("AAAA" + signature[4:], ""):
        answer = client.post(url, data=form, headers={"X-Twilio-Signature": forged})
        assert answer.status_code == 403
    answer = client.post(url, data=form, headers={"X-Twilio-Signature": signature})
    assert answer.status_code == 200
    assert answer.get_json() == {"instruction": "accept"}


def test_lifecycle_benchmark_sees_every_task_assigned():
    report = lifecycle.run(lifecycle.SMOKE)
    rows = rows_of(report)
    assert rows["p99"].value >= rows["p50"].value > 0
    assert rows["p50"].peer > 0
    assert any("event callback receiver" in note for note in report.notes)


def test_scale_benchmark_routes_every_task_in_the_engine_and_end_to_end():
    report = scale.run(scale.SMOKE)
    rows = rows_of(report)
    assert rows["engine: reservations/s"].value > 0
    assert rows["end to end: time to route and accept all"].value > 0
    assert 0 < rows["end to end: server peak memory"].value < 2000
    # Every reservation records events and costs both sides some CPU.
    assert rows["engine floor: writing a reservation's rows and events"].value > 0
    # The same engine on :memory:, at the smaller size only, beside the file store's rate.
    memory = rows["engine on :memory: (no disk), 40 tasks: reservations/s"]
    assert memory.value > 0 and memory.peer == rows["engine: reservations/s"].peer
    assert rows["end to end: server CPU per reservation"].value > 0
    assert rows["end to end: harness CPU per reservation"].value > 0
    # Where the engine's time goes, from runs with every statement timed: both parts count.
    sqlite_part = rows["engine, statements timed: SQLite's part"]
    rest = rows["engine, statements timed: the rest (its Python, waits for the lock)"]
    assert sqlite_part.value > 0 and sqlite_part.peer > 0 and rest.value > 0 and rest.peer > 0
    assert any("UPDATE tasks" in note and "COMMIT" in note for note in report.notes)
    assert report.subject == "200 tasks / 20 workers"


def test_statistics_benchmark_times_both_calls_on_what_it_played():
    # run() itself checks that the calls count the played window and pending tasks.
    size = statistics_endpoints.SMOKE
    report = statistics_endpoints.run(size)
    rows = rows_of(report)
    for label in ("cumulative: workspace, last 60 min, p50", "real-time: queue, p50"):
        assert rows[label].value > 0 and rows[label].peer > 0
        assert rows[label].headline and rows[label].met is None  # targets hold at full size
    assert (
        rows["cumulative: slowest call"].value
        >= rows["cumulative: workspace, last 60 min, p50"].value
    )
    assert rows["real-time: slowest call"].value >= rows["real-time: queue, p50"].value
    assert report.subject.endswith(f"{size.pending_tasks} pending tasks / {size.workers} workers")
    assert any("3 days before it" in note for note in report.notes)


def test_flex_benchmark_routes_and_places_at_each_size():
    # run() itself checks that every new task is offered and that workers going idle are.
    size = flex.SMOKE
    report = flex.run(size)
    rows = rows_of(report)
    last = f"{size.pending[-1]:,} pending"
    for name in ("new task routed", "idle worker placed"):
        p50, p99 = rows[f"{name}: p50 at {last}"], rows[f"{name}: p99 at {last}"]
        assert p99.value >= p50.value > 0 and p50.peer > 0
        assert p50.headline and p50.target == "ratio <= 2" and p50.met is None
    memory = rows[f"server peak memory at {last} (all processes)"]
    assert 0 < memory.value < 2000 and memory.met is None
    assert report.peer == f"{size.pending[0]:,} pending"


def test_suite_benchmark_runs_make_tests_commands():
    # Running it here would recurse into this very test; check what it would run instead.
    argvs = suite.commands()
    assert [argv[1:3] for argv in argvs[:2]] == [["check", "."], ["format", "--check"]]
    assert argvs[2][0].endswith("pytest")
    assert ("-m" in argvs[2]) == suite.has_browser_marker()


def test_suite_sees_a_registered_browser_marker(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[tool.pytest.ini_options]\nmarkers = [\n  "browser: needs a browser",\n]\n'
    )
    assert suite.has_browser_marker(tmp_path)
    assert suite.commands(tmp_path)[2][1:] == ["-m", "not browser"]
    assert not suite.has_browser_marker(tmp_path / "missing")


# -- the load generators ------------------------------------------------------------------------


class Recording(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: ClassVar[list[tuple[str, bytes, str]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.seen.append((self.path, body, self.headers.get("X-Twilio-Signature", "")))
        status = 403 if self.path == "/refuse" else 200
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format, *args) -> None:
        pass


@pytest.fixture
def recording_server():
    Recording.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recording)
    server.daemon_threads = False
    thread = threading.Thread(target=server.serve_forever, args=(0.05,))
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join()
    server.server_close()


BODY = urlencode({"TaskAttributes": '{"selected_language": "es", "note": "a \\"b\\""}', "X": "1"})
HEADERS = {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": "c2ln+/="}


def test_python_generator_counts_refusals_as_errors(recording_server):
    result = run_load(
        recording_server + "/refuse",
        BODY,
        HEADERS,
        connections=2,
        duration=0.2,
        generator="python",
    )
    assert result.generator == "python"
    assert result.requests > 0
    assert result.errors == result.requests
    assert {(path, body) for path, body, _ in Recording.seen} == {("/refuse", BODY.encode())}


@pytest.mark.skipif(not wrk_available(), reason="wrk is not installed (make bench installs it)")
def test_wrk_posts_the_exact_body_and_signature(recording_server):
    result = run_load(
        recording_server + "/ok", BODY, HEADERS, connections=2, duration=1, generator="wrk"
    )
    assert result.generator == "wrk"
    assert result.requests > 0
    assert result.errors == 0
    assert result.p99_ms >= result.p50_ms > 0
    assert set(Recording.seen) == {("/ok", BODY.encode(), HEADERS["X-Twilio-Signature"])}


def test_unknown_generator_is_refused(recording_server):
    with pytest.raises(BenchError, match="unknown load generator 'ab'"):
        run_load(recording_server, BODY, HEADERS, connections=1, duration=0.1, generator="ab")


def test_python_generator_refuses_a_host_that_is_not_loopback(tmp_path, capsys):
    request_file = tmp_path / "request.json"
    request_file.write_text(json.dumps({"body": "", "headers": {}}))
    with pytest.raises(BenchError, match="only ever sent to loopback"):
        loadgen_main(["http://example.com/", str(request_file), "--duration=0.1"])
    with pytest.raises(SystemExit) as exit_info:
        loadgen_main(["http://127.0.0.1:9/", str(request_file), "--connections=0"])
    assert exit_info.value.code == 2
    assert "connections must be >= 1" in capsys.readouterr().err


# -- the callback receiver -----------------------------------------------------------------------


def test_receiver_answers_a_signed_assignment_and_refuses_a_forged_one():
    token = "0" * 32
    params = {"TaskSid": "WT" + "1" * 32, "ReservationSid": "WR" + "2" * 32}
    with CallbackReceiver(token) as receiver:
        url = receiver.url + ASSIGNMENT_PATH
        signature = RequestValidator(token).compute_signature(url, params)

        def post(signature: str) -> tuple[int, bytes]:
            request = urllib.request.Request(
                url, data=urlencode(params).encode(), headers={"X-Twilio-Signature": signature}
            )
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    return response.status, response.read()
            except urllib.error.HTTPError as exc:
                return exc.code, exc.read()

        assert post(signature) == (200, b'{"instruction": "accept"}')
        assert post("forged") == (403, b"")
    assert receiver.assignment_callbacks == 1
    assert receiver.bad_signatures == 1
    assert list(receiver.called_at) == [params["TaskSid"]]


def test_receiver_wait_gives_up_with_a_clear_error():
    with CallbackReceiver("0" * 32) as receiver, pytest.raises(BenchError, match="not assigned"):
        receiver.wait_assigned("WT" + "0" * 32, timeout=0.01)


# -- shared pieces --------------------------------------------------------------------------------


def test_gunicorn_command_is_read_from_the_readme(tmp_path):
    readme = tmp_path / "README.md"
    command = "gunicorn --workers 3 --threads 4 --bind 0.0.0.0:80 'app:create_app()'"
    readme.write_text(f"Serve it:\n\n```\n.venv/bin/{command}\n```\n")
    assert gunicorn_command_from_readme(readme) == (command, "README.md")
    argv = gunicorn_argv(command, 5123, "bench.bare_app:create_app()")
    assert argv[1:] == [
        "--workers",
        "3",
        "--threads",
        "4",
        "--bind",
        "127.0.0.1:5123",
        "bench.bare_app:create_app()",
    ]
    command, source = gunicorn_command_from_readme(tmp_path / "missing.md")
    assert "app:create_app()" in command and "README.md not found" in source


def test_a_command_that_is_not_gunicorn_is_refused():
    with pytest.raises(BenchError, match="not a gunicorn command"):
        gunicorn_argv("flask run", 5000, "app")


def test_percentile_interpolates_between_ranks():
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([5.0], 99) == 5.0
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)


def test_results_keep_one_headline_and_append_dated_sections(tmp_path):
    path = tmp_path / "RESULTS.md"
    machine = Machine.current()
    first = Report("1. Assignment callback", "ours", "bare")
    first.add(Row("requests/s", 900.0, "req/s", 1000.0, ">= 0.9", True, headline=True))
    second = Report("1. Assignment callback", "ours", "bare")
    second.add(Row("requests/s", 450.0, "req/s", 1000.0, ">= 0.9", False, headline=True))
    readme = tmp_path / "README.md"
    readme.write_text(f"# Project\n\n{HEADLINE_START}\nold table\n{HEADLINE_END}\n\nMore.\n")
    write_results([first], machine, path, readme=readme)
    write_results(
        [second],
        machine,
        path,
        label="python -m bench callback",
        update_headline=False,
        readme=readme,
    )
    text = path.read_text()
    shown = readme.read_text()
    assert "old table" not in shown and shown.endswith(f"{HEADLINE_END}\n\nMore.\n")
    assert (
        shown[shown.index(HEADLINE_START) : shown.index(HEADLINE_END)]
        == (text[text.index(HEADLINE_START) : text.index(HEADLINE_END)])
    )
    assert text.count(HEADLINE_START) == 1 and text.count(HEADLINE_END) == 1
    headline = text[text.index(HEADLINE_START) : text.index(HEADLINE_END)]
    assert "| 900 | 1,000 (bare) | 0.90 |" in headline and "450" not in headline
    assert text.count(f"## {machine.date}") == 2
    assert "| **no** |" in text


def test_bench_cli_refuses_an_unknown_benchmark(capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench_main(["callbacks"])
    assert exit_info.value.code == 2
    assert "unknown benchmark callbacks" in capsys.readouterr().err


def test_engine_run_on_memory_routes_every_task_with_no_file():
    result = scale.engine_run(12, 3, memory=True)
    assert result["accepted"] == 12 and result["statements"] > 0
    # Nothing on disk to count or to write again.
    assert result["wal_pages"] == 0 and result["floor_seconds"] == 0.0


def test_statement_kinds_name_the_verb_and_the_table():
    assert statement_times.kind("UPDATE tasks SET x = ? WHERE sid = ?") == "UPDATE tasks"
    assert statement_times.kind("INSERT INTO events (a) SELECT a FROM j") == "INSERT INTO events"
    assert statement_times.kind("DELETE FROM event_journal") == "DELETE FROM event_journal"
    assert statement_times.kind(" SELECT r.* FROM reservations r JOIN w") == (
        "SELECT ... FROM reservations"
    )
    assert statement_times.kind("COMMIT") == "COMMIT"
    assert statement_times.kind("") == "?"


def test_engine_child_refuses_bad_sizes(capsys):
    with pytest.raises(SystemExit) as exit_info:
        scale.main(["0:10"])
    assert exit_info.value.code == 2
    assert "tasks must be 1..1,000,000" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        scale.main(["ten:1"])
    assert "'ten:1' is not TASKS:WORKERS" in capsys.readouterr().err


def test_a_second_floor_app_in_one_process_logs_each_line_once():
    floor_app.create_flask_app()
    floor_app.create_flask_app()
    # pytest's log capture may hang handlers of its own there: count the floor's alone.
    handlers = logging.getLogger("bench.floor_app.flask").handlers
    assert sum(type(handler) is logging.StreamHandler for handler in handlers) == 1
