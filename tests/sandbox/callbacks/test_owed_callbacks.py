"""The outbox of assignment callbacks (taskrouter_sandbox/state/outbox.py): a callback owed by a
reservation is written with it, forgotten once answered, and sent by the next start when a crash
(or a stop) left it unanswered, once, by one process, and only while its reservation is still
pending."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from taskrouter_sandbox import Sandbox, scheduler
from taskrouter_sandbox.callbacks import assignment_idempotency_token
from taskrouter_sandbox.clock import ManualClock
from taskrouter_sandbox.state.outbox import Outbox
from tests.callback_receiver import CallbackReceiver

ROOT = Path(__file__).resolve().parents[3]


def _open(path: Path, callback_url: str | None, clock=None) -> Sandbox:
    box = Sandbox(str(path), clock=clock)
    seeded = box.seeded
    if callback_url is not None:
        box.engine.update_workflow(
            seeded.workspace_sid, seeded.workflow_sid, assignment_callback_url=callback_url
        )
    return box


def _reserve(box: Sandbox, workers: int = 1) -> list[str]:
    """Tasks reserved for `workers` new available workers; their reservation SIDs."""
    engine, seeded = box.engine, box.seeded
    workspace = seeded.workspace_sid
    idle = seeded.activity_sids["Idle"]
    sids = []
    for index in range(workers):
        engine.create_worker(
            workspace,
            f"Owed {index} {os.urandom(4).hex()}",
            activity_sid=idle,
            attributes=json.dumps({"languages": ["es"]}),
        )
        task = engine.create_task(
            workspace,
            attributes=json.dumps({"selected_language": "es"}),
            workflow_sid=seeded.workflow_sid,
        )
        sids.append(_reservation_of(box, task["sid"])["sid"])
    return sids


def _reservation_of(box: Sandbox, task_sid: str) -> dict:
    with box.store.read() as tx:
        return tx.one("SELECT * FROM reservations WHERE task_sid = ?", (task_sid,))


def _status(box: Sandbox, reservation_sid: str) -> str:
    with box.store.read() as tx:
        return tx.scalar(
            "SELECT reservation_status FROM reservations WHERE sid = ?", (reservation_sid,)
        )


def _owed(box: Sandbox) -> dict[str, dict]:
    with box.store.read() as tx:
        return {row["reservation_sid"]: row for row in tx.all("SELECT * FROM owed_callbacks")}


def _wait(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


@pytest.fixture
def receiver():
    with CallbackReceiver() as running:
        yield running


def test_the_owed_callback_is_written_with_the_reservation(tmp_path):
    box = _open(tmp_path / "s.sqlite3", "http://127.0.0.1:9/assignment_callback")
    try:
        [sid] = _reserve(box)
        row = _owed(box)[sid]
        assert row["url"] == "http://127.0.0.1:9/assignment_callback"
        assert row["fallback_url"] is None
        params = json.loads(row["params"])
        assert params["ReservationSid"] == sid
        assert params["TaskSid"] == _reservation_of(box, params["TaskSid"])["task_sid"]
        # No delivery runs in this process: nobody claims it until a start.
        assert row["claimed_by"] is None
    finally:
        box.close()


def test_a_reservation_rolled_back_owes_nothing(tmp_path):
    box = _open(tmp_path / "s.sqlite3", "http://127.0.0.1:9/assignment_callback")
    try:
        with pytest.raises(RuntimeError), box.store.transaction():
            _reserve(box)
            assert len(_owed(box)) == 1
            raise RuntimeError("roll back")
        assert _owed(box) == {}
    finally:
        box.close()


def test_a_workflow_without_a_callback_url_owes_nothing(tmp_path):
    box = _open(tmp_path / "s.sqlite3", None)
    try:
        box.engine.update_workflow(
            box.seeded.workspace_sid, box.seeded.workflow_sid, assignment_callback_url=""
        )
        _reserve(box)
        assert _owed(box) == {}
    finally:
        box.close()


def test_the_row_is_deleted_once_the_answer_is_applied(tmp_path, receiver):
    box = _open(tmp_path / "s.sqlite3", receiver.url)
    box.start()
    try:
        [sid] = _reserve(box)
        assert _wait(lambda: _status(box, sid) == "accepted")
        assert box.dispatcher.drain(10)
        assert _owed(box) == {}
        assert receiver.reservations() == [sid]
    finally:
        box.close()


def test_a_row_left_by_a_crash_is_sent_on_start_while_the_reservation_is_pending(
    tmp_path, receiver
):
    path = tmp_path / "s.sqlite3"
    crashed = _open(path, receiver.url)
    [sid] = _reserve(crashed)
    # A process that had sent it and died: its owner lock is gone with it.
    with crashed.store.transaction() as tx:
        tx.execute("UPDATE owed_callbacks SET claimed_by = 'gone-0123456789ab'")
    crashed.close()

    box = Sandbox(str(path))
    box.start()
    try:
        assert receiver.wait_for(lambda calls: len(calls) == 1, 10)
        assert _wait(lambda: _status(box, sid) == "accepted")
        assert box.dispatcher.drain(10)
        assert _owed(box) == {}
        [call] = receiver.calls
        assert call.reservation_sid == sid
        # The same token as the first attempt carried: the app can tell a repeat by it.
        assert call.token == assignment_idempotency_token(sid)
    finally:
        box.close()


def test_owed_callbacks_are_queued_before_the_timers_resume(tmp_path, receiver, monkeypatch):
    path = tmp_path / "s.sqlite3"
    before = _open(path, receiver.url)
    _reserve(before)
    before.close()
    order = []
    box = Sandbox(str(path))
    monkeypatch.setattr(
        Sandbox, "_send_owed", lambda self, *args: order.append("owed") or None, raising=True
    )
    real_start = scheduler.Scheduler.start
    monkeypatch.setattr(
        scheduler.Scheduler, "start", lambda self: order.append("timers") or real_start(self)
    )
    box.start()
    try:
        assert order == ["owed", "timers"]
    finally:
        box.close()


def test_a_row_whose_reservation_is_no_longer_pending_is_dropped(tmp_path, receiver):
    path = tmp_path / "s.sqlite3"
    before = _open(path, receiver.url)
    accepted, rejected = _reserve(before, workers=2)
    workspace = before.seeded.workspace_sid
    before.engine.update_reservation(workspace, accepted, reservation_status="accepted")
    before.engine.update_reservation(workspace, rejected, reservation_status="rejected")
    assert set(_owed(before)) >= {accepted, rejected}
    # A rejected task may be offered again: such a new reservation is pending and owed.
    pending = {sid for sid in _owed(before) if _status(before, sid) == "pending"}
    assert accepted not in pending and rejected not in pending
    before.close()

    box = Sandbox(str(path))
    box.start()
    try:
        assert receiver.wait_for(lambda calls: len(calls) >= len(pending), 10)
        assert box.dispatcher.drain(10)
        assert set(receiver.reservations()) == pending
        assert accepted not in _owed(box) and rejected not in _owed(box)
    finally:
        box.close()


def test_a_row_whose_reservation_is_past_its_timeout_is_dropped(tmp_path, receiver):
    path = tmp_path / "s.sqlite3"
    clock = ManualClock()
    before = _open(path, receiver.url, clock=clock)
    [sid] = _reserve(before)
    before.close()
    # Down longer than the workflow's reservation timeout: the timers time it out at once.
    clock.advance(1201)
    box = Sandbox(str(path), clock=clock)
    box.start()
    try:
        assert _wait(lambda: _status(box, sid) != "pending")
        assert box.dispatcher.drain(10)
        assert receiver.calls == []
        assert _owed(box) == {}
    finally:
        box.close()


def test_a_row_a_live_process_is_sending_is_left_to_it(tmp_path, receiver):
    path = tmp_path / "s.sqlite3"
    other = _open(path, receiver.url)
    # Another process delivering: its owner lock is held (a flock from another open file
    # conflicts within one process too, so this stands in for a sibling worker).
    sibling = Outbox(other.store)
    other.engine.callback_owner = sibling.owner
    [sid] = _reserve(other)
    box = Sandbox(str(path))
    box.start()
    try:
        assert box.dispatcher.drain(10)
        time.sleep(0.2)
        assert receiver.calls == []
        assert _owed(box)[sid]["claimed_by"] == sibling.owner
        # ... until it is gone: the next start takes it over.
        sibling.release()
        box.stop()
        box.start()
        assert receiver.wait_for(lambda calls: len(calls) == 1, 10)
        assert receiver.calls[0].reservation_sid == sid
    finally:
        box.close()
        other.close()


def test_a_callback_that_failed_for_good_is_not_owed(tmp_path):
    path = tmp_path / "s.sqlite3"
    with CallbackReceiver() as unused:
        box = _open(path, unused.url)
    # The receiver is gone: the delivery fails for good, and a failure is not owed.
    box.start()
    try:
        [sid] = _reserve(box)
        assert box.dispatcher.drain(15)
        assert sid not in _owed(box)
    finally:
        box.close()


_STARTER = textwrap.dedent(
    """
    import sys
    from taskrouter_sandbox import Sandbox
    box = Sandbox(sys.argv[1])
    box.start()
    print("started", flush=True)
    sys.stdin.readline()
    box.close()
    """
)


def test_two_processes_starting_together_send_each_owed_callback_once(tmp_path):
    path = tmp_path / "s.sqlite3"
    # Answers late: each process is still sending when the other starts.
    with CallbackReceiver(delay=1.0) as receiver:
        before = _open(path, receiver.url)
        sids = _reserve(before, workers=6)
        before.close()
        starters = [
            subprocess.Popen(
                [sys.executable, "-c", _STARTER, str(path)],
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        try:
            for starter in starters:
                assert starter.stdout.readline().strip() == "started"
            assert receiver.wait_for(lambda calls: len(calls) >= len(sids), 15)
            # Both still run, past the answers: a second copy would have arrived by now.
            time.sleep(1.5)
            assert sorted(receiver.reservations()) == sorted(sids)
        finally:
            for starter in starters:
                starter.communicate("\n", timeout=30)
        box = Sandbox(str(path))
        try:
            assert _owed(box) == {}
            assert {_status(box, sid) for sid in sids} == {"accepted"}
        finally:
            box.close()
