"""The database's schema: tables, indexes and triggers, and what upgrades an older file.

Store applies it on every open (taskrouter_sandbox/store/database.py): CREATE ... IF NOT
EXISTS for what is new, the columns of _COLUMNS that an older file lacks, and the triggers
rebuilt when SCHEMA_VERSION moves on.
"""

from __future__ import annotations

SCHEMA_VERSION = 9
# The last version that changed REBUILT_INDEXES, the free triggers or the backfills: a file of
# an older one has them rebuilt (_create_schema in store/database.py). Version 9 only added
# event_journal.
REBUILT_IN = 8

# Children before parents: the order in which a wipe empties the tables.
RESOURCE_TABLES = (
    "owed_callbacks",
    "alerts",
    "worker_queues",
    "worker_channels",
    "event_journal",
    "events",
    "reservations",
    "tasks",
    "workflows",
    "workers",
    "task_queues",
    "task_channels",
    "activities",
    "workspaces",
)

# Tables whose rows no foreign key refers to and no trigger watches the deletion of: deleting
# one of their rows changes no other table, so the row cache forgets only that table's rows
# (store/transaction.py). tests/sandbox/store/test_row_cache.py checks it against the schema.
DELETED_ALONE = frozenset(
    {
        "alerts",
        "event_journal",
        "events",
        "owed_callbacks",
        "settings",
        "worker_channels",
        "worker_queues",
        "workflows",
    }
)

