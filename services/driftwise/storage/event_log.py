"""The durable event log, source of truth, with the profile snapshots derived from it.

One SQLite file in WAL mode with synchronous=FULL: a transaction that returns has been fsynced,
so an event is acknowledged only after it is on disk. Events and the profiles they produced are
written in ONE transaction, so a crash leaves both or neither; profiles can always be rebuilt by
replaying a user's events (`events_for_user`).

All calls run on one worker thread (sqlite3 connections are not for concurrent use); the async
wrappers in `driftwise.storage.serial` keep the event loop free.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from driftwise.model.events import NEGATIVE_TYPES, Event, EventType

_EVENTS_TABLE = """
CREATE TABLE IF NOT EXISTS {name} (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,  -- arrival order
    event_id      TEXT NOT NULL,                     -- idempotency key, unique per user
    user_id       TEXT NOT NULL,
    type          INTEGER NOT NULL,
    time          REAL NOT NULL,                     -- Unix seconds
    item_id       TEXT NOT NULL,
    text          TEXT NOT NULL,
    dwell_seconds REAL NOT NULL,
    impression_id TEXT NOT NULL,
    context       TEXT NOT NULL,                     -- JSON
    recorded_at   REAL NOT NULL,
    UNIQUE (user_id, event_id)
);
"""
SCHEMA = (
    _EVENTS_TABLE.format(name="events")
    + """
