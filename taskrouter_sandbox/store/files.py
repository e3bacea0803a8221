"""The sandbox's private files: made 0600 (folders 0700), and tightened when found looser.

The database, its -wal and -shm files and the lock files beside it hold or guard the
sandbox's credentials, so only their owner may read them.
"""

from __future__ import annotations

import logging
import os
import stat

logger = logging.getLogger(__name__)

# The database holds the sandbox's auth token and the callback URLs (with any ?token= in them),
# the lock files beside it say which process serves it: only their owner may read them. The
# modes are given to each file as it is made, not through the process's umask, which other
# code in the process relies on. SQLite gives a database's -wal and -shm files the mode of the
# database file itself, so they follow.
PRIVATE_FILE_MODE = 0o600
PRIVATE_DIRECTORY_MODE = 0o700


def private_opener(path: str | os.PathLike[str], flags: int) -> int:
    """os.open for a file only its owner may read: made 0600, and tightened if it is not.

    A file made by an older version is 0644: left so, it would keep the credentials readable to
    every local user after an upgrade. It is only ever this server's own file, so dropping the
    group and other bits takes nothing away that the server gave on purpose. Usable as the
    opener of open(), for the lock files; never for a database (see make_private_file).
    """
    fd = os.open(path, flags, PRIVATE_FILE_MODE)
    try:
        mode = stat.S_IMODE(os.fstat(fd).st_mode)
        if mode & 0o077:
            os.fchmod(fd, mode & 0o700)
    except PermissionError:
        # Another user's file that this one may open: only its owner can change its mode.
        logger.warning("%s is readable by others and only its owner can change that", path)
    except BaseException:
        os.close(fd)
        raise
    return fd


def make_private_file(path: str | os.PathLike[str]) -> None:
    """Create a database file 0600 if it is missing, else tighten it (as private_opener does).

    An existing database is never opened here: closing any descriptor of a file drops every
    POSIX lock this process holds on it, the locks SQLite's connections in other threads rely
    on (https://www.sqlite.org/howtocorrupt.html, section 2.2); chmod needs no descriptor. Only
    a file this call has just made, which no connection can have locked yet, is closed.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, PRIVATE_FILE_MODE)
    except FileExistsError:
        tighten_if_present(path)
    else:
        os.close(fd)


def tighten_if_present(path: str | os.PathLike[str]) -> None:
    """Drop the group and other bits of a file that may exist (a database's -wal or -shm)."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
        if mode & 0o077:
            os.chmod(path, mode & 0o700)
    except FileNotFoundError:
        return
    except PermissionError:
        logger.warning("%s is readable by others and only its owner can change that", path)


def make_private_directory(path: str | os.PathLike[str]) -> None:
    """Create a folder (and its parents) for these files; the folder itself is made 0700.

    A folder that exists already is left as it is: it may be one the user chose
    (INSTANCE_PATH) and holds other things, and the files made in it are private anyway.
    """
    os.makedirs(path, mode=PRIVATE_DIRECTORY_MODE, exist_ok=True)
