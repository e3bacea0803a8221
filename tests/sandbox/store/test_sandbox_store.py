"""The SQLite store: pragmas, transactions, hooks, per-thread connections and keyset paging.

Real database files in tmp_path; threads are joined before each test ends.
"""

from __future__ import annotations

import base64
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from taskrouter_sandbox.clock import from_storage, to_storage
from taskrouter_sandbox.store import (
    SCHEMA_VERSION,
    InvalidPageToken,
    Order,
    Page,
    Store,
    StoreError,
    page,
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(str(tmp_path / "store.sqlite3"))
    yield opened
    opened.close()


def _add_workspace(store: Store, sid: str, name: str = "W") -> None:
    with store.transaction() as tx:
        tx.insert(
            "workspaces",
            {
                "sid": sid,
                "friendly_name": name,
                "date_created": "2024-01-01T00:00:00.000000Z",
                "date_updated": "2024-01-01T00:00:00.000000Z",
            },
        )


@pytest.mark.parametrize(
    ("moment", "stored"),
    [
        (datetime(2024, 1, 1, 9, 0, tzinfo=UTC), "2024-01-01T09:00:00.000000Z"),
        (datetime(999, 3, 4, 5, 6, 7, 8, tzinfo=UTC), "0999-03-04T05:06:07.000008Z"),
        # Any other zone is converted to UTC first.
        (
            datetime(2024, 6, 1, 11, 30, 0, 250000, tzinfo=ZoneInfo("Europe/Paris")),
            "2024-06-01T09:30:00.250000Z",
        ),
        (
            datetime(2024, 1, 1, 0, 0, tzinfo=timezone(timedelta(hours=-5))),
            "2024-01-01T05:00:00.000000Z",
        ),
    ],
)
def test_dates_are_stored_as_sortable_utc_text(moment: datetime, stored: str) -> None:
    assert to_storage(moment) == stored
    assert from_storage(stored) == moment


def test_file_store_uses_wal_and_foreign_keys(store: Store) -> None:
    with store.read() as tx:
        assert tx.scalar("PRAGMA journal_mode") == "wal"
        assert tx.scalar("PRAGMA foreign_keys") == 1
        assert tx.setting("schema_version") == str(SCHEMA_VERSION)
    with pytest.raises(sqlite3.IntegrityError), store.transaction() as tx:
        tx.insert(
            "activities",
            {
                "sid": "WA" + "0" * 32,
                "workspace_sid": "WS" + "0" * 32,
                "friendly_name": "Orphan",
                "available": 0,
                "date_created": "x",
                "date_updated": "x",
            },
        )


def test_rollback_on_error_and_hooks_only_after_commit(store: Store) -> None:
    ran: list[str] = []
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.set_setting("k", "v")
        tx.after_commit(lambda: ran.append("rolled back"))
        raise RuntimeError("boom")
    with store.read() as tx:
        assert tx.setting("k") is None
    assert ran == []
    with store.transaction() as tx:
        tx.set_setting("k", "v")
        tx.after_commit(lambda: ran.append("committed"))
        assert ran == []
    # A file store's write may wait for its commit (store/behind.py); the hook waits with it.
    store.sync()
    assert ran == ["committed"]


def test_nested_transactions_join_the_outer_one(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction() as outer:
        outer.set_setting("a", "1")
        with store.transaction() as inner:
            assert inner is outer
            inner.set_setting("b", "2")
        raise RuntimeError("undo both")
    with store.read() as tx:
        assert tx.setting("a") is None and tx.setting("b") is None
    with store.read() as tx, pytest.raises(StoreError, match="inside a read"), store.transaction():
        pass
    with store.read() as tx, pytest.raises(StoreError, match="cannot change"):
        tx.set_setting("c", "3")


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO settings (key, value) VALUES ('raw', 'x')",
        "  update settings SET value = 'y'",
        "DELETE FROM settings",
        "CREATE TABLE scratch (x)",
    ],
)
def test_a_read_transaction_refuses_raw_writes(store: Store, sql: str) -> None:
    """A write inside a read transaction is a programming error, raised whichever helper
    runs it (execute, one, all, scalar), and nothing is written."""
    for run in ("execute", "one", "all", "scalar"):
        with store.read() as tx, pytest.raises(StoreError, match="cannot change"):
            getattr(tx, run)(sql)
    with store.read() as tx:
        assert tx.setting("raw") is None
        assert tx.scalar("SELECT count(*) FROM settings WHERE key = 'schema_version'") == 1
        assert tx.all("PRAGMA table_info(settings)")
    with store.transaction() as tx:
        tx.execute("INSERT INTO settings (key, value) VALUES ('raw', 'x')")
    with store.read() as tx:
        assert tx.setting("raw") == "x"