CREATE INDEX IF NOT EXISTS events_by_user ON events (user_id, time);
-- an item's newest events (InsightService.GetItem) without a scan of the log
CREATE INDEX IF NOT EXISTS events_by_item ON events (item_id, time);
CREATE TABLE IF NOT EXISTS profiles (
    user_id    TEXT PRIMARY KEY,
    version    INTEGER NOT NULL,
    state      BLOB NOT NULL                         -- UserProfile.to_bytes()
);
CREATE TABLE IF NOT EXISTS item_stats (
    item_id    TEXT PRIMARY KEY,
    positives  INTEGER NOT NULL                      -- positive events about the item
);
-- the cold-start pool takes the most popular items: ORDER BY positives DESC reads the index, not a scan
CREATE INDEX IF NOT EXISTS item_stats_by_positives ON item_stats (positives);
CREATE TABLE IF NOT EXISTS meta (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL
);
"""
)
_USER_ID_SCHEME = "user_id_scheme"  # meta key: how user ids are stored (driftwise.privacy)
_LEARNED_TOPICS = "learned_topics"  # meta key: TopicModel.to_json of the topics profiles use
_TUNED_RANKING = "tuned_ranking"  # meta key: what the last self-tuning chose, served at the next start
_PROFILES_TOPICS = "profiles_topics"  # meta key: the topics' fingerprint all profiles were rebuilt with


@dataclass(frozen=True, slots=True)
class DeletedUser:
    events: int
    profile_existed: bool
    positives: Counter[str]  # what item_counts shrank by


@dataclass(frozen=True, slots=True)
class UserRow:
    """A user with events, as InsightService.ListUsers lists them."""

    user_id: str
    event_count: int
    last_event_time: float  # of the newest event (event time, not arrival)
    profile_version: int


@dataclass(frozen=True, slots=True)
class Interaction:
    """One event about an item."""

    user_id: str
    event_id: str
    type: EventType
    time: float


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    """An event as recorded, with the context the API sent."""

    event: Event
    context: dict[str, str]


class EventLog:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._scope_event_ids_per_user()
        self._db.executescript(SCHEMA)

    def _scope_event_ids_per_user(self) -> None:
        """Logs written before event ids were scoped per user had event_id UNIQUE on its own: the
        table is rebuilt once with UNIQUE (user_id, event_id), rows and their seq unchanged."""
        unique_alone = any(
            unique and [c[2] for c in self._db.execute(f"PRAGMA index_info('{name}')")] == ["event_id"]
            for _, name, unique, *_ in self._db.execute("PRAGMA index_list('events')")
        )
        if not unique_alone:
            return
        with _transaction(self._db):
            self._db.execute(_EVENTS_TABLE.format(name="events_scoped"))
            self._db.execute("INSERT INTO events_scoped SELECT * FROM events ORDER BY seq")
            self._db.execute("DROP TABLE events")  # its indexes go with it; SCHEMA makes them again
            self._db.execute("ALTER TABLE events_scoped RENAME TO events")

    def close(self) -> None:
        self._db.close()

    def existing_events(self, keys: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which (user_id, event_id) pairs are recorded: an event id is unique per user."""
        by_user: dict[str, list[str]] = {}
        for user_id, event_id in dict.fromkeys(keys):
            by_user.setdefault(user_id, []).append(event_id)
        found: set[tuple[str, str]] = set()
        for user_id, event_ids in by_user.items():  # each lookup reads the (user_id, event_id) index
            for chunk in _chunks(event_ids, 500):
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT event_id FROM events WHERE user_id = ? AND event_id IN ({marks})",
                    [user_id, *chunk],
                )
                found.update((user_id, r[0]) for r in rows)
        return found

    def append(
        self,
        events: Sequence[LoggedEvent],
        profiles: Iterable[tuple[str, int, bytes]],
        recorded_at: float,
    ) -> Counter[str]:
        """Record events and the profiles (user_id, version, state) they produced, atomically;
        returns the positive events it counted per item (what `item_counts` grew by)."""
        with _transaction(self._db):
            self._db.executemany(
                "INSERT INTO events (event_id, user_id, type, time, item_id, text, dwell_seconds,"
                " impression_id, context, recorded_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                [
                    (
                        e.event_id,
                        e.user_id,
                        int(e.type),
                        e.time,
                        e.item_id,
                        e.text,
                        e.dwell_seconds,
                        e.impression_id,
                        json.dumps(le.context),
                        recorded_at,
                    )
                    for le in events
                    for e in [le.event]
                ],
            )
            self._db.executemany(
                "INSERT INTO profiles (user_id, version, state) VALUES (?,?,?) ON CONFLICT(user_id)"
                " DO UPDATE SET version=excluded.version, state=excluded.state",
                list(profiles),
            )
            positives = [
                (le.event.item_id,)
                for le in events
                if le.event.item_id and le.event.type not in NEGATIVE_TYPES
            ]
            self._db.executemany(
                "INSERT INTO item_stats (item_id, positives) VALUES (?, 1) ON CONFLICT(item_id)"
                " DO UPDATE SET positives = positives + 1",
                positives,
            )
        return Counter(item_id for (item_id,) in positives)

    def load_profile(self, user_id: str) -> bytes | None:
        row = self._db.execute("SELECT state FROM profiles WHERE user_id = ?", (user_id,)).fetchone()
        return None if row is None else bytes(row[0])

    def events_for_user(self, user_id: str) -> list[LoggedEvent]:
        """The user's events in arrival order (the order they were applied)."""
        rows = self._db.execute(
            "SELECT event_id, user_id, type, time, item_id, text, dwell_seconds, impression_id,"
            " context FROM events WHERE user_id = ? ORDER BY seq",
            (user_id,),
        )
        return [
            LoggedEvent(Event(r[0], r[1], EventType(r[2]), r[3], r[4], r[5], r[6], r[7]), json.loads(r[8]))
            for r in rows
        ]

    def item_events(self) -> dict[str, list[Event]]:
        """Every user's item events in arrival order (the order they were applied): what a refit
        holds out and replays (driftwise.model.tuning)."""
        events: dict[str, list[Event]] = {}
        rows = self._db.execute(
            "SELECT event_id, user_id, type, time, item_id, dwell_seconds FROM events"
            " WHERE item_id != '' ORDER BY user_id, seq"
        )
        for event_id, user_id, type_, time, item_id, dwell in rows:
            events.setdefault(user_id, []).append(
                Event(event_id, user_id, EventType(type_), time, item_id, dwell_seconds=dwell)
            )
        return events

    def event_count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0])

    def seen_item_ids(self, user_id: str) -> list[str]:
        rows = self._db.execute(
            "SELECT DISTINCT item_id FROM events WHERE user_id = ? AND item_id != ''", (user_id,)
        )
        return [r[0] for r in rows]

    def item_ids(self) -> list[str]:
        """Every item that any event refers to."""
        return [r[0] for r in self._db.execute("SELECT DISTINCT item_id FROM events WHERE item_id != ''")]

    def popular_items(self, limit: int) -> list[tuple[str, int]]:
        rows = self._db.execute(
            "SELECT item_id, positives FROM item_stats ORDER BY positives DESC, item_id LIMIT ?", (limit,)
        )
        return [(r[0], r[1]) for r in rows]

    def item_counts(self) -> Counter[str]:
        """Positive events per item, for every item that has any."""
        return Counter({r[0]: r[1] for r in self._db.execute("SELECT item_id, positives FROM item_stats")})

    def delete_user(self, user_id: str) -> DeletedUser:
        """Delete the user's events and profile, and their share of the item counts, atomically."""
        negatives = ",".join(str(int(t)) for t in NEGATIVE_TYPES)
        with _transaction(self._db):
            positives = Counter(
                dict(
                    self._db.execute(
                        "SELECT item_id, COUNT(*) FROM events WHERE user_id = ? AND item_id != ''"
                        f" AND type NOT IN ({negatives}) GROUP BY item_id",
                        (user_id,),
                    ).fetchall()
                )
            )
            self._db.executemany(
                "UPDATE item_stats SET positives = positives - ? WHERE item_id = ?",
                [(n, item_id) for item_id, n in positives.items()],
            )
            self._db.execute("DELETE FROM item_stats WHERE positives <= 0")
            events = self._db.execute("DELETE FROM events WHERE user_id = ?", (user_id,)).rowcount
            profile = self._db.execute("DELETE FROM profiles WHERE user_id = ?", (user_id,)).rowcount
        return DeletedUser(events, profile > 0, positives)

    def user_id_scheme(self) -> str | None:
        """How the stored user ids were written (driftwise.privacy); None for a log never written."""
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (_USER_ID_SCHEME,)).fetchone()
        if row is not None:
            return str(row[0])
        # logs from before the meta table held ids as sent
        return None if self._db.execute("SELECT 1 FROM events LIMIT 1").fetchone() is None else "plain"

    def record_user_id_scheme(self, scheme: str) -> None:
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO NOTHING",
            (_USER_ID_SCHEME, scheme),
        )

    def learned_topics(self) -> str | None:
        """TopicModel.to_json of the topics learned last (None: the taxonomy's are used)."""
        return self._meta(_LEARNED_TOPICS)

    def record_learned_topics(self, topics_json: str) -> None:
        self._set_meta(_LEARNED_TOPICS, topics_json)

    def tuned_ranking(self) -> str | None:
        """JSON of the ranking settings the last self-tuning chose (those that differ)."""
        return self._meta(_TUNED_RANKING)

    def record_tuned_ranking(self, chosen_json: str) -> None:
        self._set_meta(_TUNED_RANKING, chosen_json)

    def profiles_topics(self) -> str | None:
        """The fingerprint of the topics every stored profile was last rebuilt with."""
        return self._meta(_PROFILES_TOPICS)

    def record_profiles_topics(self, fingerprint: str) -> None:
        self._set_meta(_PROFILES_TOPICS, fingerprint)

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, key: str, value: str) -> None:
        with _transaction(self._db):
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = ?",
                (key, value, value),
            )

    def save_profiles(self, snapshots: Sequence[tuple[str, int, bytes]]) -> None:
        """Replace profile snapshots (user_id, version, state) rebuilt from the log, in one
        transaction; a user deleted meanwhile stays deleted."""
        with _transaction(self._db):
            self._db.executemany(
                "UPDATE profiles SET version = ?, state = ? WHERE user_id = ?",
                [(version, state, user_id) for user_id, version, state in snapshots],
            )

    def user_ids(self) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT user_id FROM profiles ORDER BY user_id")]

    # -- what InsightService reads -------------------------------------------------------------

    def totals(self) -> tuple[int, int]:
        """(users with events, events): each user with events has a profile row."""
        users = self._db.execute("SELECT COUNT(*) FROM profiles").fetchone()[0]
        return int(users), self.event_count()

    def list_users(self, prefix: str, after: tuple[float, str] | None, limit: int) -> list[UserRow]:
        """Users whose id starts with `prefix`, most recently active first (newest event time,
        then user id), those after `after` (the last row of the previous page) only. One pass over
        the (user_id, time) index: O(events) per page."""
        # the range reads only the prefix's part of the index; substr makes it exact
        where, args = "", list[object]()
        if prefix:
            where = "WHERE user_id >= ? AND user_id < ? AND substr(user_id, 1, ?) = ?"
            args = [prefix, prefix + "\U0010ffff", len(prefix), prefix]
        page, page_args = "", list[object]()
        if after is not None:
            page = "WHERE g.last < ? OR (g.last = ? AND g.user_id > ?)"
            page_args = [after[0], after[0], after[1]]
        rows = self._db.execute(
            "SELECT g.user_id, g.n, g.last, COALESCE(p.version, 0) FROM"
            f" (SELECT user_id, COUNT(*) AS n, MAX(time) AS last FROM events {where} GROUP BY user_id) g"
            f" LEFT JOIN profiles p ON p.user_id = g.user_id {page}"
            " ORDER BY g.last DESC, g.user_id LIMIT ?",
            [*args, *page_args, limit],
        )
        return [UserRow(r[0], r[1], r[2], r[3]) for r in rows]

    def item_interactions(self, item_id: str, limit: int) -> list[Interaction]:
        """The newest events about the item, newest event time first (then the last to arrive)."""
        rows = self._db.execute(
            "SELECT user_id, event_id, type, time FROM events WHERE item_id = ?"
            " ORDER BY time DESC, seq DESC LIMIT ?",
            (item_id, limit),
        )
        return [Interaction(r[0], r[1], EventType(r[2]), r[3]) for r in rows]


class _transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any error."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("ROLLBACK" if exc_type else "COMMIT")


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
