"""SQLite persistence for the sandbox: the boundary every other layer reads and writes through.

files (private file modes), schema (tables, indexes, triggers and upgrades), database (Store,
its connections and Transaction) and paging (keyset pages and their tokens). The package
imports nothing else of the sandbox; these re-exports are what the rest of it uses.
"""

from taskrouter_sandbox.store.database import MEMORY, Store, StoreBusy, StoreError, Transaction
from taskrouter_sandbox.store.files import (
    PRIVATE_DIRECTORY_MODE,
    PRIVATE_FILE_MODE,
    make_private_directory,
    make_private_file,
    private_opener,
    tighten_if_present,
)
from taskrouter_sandbox.store.paging import InvalidPageToken, Order, Page, page
from taskrouter_sandbox.store.schema import (
    FREE_VALUE,
    RESOURCE_TABLES,
    SCHEMA_VERSION,
    STATISTICS_EVENT_TYPES,
    STATISTICS_EVENTS,
)

__all__ = [
    "FREE_VALUE",
    "MEMORY",
    "PRIVATE_DIRECTORY_MODE",
    "PRIVATE_FILE_MODE",
    "RESOURCE_TABLES",
    "SCHEMA_VERSION",
    "STATISTICS_EVENTS",
    "STATISTICS_EVENT_TYPES",
    "InvalidPageToken",
    "Order",
    "Page",
    "Store",
    "StoreBusy",
    "StoreError",
    "Transaction",
    "make_private_directory",
    "make_private_file",
    "page",
    "private_opener",
    "tighten_if_present",
]