def test_writers_in_one_process_queue_instead_of_timing_out(tmp_path: Path) -> None:
    # Each transaction holds the lock for longer than SQLite's busy timeout here: threads
    # left to SQLite's sleep-and-retry would fail with "database is locked".
    store = Store(str(tmp_path / "busy.sqlite3"), busy_timeout_ms=20)
    failures: list[BaseException] = []

    def write(number: int) -> None:
        try:
            for round_ in range(5):
                with store.transaction() as tx:
                    tx.set_setting(f"thread{number}", str(round_))
                    time.sleep(0.03)
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=write, args=(number,)) for number in range(4)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
        with store.read() as tx:
            assert [tx.setting(f"thread{number}") for number in range(4)] == ["4"] * 4
    finally:
        store.close()


def test_each_thread_has_its_own_connection(store: Store) -> None:
    connections: list[sqlite3.Connection] = []

    def grab() -> None:
        with store.read() as tx:
            connections.append(tx.connection)

    threads = [threading.Thread(target=grab) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    grab()
    assert len({id(connection) for connection in connections}) == 4


def test_memory_store_shares_one_connection_safely() -> None:
    store = Store(":memory:")
    try:
        _add_workspace(store, "WS" + "1" * 32)

        def bump() -> None:
            for _ in range(50):
                with store.transaction() as tx:
                    value = int(tx.setting("counter") or 0)
                    tx.set_setting("counter", str(value + 1))

        threads = [threading.Thread(target=bump) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with store.read() as tx:
            assert tx.setting("counter") == "200"
            assert tx.scalar("SELECT count(*) FROM workspaces") == 1
    finally:
        store.close()


def test_concurrent_writers_on_a_file_lose_nothing(tmp_path: Path) -> None:
    database = str(tmp_path / "shared.sqlite3")
    stores = [Store(database) for _ in range(3)]  # as if three processes

    def bump(store: Store) -> None:
        for _ in range(40):
            with store.transaction() as tx:
                value = int(tx.setting("counter") or 0)
                tx.set_setting("counter", str(value + 1))
        # Another process sees these once they commit: at once here, not within the
        # commit-behind bound (store/behind.py).
        store.sync()

    threads = [threading.Thread(target=bump, args=(store,)) for store in stores]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with stores[0].read() as tx:
            assert tx.setting("counter") == "120"
    finally:
        for store in stores:
            store.close()


def test_closed_store_refuses_work(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "closed.sqlite3"))
    store.close()
    assert store.closed
    with pytest.raises(StoreError, match="closed"), store.read():
        pass


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    database = str(tmp_path / "future.sqlite3")
    store = Store(database)
    with store.transaction() as tx:
        tx.set_setting("schema_version", str(SCHEMA_VERSION + 1))
    store.close()
    with pytest.raises(StoreError, match="newer than"):
        Store(database)


def test_wipe_keeps_only_what_it_is_told(store: Store) -> None:
    _add_workspace(store, "WS" + "2" * 32)
    with store.transaction() as tx:
        tx.set_setting("account_sid", "AC" + "0" * 32)
        tx.set_setting("seed", "{}")
        Store.wipe(tx, keep_settings=("account_sid",))
    with store.read() as tx:
        assert tx.scalar("SELECT count(*) FROM workspaces") == 0
        assert tx.setting("account_sid") == "AC" + "0" * 32
        assert tx.setting("seed") is None
        assert tx.setting("schema_version") == str(SCHEMA_VERSION)


# -- keyset paging -------------------------------------------------------------------


@pytest.fixture
def numbered(store: Store) -> Store:
    """Ten workspaces named n0..n9 whose friendly names sort in reverse of creation."""
    for number in range(10):
        _add_workspace(store, f"WS{number:032x}", f"n{9 - number}")
    return store


def _page(store: Store, **arguments: Any) -> Page:
    with store.read() as tx:
        return page(
            tx,
            select="SELECT w.* FROM workspaces w",
            where=[],
            params=[],
            **arguments,
        )


def test_pages_walk_forward_and_back(numbered: Store) -> None:
    order = [Order("w.friendly_name", "friendly_name"), Order("w.seq", "seq")]
    first = _page(numbered, order=order, page_size=4)
    assert [row["friendly_name"] for row in first.rows] == ["n0", "n1", "n2", "n3"]
    assert first.previous_token is None and first.next_token.startswith("PA")
    second = _page(numbered, order=order, page_size=4, page_token=first.next_token)
    assert [row["friendly_name"] for row in second.rows] == ["n4", "n5", "n6", "n7"]
    third = _page(numbered, order=order, page_size=4, page_token=second.next_token)
    assert [row["friendly_name"] for row in third.rows] == ["n8", "n9"]
    assert third.next_token is None
    back = _page(numbered, order=order, page_size=4, page_token=third.previous_token)
    assert [row["friendly_name"] for row in back.rows] == ["n4", "n5", "n6", "n7"]
    start = _page(numbered, order=order, page_size=4, page_token=back.previous_token)
    assert [row["friendly_name"] for row in start.rows] == ["n0", "n1", "n2", "n3"]
    assert start.previous_token is None


def test_descending_order_predicate_and_page_number(numbered: Store) -> None:
    order = [Order("w.seq", "seq", descending=True)]
    odd = _page(
        numbered,
        order=order,
        page_size=2,
        page_number=1,
        predicate=lambda row: int(row["friendly_name"][1]) % 2 == 1,
    )
    assert [row["friendly_name"] for row in odd.rows] == ["n5", "n7"]
    assert odd.previous_token is not None and odd.next_token is not None


def _token(key_json: str) -> str:
    return "PA" + base64.urlsafe_b64encode(key_json.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "PA",
        "PA!!!",
        "PXeyJ4Ijox",
        "PAWzFd",
        "PAeyJ4Ijoxfq",
        # The right shape, but values no column of this store holds.
        _token('["n1", true]'),
        _token("[false, 3]"),
        _token('["n1", NaN]'),
        _token('["n1", Infinity]'),
        _token("[-Infinity, 3]"),
        _token('["n1", 1e400]'),
    ],
)
def test_foreign_page_tokens_are_refused(numbered: Store, token: str) -> None:
    order = [Order("w.friendly_name", "friendly_name"), Order("w.seq", "seq")]
    with pytest.raises(InvalidPageToken):
        _page(numbered, order=order, page_size=2, page_token=token)