# The columns an event has after its seq and sid, in `events` and in `event_journal` alike
# (`events` gets wait_seconds and queue_wait_seconds through _COLUMNS, for older files).
_EVENT_COLUMNS = """workspace_sid TEXT NOT NULL REFERENCES workspaces(sid) ON DELETE CASCADE,
        event_type TEXT NOT NULL,
        event_date TEXT NOT NULL,
        event_date_ms INTEGER NOT NULL,
        resource_type TEXT NOT NULL,
        resource_sid TEXT NOT NULL,
        actor_type TEXT NOT NULL,
        actor_sid TEXT NOT NULL,
        description TEXT NOT NULL,
        event_data TEXT NOT NULL,
        task_sid TEXT,
        worker_sid TEXT,
        reservation_sid TEXT,
        task_queue_sid TEXT,
        workflow_sid TEXT,
        task_channel_unique_name TEXT,
        source TEXT NOT NULL,
        source_ip_address TEXT"""

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS workspaces (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        sid TEXT NOT NULL UNIQUE,
        friendly_name TEXT NOT NULL,
        default_activity_sid TEXT,
        timeout_activity_sid TEXT,
        event_callback_url TEXT,
        events_filter TEXT,
        multi_task_enabled INTEGER NOT NULL DEFAULT 0,
        prioritize_queue_order TEXT NOT NULL DEFAULT 'FIFO',
        date_created TEXT NOT NULL,
        date_updated TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS activities (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        sid TEXT NOT NULL UNIQUE,
        workspace_sid TEXT NOT NULL REFERENCES workspaces(sid) ON DELETE CASCADE,
        friendly_name TEXT NOT NULL,
        available INTEGER NOT NULL,
        date_created TEXT NOT NULL,
        date_updated TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS activities_workspace ON activities (workspace_sid, seq)",
    """CREATE TABLE IF NOT EXISTS task_channels (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        sid TEXT NOT NULL UNIQUE,
        workspace_sid TEXT NOT NULL REFERENCES workspaces(sid) ON DELETE CASCADE,
        friendly_name TEXT NOT NULL,
        unique_name TEXT NOT NULL,
        channel_optimized_routing INTEGER,
        date_created TEXT NOT NULL,
        date_updated TEXT NOT NULL,
        UNIQUE (workspace_sid, unique_name)
    )""",
    """CREATE TABLE IF NOT EXISTS workers (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        sid TEXT NOT NULL UNIQUE,
        workspace_sid TEXT NOT NULL REFERENCES workspaces(sid) ON DELETE CASCADE,
        friendly_name TEXT NOT NULL,
        friendly_name_key TEXT NOT NULL,
        attributes TEXT NOT NULL,
        activity_sid TEXT NOT NULL REFERENCES activities(sid),
        available INTEGER NOT NULL,
        date_status_changed TEXT NOT NULL,
        date_created TEXT NOT NULL,
        date_updated TEXT NOT NULL,
        UNIQUE (workspace_sid, friendly_name_key)
    )""",
    "CREATE INDEX IF NOT EXISTS workers_activity ON workers (workspace_sid, activity_sid)",
    # Routing looks for available workers, the one idle the longest first.
    """CREATE INDEX IF NOT EXISTS workers_available
        ON workers (workspace_sid, available, date_status_changed)""",
    """CREATE TABLE IF NOT EXISTS task_queues (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        sid TEXT NOT NULL UNIQUE,
        workspace_sid TEXT NOT NULL REFERENCES workspaces(sid) ON DELETE CASCADE,
        friendly_name TEXT NOT NULL,
        target_workers TEXT NOT NULL,
        reservation_activity_sid TEXT,
        assignment_activity_sid TEXT,
        max_reserved_workers INTEGER NOT NULL DEFAULT 1,
        task_order TEXT NOT NULL DEFAULT 'FIFO',
        date_created TEXT NOT NULL,
        date_updated TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS task_queues_workspace ON task_queues (workspace_sid, seq)",
    """CREATE TABLE IF NOT EXISTS workflows (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        sid TEXT NOT NULL UNIQUE,
        workspace_sid TEXT NOT NULL REFERENCES workspaces(sid) ON DELETE CASCADE,
        friendly_name TEXT NOT NULL,
        configuration TEXT NOT NULL,
        assignment_callback_url TEXT,
        fallback_assignment_callback_url TEXT,
        task_reservation_timeout INTEGER NOT NULL DEFAULT 120,
        document_content_type TEXT NOT NULL DEFAULT 'application/json',
        date_created TEXT NOT NULL,
        date_updated TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS workflows_workspace ON workflows (workspace_sid, seq)",
    # target_index is the position of the workflow target the task sits in (-1 for
    # default_filter); target_entered_date starts that target's timeout; timeout_at is the
    # task's TTL deadline. Routing and timers read them.
    """CREATE TABLE IF NOT EXISTS tasks (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        sid TEXT NOT NULL UNIQUE,
        workspace_sid TEXT NOT NULL REFERENCES workspaces(sid) ON DELETE CASCADE,
        attributes TEXT NOT NULL,
        assignment_status TEXT NOT NULL,
        priority INTEGER NOT NULL DEFAULT 0,
        timeout INTEGER NOT NULL,
        timeout_at TEXT NOT NULL,
        reason TEXT,
        task_queue_sid TEXT,
        task_queue_entered_date TEXT,
        workflow_sid TEXT,
        workflow_filter_name TEXT,
        target_index INTEGER,
        target_entered_date TEXT,
        task_channel_sid TEXT,
        rejection_count INTEGER NOT NULL DEFAULT 0,
        virtual_start_time TEXT,
        ignore_capacity INTEGER,
        routing_target TEXT,
        addons TEXT,
        date_created TEXT NOT NULL,
        date_updated TEXT NOT NULL
    )""",
    # Routing columns added in schema version 2 (older files get them through _COLUMNS).
    """CREATE INDEX IF NOT EXISTS tasks_queue_order
        ON tasks (workspace_sid, assignment_status, task_queue_sid, priority, date_created)""",
    "CREATE INDEX IF NOT EXISTS tasks_workflow ON tasks (workspace_sid, workflow_sid)",
    # A workflow's active tasks by status and priority (its real-time statistics), without
    # reading the finished ones its history holds.
    """CREATE INDEX IF NOT EXISTS tasks_workflow_status
        ON tasks (workflow_sid, assignment_status, priority)""",
    "CREATE INDEX IF NOT EXISTS tasks_created ON tasks (workspace_sid, date_created)",
    # tasks_ttl: in _ROUTING_INDEXES (partial on the waiting statuses since version 8).
    """CREATE TABLE IF NOT EXISTS reservations (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        sid TEXT NOT NULL UNIQUE,
        workspace_sid TEXT NOT NULL REFERENCES workspaces(sid) ON DELETE CASCADE,
        task_sid TEXT NOT NULL REFERENCES tasks(sid) ON DELETE CASCADE,
        worker_sid TEXT NOT NULL REFERENCES workers(sid) ON DELETE CASCADE,
        reservation_status TEXT NOT NULL,
        task_queue_sid TEXT,
        workflow_sid TEXT,
        worker_previous_activity_sid TEXT,
        timeout_at TEXT,
        instruction TEXT,
        date_created TEXT NOT NULL,
        date_updated TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS reservations_task ON reservations (task_sid, reservation_status)",
    """CREATE INDEX IF NOT EXISTS reservations_worker
        ON reservations (worker_sid, reservation_status)""",
    """CREATE INDEX IF NOT EXISTS reservations_timeout
        ON reservations (reservation_status, timeout_at)""",
    f"""CREATE TABLE IF NOT EXISTS events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        sid TEXT NOT NULL UNIQUE,
        {_EVENT_COLUMNS}
    )""",
    # Version 9: the events a write operation records go here (state/events.py flush), and
    # move into `events` in batches (state/events.py move: one INSERT ... SELECT and one
    # DELETE) every few operations and before any read of the events. No index but its
    # rowid: an operation's commit writes the table's last pages, where each event went into
    # `events` and its five indexes.
    f"""CREATE TABLE IF NOT EXISTS event_journal (
        seq INTEGER PRIMARY KEY,
        sid TEXT NOT NULL,
        {_EVENT_COLUMNS},
        wait_seconds INTEGER,
        queue_wait_seconds INTEGER
    )""",
    "CREATE INDEX IF NOT EXISTS events_date ON events (workspace_sid, event_date)",
    # The events of some types over a window (the Events list's EventType filter, and the
    # cumulative statistics, which count each type without reading the event rows). It
    # replaced events_type (workspace_sid, event_type), its prefix.
    "DROP INDEX IF EXISTS events_type",
    # Version 5 replaced events_type_date, events_queue_type_date and events_workflow_type_date
    # with the same columns and the waits after them (_EVENT_WAIT_INDEXES).
    "DROP INDEX IF EXISTS events_type_date",
    # Three indexes no query used (EXPLAIN QUERY PLAN over every statement the sandbox's tests
    # run), each written for every event: the Events list's TaskSid, WorkerSid and
    # ReservationSid filters search the workspace's window (events_date, which also gives its
    # order), and a worker's statistics read events_worker_type_date, which events_worker only
    # repeated the first column of. Dropped from older files when they are opened.
    "DROP INDEX IF EXISTS events_task",
    "DROP INDEX IF EXISTS events_worker",
    "DROP INDEX IF EXISTS events_reservation",
    # Cumulative statistics read one queue's, workflow's or worker's events of some types over
    # a window (taskrouter_sandbox/engine/cumulative_statistics.py). An added index needs no
    # version.
    "DROP INDEX IF EXISTS events_queue_type_date",
    "DROP INDEX IF EXISTS events_workflow_type_date",
    # events_worker_type_date: in _ROUTING_INDEXES (partial since version 6).
    # Which workers a queue's target_workers selects, kept current on every worker attribute
    # or target_workers change, with the worker's availability and idle time copied in so
    # routing picks the worker idle the longest from one index.
    # free: available and holding no pending reservation (kept by the triggers below), so a
    # single-tasking queue reads only the workers it could offer a task to.
    """CREATE TABLE IF NOT EXISTS worker_queues (
        task_queue_sid TEXT NOT NULL REFERENCES task_queues(sid) ON DELETE CASCADE,
        worker_sid TEXT NOT NULL REFERENCES workers(sid) ON DELETE CASCADE,
        workspace_sid TEXT NOT NULL,
        available INTEGER NOT NULL,
        idle_since TEXT NOT NULL,
        free INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (task_queue_sid, worker_sid)
    )""",
    """CREATE INDEX IF NOT EXISTS worker_queues_idle
        ON worker_queues (task_queue_sid, available, idle_since, worker_sid)""",
    "CREATE INDEX IF NOT EXISTS worker_queues_worker ON worker_queues (worker_sid)",
    # A worker's capacity and availability on each task channel of its workspace (Twilio's
    # WorkerChannel): one row per (worker, task channel), made with whichever comes second.
    """CREATE TABLE IF NOT EXISTS worker_channels (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        sid TEXT NOT NULL UNIQUE,
        workspace_sid TEXT NOT NULL REFERENCES workspaces(sid) ON DELETE CASCADE,
        worker_sid TEXT NOT NULL REFERENCES workers(sid) ON DELETE CASCADE,
        task_channel_sid TEXT NOT NULL REFERENCES task_channels(sid) ON DELETE CASCADE,
        capacity INTEGER NOT NULL DEFAULT 1,
        available INTEGER NOT NULL DEFAULT 1,
        date_created TEXT NOT NULL,
        date_updated TEXT NOT NULL,
        UNIQUE (worker_sid, task_channel_sid)
    )""",
    "CREATE INDEX IF NOT EXISTS worker_channels_channel ON worker_channels (task_channel_sid)",
    # Deleting a workspace looks up its rows through the foreign key.
    "CREATE INDEX IF NOT EXISTS worker_channels_workspace ON worker_channels (workspace_sid)",
    """CREATE TABLE IF NOT EXISTS alerts (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        sid TEXT NOT NULL UNIQUE,
        workspace_sid TEXT REFERENCES workspaces(sid) ON DELETE CASCADE,
        code INTEGER NOT NULL,
        level TEXT NOT NULL,
        message TEXT NOT NULL,
        url TEXT,
        reservation_sid TEXT,
        date_created TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS alerts_workspace ON alerts (workspace_sid, seq)",
    # The outbox of assignment callbacks (taskrouter_sandbox/state/outbox.py): a row is written in
    # the transaction that creates its reservation and deleted in the one that applies the answer,
    # so a crash in between leaves it for the next start to send. claimed_by names the process
    # sending it (its owner lock file says whether it still runs). A new table needs no
    # schema version: IF NOT EXISTS adds it to an older file, and older code ignores it.
    """CREATE TABLE IF NOT EXISTS owed_callbacks (
        reservation_sid TEXT PRIMARY KEY REFERENCES reservations(sid) ON DELETE CASCADE,
        url TEXT NOT NULL,
        fallback_url TEXT,
        params TEXT NOT NULL,
        created TEXT NOT NULL,
        claimed_by TEXT,
        claimed_at TEXT
    ) WITHOUT ROWID""",
)

# Columns later schema versions added to existing tables: (table, column, declaration).
_COLUMNS = (
    ("tasks", "filter_index", "INTEGER"),
    ("tasks", "target_timeout_at", "TEXT"),
    ("tasks", "routing_date", "TEXT"),
    ("worker_queues", "free", "INTEGER NOT NULL DEFAULT 0"),
    # The row's version, its ETag (taskrouter_sandbox/domain/versions.py); kept by
    # _VERSION_TRIGGERS.
    ("tasks", "version", "INTEGER NOT NULL DEFAULT 0"),
    ("workers", "version", "INTEGER NOT NULL DEFAULT 0"),
    ("reservations", "version", "INTEGER NOT NULL DEFAULT 0"),
    # Version 5: how long the task had waited, in whole seconds, when its reservation was
    # accepted or it was canceled (wait_seconds, from its creation) and when accepted
    # (queue_wait_seconds, from entering the queue); NULL on every other event. Written with
    # the event (taskrouter_sandbox/state/events.py), so the cumulative statistics read them from an
    # index instead of parsing each event's JSON.
    ("events", "wait_seconds", "INTEGER"),
    ("events", "queue_wait_seconds", "INTEGER"),
)

# Version 5's waits for the events an older file holds, from the same JSON fields.
EVENT_WAITS_BACKFILL = """UPDATE events SET
    wait_seconds = max(0, event_date_ms / 1000
        - CAST(json_extract(event_data, '$.TaskDateCreated') AS INTEGER)),
    queue_wait_seconds = CASE WHEN event_type = 'reservation.accepted' THEN max(0,
        event_date_ms / 1000 - CAST(json_extract(event_data, '$.TaskQueueEnteredDate') AS INTEGER))
        END
    WHERE event_type IN ('reservation.accepted', 'task.canceled') AND wait_seconds IS NULL"""

# Tables whose rows carry a version that moves on every UPDATE of the row, whatever code
# path writes it (routing's status moves included): an AFTER UPDATE trigger adds one unless
# the statement set the version itself. Transaction.update keeps its cached rows in step.
VERSIONED_TABLES = ("tasks", "workers", "reservations")
_VERSION_TRIGGERS = tuple(
    f"""CREATE TRIGGER IF NOT EXISTS {table}_version AFTER UPDATE ON {table}
        WHEN NEW.version = OLD.version
        BEGIN UPDATE {table} SET version = OLD.version + 1 WHERE seq = NEW.seq; END"""
    for table in VERSIONED_TABLES
)

# Version 4 added worker_channels: an older file's workers get a row for each task channel
# of their workspace, at Twilio's defaults (capacity 1, available).
WORKER_CHANNELS_BACKFILL = """INSERT INTO worker_channels
    (sid, workspace_sid, worker_sid, task_channel_sid, capacity, available,
     date_created, date_updated)
    SELECT 'WC' || lower(hex(randomblob(16))), k.workspace_sid, k.sid, c.sid, 1, 1,
        max(k.date_created, c.date_created), max(k.date_created, c.date_created)
    FROM workers k JOIN task_channels c ON c.workspace_sid = k.workspace_sid
    WHERE NOT EXISTS (SELECT 1 FROM worker_channels wc
        WHERE wc.worker_sid = k.sid AND wc.task_channel_sid = c.sid)
    ORDER BY k.seq, c.seq"""

# Whether a single-tasking worker is free, from its membership row's availability and its
# reservations: only a pending one holds it (why: the single-tasking note in routing/__init__.py).
_HELD = "'pending'"
FREE_VALUE = (
    "(worker_queues.available AND NOT EXISTS (SELECT 1 FROM reservations r"
    f" WHERE r.worker_sid = worker_queues.worker_sid AND r.reservation_status = {_HELD}))"
)

# The triggers keeping worker_queues.free. CREATE TRIGGER IF NOT EXISTS keeps an older
# version's text, so a schema upgrade drops them first (version 3: accepted stopped holding).
_FREE_TRIGGERS = (
    "worker_queues_free_born",
    "worker_queues_free_moved",
    "reservations_hold",
    "reservations_hold_changed",
    "reservations_hold_deleted",
)

# The event types the cumulative statistics read (taskrouter_sandbox/engine/
# cumulative_statistics.py: its counts, waits and workers' activity stays), the only ones the
# scope indexes below hold (version 7), and their partial indexes' term as the queries they
# serve must write it. A type the statistics start to read must be added here, with a new
# schema version (tests/sandbox/store/test_statistics_indexes_upgrade.py checks the first).
STATISTICS_EVENT_TYPES = (
    "task.created",
    "task.completed",
    "task.canceled",
    "task.deleted",
    "task-queue.entered",
    "task-queue.moved",
    "workflow.entered",
    "workflow.timeout",
    "reservation.created",
    "reservation.accepted",
    "reservation.rejected",
    "reservation.timeout",
    "reservation.canceled",
    "reservation.rescinded",
    "worker.created",
    "worker.activity.update",
    "worker.deleted",
)
# Written as a chain of ORs, not an IN list (version 8): SQLite evaluates a partial index's
# term on every row written, and an IN list of more than two constants is a small b-tree it
# builds afresh at each execution of the statement: for each event, in each of the four
# indexes (about half of an event INSERT's time, measured). The queries say the same chain.
STATISTICS_EVENTS = (
    "(" + " OR ".join(f"event_type = '{name}'" for name in STATISTICS_EVENT_TYPES) + ")"
)

# Indexes over the added columns and the triggers keeping them, created once they exist.
# A new trigger or index needs no schema version: IF NOT EXISTS adds it to an older file.
# The events of a scope (the workspace, a queue, a workflow) by type over a window: the
# cumulative statistics, whose counts and waits are read from these entries alone, never
# from the event rows.
# A scope column that can be NULL (an event of no queue: task.created, workflow.entered, a
# worker's own; of no worker: five of a routed task's eight) is left out of its index: the
# index is partial, WHERE column IS NOT NULL, which SQLite uses for any query comparing the
# column (= ?, IN (...)) without the query saying so. Version 6 made them partial.
# Version 7 also leaves out the events of the types no statistics read (two of a routed
# task's eight: workflow.target-matched and reservation.completed; task.updated, the
# worker's attribute and capacity changes...): each index holds only STATISTICS_EVENTS.
# SQLite uses such an index only for a query whose WHERE says the same term, word for word
# (a bound parameter proves it only by SQLite preparing the statement again for each new
# value bound), so every query these indexes serve adds
# STATISTICS_EVENTS to its own event_type clause. (The Events list, EventType filter
# included, reads events_date, the workspace's window in its order, before and since.)
_EVENT_WAIT_INDEXES = tuple(
    f"""CREATE INDEX IF NOT EXISTS {name} ON events ({column}, event_type, event_date,
        task_channel_unique_name, wait_seconds, queue_wait_seconds)
        WHERE {STATISTICS_EVENTS}{where}"""
    for name, column, where in (
        ("events_type_waits", "workspace_sid", ""),
        ("events_queue_type_waits", "task_queue_sid", " AND task_queue_sid IS NOT NULL"),
        ("events_workflow_type_waits", "workflow_sid", " AND workflow_sid IS NOT NULL"),
    )
)

# The statuses of a task still waiting for a worker to accept it, as the partial task
# indexes below say them (version 8): routing, the timers and the real-time statistics' longest
# waits read only these, and a task that leaves them (assigned, wrapping, completed, canceled)
# never comes back, so its later status changes write nothing to those indexes. Written as an
# OR: SQLite uses a partial index only when the query's WHERE implies its term, and it proves
# `assignment_status = 'pending'` implies one side of an OR, not an IN list. The queries say
# the status in their own text: from a bound one, SQLite proves it only by preparing the
# statement again each time the value bound changes (3.40 does so).
WAITING_TASKS = "(assignment_status = 'pending' OR assignment_status = 'reserved')"
# A queue's indexes also leave out the tasks in no queue: a new task is inserted before
# routing puts it in one (in the same transaction), so its INSERT writes nothing to them and
# the UPDATE that places it deletes nothing. Any query comparing task_queue_sid (= ?) implies it.
QUEUED_WAITING_TASKS = f"task_queue_sid IS NOT NULL AND {WAITING_TASKS}"

# Indexes whose definition a schema version changed (version 6: made partial, so the rows
# they have nothing to say about are not written to them; version 7: the event indexes keep
# to STATISTICS_EVENTS; version 8: the queue and timeout indexes of the tasks keep to
# WAITING_TASKS): an upgrade drops them, and _ROUTING_INDEXES makes them again as they now
# stand.
REBUILT_INDEXES = (
    "events_type_waits",
    "events_queue_type_waits",
    "events_workflow_type_waits",
    "events_worker_type_date",
    "tasks_target_timeout",
    "tasks_ttl",
    "tasks_fifo",
    "tasks_newest",
    "tasks_waiting_since",
    "tasks_in_queue_since",
    "tasks_queue",
)

_ROUTING_INDEXES = (
    *_VERSION_TRIGGERS,
    *_EVENT_WAIT_INDEXES,
    # A worker's events of some types over a window (its cumulative statistics).
    f"""CREATE INDEX IF NOT EXISTS events_worker_type_date
        ON events (worker_sid, event_type, event_date, task_channel_unique_name)
        WHERE {STATISTICS_EVENTS} AND worker_sid IS NOT NULL""",
    # The waiting tasks by status and deadline (the timers: a task's TTL).
    f"""CREATE INDEX IF NOT EXISTS tasks_ttl ON tasks (assignment_status, timeout_at)
        WHERE {WAITING_TASKS}""",
    # A queue's tasks, all of them, in their order: the Task list's TaskQueueSid filter and the
    # count of a queue's active tasks before it is deleted (version 8: the queue's indexes
    # below keep to the waiting tasks). Holds no status, so a status change writes nothing.
    """CREATE INDEX IF NOT EXISTS tasks_queue ON tasks (task_queue_sid, seq)
        WHERE task_queue_sid IS NOT NULL""",
    # The next task for a worker: highest priority, then oldest (FIFO, read forwards)...
    f"""CREATE INDEX IF NOT EXISTS tasks_fifo
        ON tasks (task_queue_sid, assignment_status, priority DESC, date_created, seq)
        WHERE {QUEUED_WAITING_TASKS}""",
    # ... or the newest whatever its priority (LIFO, read backwards): TaskRouter's LIFO
    # ordering does not consider priority. tasks_lifo, which an older version ordered by
    # priority first, serves no query any more.
    "DROP INDEX IF EXISTS tasks_lifo",
    f"""CREATE INDEX IF NOT EXISTS tasks_newest
        ON tasks (task_queue_sid, assignment_status, date_created, seq)
        WHERE {QUEUED_WAITING_TASKS}""",
    # Only the tasks waiting out a target's timeout (most targets have none): a query reads it
    # with a comparison of target_timeout_at (<= ?) or, for min(), IS NOT NULL.
    """CREATE INDEX IF NOT EXISTS tasks_target_timeout
        ON tasks (assignment_status, target_timeout_at) WHERE target_timeout_at IS NOT NULL""",
    # A queue's waiting tasks in the order their age counts from (the Task resource's age:
    # virtual start, else creation) and in the order they entered the queue: its real-time
    # statistics read the first of each without sorting the queue (an index on an expression
    # serves a query that writes the expression the same way, with the table's own name).
    f"""CREATE INDEX IF NOT EXISTS tasks_waiting_since
        ON tasks (task_queue_sid, assignment_status, coalesce(virtual_start_time, date_created),
            seq) WHERE {QUEUED_WAITING_TASKS}""",
    f"""CREATE INDEX IF NOT EXISTS tasks_in_queue_since
        ON tasks (task_queue_sid, assignment_status, task_queue_entered_date, seq)
        WHERE {QUEUED_WAITING_TASKS}""",
    # The free members of a queue in idle order: routing stops at the first that fits, so
    # a new task costs the same with 10 or 10,000 busy members.
    """CREATE INDEX IF NOT EXISTS worker_queues_free
        ON worker_queues (task_queue_sid, free, idle_since, worker_sid)""",
    # worker_queues.free, kept in the database itself so that no code path (cascading
    # deletes included) can leave it stale: a membership row is born and re-stamped with it,
    # and every reservation that starts or stops holding its worker recomputes it.
    f"""CREATE TRIGGER IF NOT EXISTS worker_queues_free_born AFTER INSERT ON worker_queues
        BEGIN UPDATE worker_queues SET free = {FREE_VALUE}
            WHERE task_queue_sid = NEW.task_queue_sid AND worker_sid = NEW.worker_sid; END""",
    f"""CREATE TRIGGER IF NOT EXISTS worker_queues_free_moved
        AFTER UPDATE OF available ON worker_queues
        BEGIN UPDATE worker_queues SET free = {FREE_VALUE}
            WHERE task_queue_sid = NEW.task_queue_sid AND worker_sid = NEW.worker_sid; END""",
    f"""CREATE TRIGGER IF NOT EXISTS reservations_hold AFTER INSERT ON reservations
        WHEN NEW.reservation_status = {_HELD}
        BEGIN UPDATE worker_queues SET free = 0 WHERE worker_sid = NEW.worker_sid AND free; END""",
    f"""CREATE TRIGGER IF NOT EXISTS reservations_hold_changed
        AFTER UPDATE OF reservation_status, worker_sid ON reservations
        WHEN (OLD.reservation_status = {_HELD}) != (NEW.reservation_status = {_HELD})
            OR OLD.worker_sid != NEW.worker_sid
        BEGIN UPDATE worker_queues SET free = {FREE_VALUE}
            WHERE worker_sid IN (OLD.worker_sid, NEW.worker_sid); END""",
    f"""CREATE TRIGGER IF NOT EXISTS reservations_hold_deleted AFTER DELETE ON reservations
        WHEN OLD.reservation_status = {_HELD}
        BEGIN UPDATE worker_queues SET free = {FREE_VALUE}
            WHERE worker_sid = OLD.worker_sid; END""",
)
