"""The assignment callbacks the sandbox owes, kept in the database until they are answered.

TaskRouter makes one assignment callback per reservation, as the reservation is created (to
the workflow's AssignmentCallbackUrl, and to its FallbackAssignmentCallbackUrl when that call
fails), then waits for an answer until the reservation times out. The sandbox sends from
worker threads after the commit, so a crash between the commit and the answer would lose the
callback and leave the reservation waiting for its whole timeout. Here the callback is an
outbox row: written in the transaction that creates the reservation (record), deleted in the
one that applies the answer or the final failure (delivered), and re-sent by the next process
that starts delivery (Outbox.claim) while its reservation is still pending.

Several processes may share one database (gunicorn workers). Each row names the process that
sends it, and each such process holds an exclusive flock on a file of its own beside the
database for as long as it runs: the kernel drops it with the process however it ends (kill -9
included), so a row whose owner's lock nobody holds is one nobody is sending. A pid would not
do: it can be reused, and a restarted container gives the server the same one. Claiming
happens in a write transaction, which SQLite serialises between processes, so two starting
processes never both take a row.

At most once, not exactly once: a row is deleted with the answer applied, so a crash after the
app answered and before that commit sends the callback again after the restart (with the same
I-Twilio-Idempotency-Token, by which the app can tell). A crash before the answer re-sends it.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import json
import logging
import os
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from taskrouter_sandbox.store import MEMORY, Store, Transaction, private_opener, tighten_if_present

if TYPE_CHECKING:
    from taskrouter_sandbox.domain.values import AssignmentCallback

logger = logging.getLogger(__name__)

_INSERT = (
    "INSERT INTO owed_callbacks"
    " (reservation_sid, url, fallback_url, params, created, claimed_by, claimed_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
# What a restart still owes: the reservation must be pending and not past its timeout, which
# the timers are about to apply (TaskRouter would have timed it out meanwhile).
_NOT_OWED = (
    "DELETE FROM owed_callbacks WHERE reservation_sid NOT IN"
    " (SELECT sid FROM reservations WHERE reservation_status = 'pending' AND timeout_at > ?)"
)
_OWNER_SUFFIX = ".callbacks-"


def record(tx: Transaction, effect: AssignmentCallback, owner: str | None, stamp: str) -> None:
    """Write the callback a new reservation owes, in the transaction that creates it.

    owner is the process whose dispatcher will send it after the commit (None when no
    delivery runs here: the next process to start sends it).
    """
    tx.execute(
        _INSERT,
        (
            effect.reservation_sid,
            effect.url,
            effect.fallback_url,
            json.dumps(effect.params, separators=(",", ":")),
            stamp,
            owner,
            stamp if owner else None,
        ),
    )


def delivered(tx: Transaction, reservation_sid: str) -> None:
    """The callback was answered (or failed for good): never send it again."""
    tx.execute("DELETE FROM owed_callbacks WHERE reservation_sid = ?", (reservation_sid,))


@dataclass(frozen=True)
class OwedCallback:
    reservation_sid: str
    url: str
    fallback_url: str | None
    params: dict[str, Any]


class Outbox:
    """This process's claim on owed callbacks: its owner name and the lock that says it runs."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.owner = f"{os.getpid()}-{secrets.token_hex(6)}"
        self._fd: int | None = None
        self._path: str | None = None
        if store.database != MEMORY:
            self._path = store.database + _OWNER_SUFFIX + self.owner
            # Locked under a temporary name, then renamed: a sweep (below) never sees the
            # final name unlocked and takes it for a dead owner's.
            temporary = self._path + ".new"
            fd = private_opener(temporary, os.O_RDWR | os.O_CREAT)
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.rename(temporary, self._path)
            self._fd = fd
            os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        # A forked child must not keep the parent's lock alive past the parent; closing its
        # copy leaves the parent's lock in place (flock belongs to the open file description).
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None
            self._path = None

    def release(self) -> None:
        """Stop owning: rows still claimed become free for the next process that starts."""
        path, fd = self._path, self._fd
        self._path = self._fd = None
        if path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        if fd is not None:
            os.close(fd)

    def _alive(self, owner: str | None) -> bool:
        if owner is None:
            return False
        if owner == self.owner:
            return True
        if self.store.database == MEMORY:
            # One process only: a past owner is a stopped one of this process.
            return False
        return _locked(self.store.database + _OWNER_SUFFIX + owner)

    def claim(self, stamp: str) -> list[OwedCallback]:
        """Take the owed callbacks nobody alive is sending, dropping those no longer owed.

        Returns them to be sent by this process; they are claimed by it in the same
        transaction, so no other process sends them as well.
        """
        with self.store.transaction() as tx:
            tx.execute(_NOT_OWED, (stamp,))
            rows = tx.all("SELECT * FROM owed_callbacks ORDER BY created, reservation_sid")
            verdicts: dict[str | None, bool] = {}
            taken = []
            for row in rows:
                owner = row["claimed_by"]
                if owner not in verdicts:
                    verdicts[owner] = self._alive(owner)
                if not verdicts[owner]:
                    taken.append(row)
            tx.executemany(
                "UPDATE owed_callbacks SET claimed_by = ?, claimed_at = ?"
                " WHERE reservation_sid = ?",
                [(self.owner, stamp, row["reservation_sid"]) for row in taken],
            )
        self._sweep()
        return [
            OwedCallback(
                row["reservation_sid"], row["url"], row["fallback_url"], json.loads(row["params"])
            )
            for row in taken
        ]

    def _sweep(self) -> None:
        # Lock files of processes that are gone: their rows, if any, are this process's now.
        if self.store.database == MEMORY:
            return
        for path in glob.glob(glob.escape(self.store.database + _OWNER_SUFFIX) + "*"):
            if path.endswith(".new") or path == self._path:
                continue
            if not _locked(path):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
            else:
                # A live owner's, left readable by an older umask-bound copy: empty, but
                # private like every file beside the database.
                tighten_if_present(path)


def _locked(path: str) -> bool:
    """Whether a live process holds the owner lock at path (a missing file: nobody does)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