def test_many_connections_opening_a_new_file_at_once(tmp_path: Path) -> None:
    """Switching a new file to WAL is not covered by the busy timeout: opening must retry."""
    errors: list[BaseException] = []
    for attempt in range(40):
        database = str(tmp_path / f"race-{attempt}.sqlite3")
        barrier = threading.Barrier(6)
        stores: list[Store] = []

        def open_store(
            database: str = database,
            barrier: threading.Barrier = barrier,
            stores: list[Store] = stores,
        ) -> None:
            barrier.wait()
            try:
                stores.append(Store(database))
            except BaseException as error:
                errors.append(error)

        threads = [threading.Thread(target=open_store) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for store in stores:
            store.close()
    assert errors == []


def test_every_update_moves_a_versioned_row_on_and_the_cache_follows(store: Store) -> None:
    """tasks and workers carry a version (their ETag) that any UPDATE moves on by one, raw
    SQL included; a row cached in the transaction shows the version the database holds."""
    _add_workspace(store, "WS1")
    stamp = "2024-01-01T00:00:00.000000Z"
    with store.transaction() as tx:
        tx.insert(
            "activities",
            {
                "sid": "WA1",
                "workspace_sid": "WS1",
                "friendly_name": "Idle",
                "available": 1,
                "date_created": stamp,
                "date_updated": stamp,
            },
        )
        tx.insert(
            "workers",
            {
                "sid": "WK1",
                "workspace_sid": "WS1",
                "friendly_name": "Ann",
                "friendly_name_key": "ann",
                "attributes": "{}",
                "activity_sid": "WA1",
                "available": 1,
                "date_status_changed": stamp,
                "date_created": stamp,
                "date_updated": stamp,
            },
        )

        def load() -> dict[str, Any] | None:
            return tx.one("SELECT * FROM workers WHERE sid = 'WK1'")

        def stored() -> int:
            return tx.scalar("SELECT version FROM workers WHERE sid = 'WK1'")

        assert tx.cached("workers", "WK1", load)["version"] == 0 == stored()
        tx.update("workers", "WK1", {"attributes": '{"a": 1}'})
        assert tx.cached("workers", "WK1", load)["version"] == 1 == stored()
        tx.update("workers", "WK1", {"attributes": '{"a": 1}'})  # unchanged values still count
        assert tx.cached("workers", "WK1", load)["version"] == 2 == stored()
        tx.execute("UPDATE workers SET available = 0 WHERE sid = 'WK1'")
        assert tx.cached("workers", "WK1", load)["version"] == 3 == stored()
        tx.update("workers", "WK1", {"version": 10})  # a statement setting it is obeyed
        assert tx.cached("workers", "WK1", load)["version"] == 10 == stored()
