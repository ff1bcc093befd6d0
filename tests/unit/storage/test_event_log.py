import sqlite3
from pathlib import Path

import pytest

from driftwise.model.events import Event, EventType
from driftwise.storage.event_log import EventLog, LoggedEvent


def logged(
    event_id: str, user: str = "u1", item: str = "i1", type_: EventType = EventType.LIKE
) -> LoggedEvent:
    return LoggedEvent(Event(event_id, user, type_, 100.0, item_id=item), {"device": "tv"})


def test_append_is_durable_across_reopen(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "events.sqlite")
    log.append([logged("a"), logged("b", item="i2")], [("u1", 2, b"state")], recorded_at=1.0)
    log.close()
    log = EventLog(tmp_path / "events.sqlite")
    assert [le.event.event_id for le in log.events_for_user("u1")] == ["a", "b"]
    assert log.events_for_user("u1")[0].context == {"device": "tv"}
    assert log.load_profile("u1") == b"state"
    assert log.existing_events([("u1", "a"), ("u1", "zzz"), ("u2", "a")]) == {("u1", "a")}
    assert sorted(log.seen_item_ids("u1")) == ["i1", "i2"]


def test_a_failed_append_stores_nothing(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "events.sqlite")
    log.append([logged("a")], [("u1", 1, b"v1")], recorded_at=1.0)
    with pytest.raises(sqlite3.IntegrityError):  # "a" again: the whole transaction rolls back
        log.append([logged("c"), logged("a")], [("u1", 3, b"v3")], recorded_at=2.0)
    assert log.existing_events([("u1", "c")]) == set()
    assert log.load_profile("u1") == b"v1"
    assert log.item_counts() == {"i1": 1}


def test_popularity_counts_positive_events_only(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "events.sqlite")
    added = log.append(
        [
            logged("a", "u1", "i1"),
            logged("b", "u2", "i1"),
            logged("c", "u2", "i2"),
            logged("d", "u3", "i2", EventType.DISLIKE),
        ],
        [],
        recorded_at=1.0,
    )
    assert added == {"i1": 2, "i2": 1}  # what the engine adds to its copy in memory
    assert log.popular_items(10) == [("i1", 2), ("i2", 1)]
    log.append([logged("e", "u3", "i2")], [], recorded_at=2.0)
    assert log.item_counts() == {"i1": 2, "i2": 2}


def test_delete_user_removes_events_profile_and_their_item_counts(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "events.sqlite")
    log.append(
        [
            logged("a", "u1", "i1"),
            logged("b", "u1", "i2"),
            logged("c", "u1", "i3", EventType.DISLIKE),  # never counted, so not uncounted
            logged("d", "u2", "i1"),
        ],
        [("u1", 1, b"x"), ("u2", 1, b"y")],
        recorded_at=1.0,
    )
    deleted = log.delete_user("u1")
    assert (deleted.events, deleted.profile_existed) == (3, True)
    assert deleted.positives == {"i1": 1, "i2": 1}  # what the engine subtracts from its copy
    assert log.item_counts() == {"i1": 1}  # i2 had only u1's event: gone from the pool
    assert log.popular_items(10) == [("i1", 1)]
    assert log.events_for_user("u1") == [] and log.load_profile("u1") is None
    assert log.load_profile("u2") == b"y"
    again = log.delete_user("u1")
    assert (again.events, again.profile_existed, again.positives) == (0, False, {})


def test_user_id_scheme_is_remembered_and_old_logs_count_as_plain(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "new.sqlite")
    assert log.user_id_scheme() is None  # never written: any scheme may start it
    log.record_user_id_scheme("hmac-sha256:abc")
    log.record_user_id_scheme("plain")  # the first one recorded stays
    log.close()
    assert EventLog(tmp_path / "new.sqlite").user_id_scheme() == "hmac-sha256:abc"

    old = EventLog(tmp_path / "old.sqlite")  # events but no scheme: written before it was recorded
    old.append([logged("a")], [], recorded_at=1.0)
    assert old.user_id_scheme() == "plain"


def test_event_ids_are_unique_per_user(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "events.sqlite")
    log.append([logged("a", "u1"), logged("a", "u2")], [], recorded_at=1.0)  # two events
    assert [le.event.user_id for le in log.events_for_user("u2")] == ["u2"]
    assert log.existing_events([("u1", "a"), ("u2", "a"), ("u3", "a")]) == {("u1", "a"), ("u2", "a")}
    with pytest.raises(sqlite3.IntegrityError):  # the same user's id twice is still refused
        log.append([logged("a", "u1")], [], recorded_at=2.0)


def test_a_log_with_global_event_ids_is_rebuilt_per_user_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite"
    old = sqlite3.connect(path)  # the schema before event ids were scoped per user
    old.executescript(
        """
        CREATE TABLE events (
            seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE,
            user_id TEXT NOT NULL, type INTEGER NOT NULL, time REAL NOT NULL, item_id TEXT NOT NULL,
            text TEXT NOT NULL, dwell_seconds REAL NOT NULL, impression_id TEXT NOT NULL,
            context TEXT NOT NULL, recorded_at REAL NOT NULL);
        CREATE INDEX events_by_user ON events (user_id, time);
        INSERT INTO events VALUES (7, 'a', 'u1', 3, 100.0, 'i1', '', 0, '', '{}', 1.0);
        INSERT INTO events VALUES (9, 'b', 'u1', 3, 101.0, 'i2', '', 0, '', '{}', 1.0);
        """
    )
    old.commit()
    old.close()
    log = EventLog(path)
    assert [le.event.event_id for le in log.events_for_user("u1")] == ["a", "b"]
    log.append([logged("a", "u2")], [], recorded_at=2.0)  # refused by the old schema
    assert log.existing_events([("u1", "a"), ("u2", "a")]) == {("u1", "a"), ("u2", "a")}
    seqs = [r[0] for r in log._db.execute("SELECT seq FROM events ORDER BY seq")]
    assert seqs == [7, 9, 10]  # arrival order kept, new rows after the old ones
    log.close()
    EventLog(path).close()  # opening again does not rebuild anything


def at(
    event_id: str, user: str, time: float, item: str = "i1", type_: EventType = EventType.LIKE
) -> LoggedEvent:
    return LoggedEvent(Event(event_id, user, type_, time, item_id=item), {})


def test_users_are_listed_most_recently_active_first_in_pages(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "events.sqlite")
    log.append(
        [at("a", "ann", 10), at("b", "ann", 50), at("c", "bob", 30), at("d", "bea", 50), at("e", "cy", 5)],
        [("ann", 2, b"s"), ("bob", 1, b"s"), ("bea", 1, b"s"), ("cy", 1, b"s")],
        recorded_at=1.0,
    )
    rows = log.list_users("", None, 10)
    # ties on the newest event time: by user id
    assert [(r.user_id, r.event_count, r.last_event_time, r.profile_version) for r in rows] == [
        ("ann", 2, 50.0, 2),
        ("bea", 1, 50.0, 1),
        ("bob", 1, 30.0, 1),
        ("cy", 1, 5.0, 1),
    ]
    first = log.list_users("", None, 2)
    rest = log.list_users("", (first[-1].last_event_time, first[-1].user_id), 10)
    assert [r.user_id for r in first + rest] == ["ann", "bea", "bob", "cy"]
    assert [r.user_id for r in log.list_users("b", None, 10)] == ["bea", "bob"]
    assert [r.user_id for r in log.list_users("b", (50.0, "bea"), 10)] == ["bob"]
    assert log.list_users("x", None, 10) == []
    assert log.totals() == (4, 5)


def test_a_prefix_is_matched_exactly_whatever_the_characters(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "events.sqlite")
    users = ["é", "é1", "éz\U0010fffe", "f", "e", "%", "_x"]
    log.append([at(f"e{i}", u, 1.0) for i, u in enumerate(users)], [], recorded_at=1.0)
    assert sorted(r.user_id for r in log.list_users("é", None, 10)) == ["é", "é1", "éz\U0010fffe"]
    assert [r.user_id for r in log.list_users("%", None, 10)] == ["%"]
    assert [r.user_id for r in log.list_users("_", None, 10)] == ["_x"]


def test_an_items_newest_interactions_come_first(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "events.sqlite")
    log.append(
        [
            at("a", "u1", 20),
            at("b", "u2", 40, type_=EventType.SKIP),
            at("c", "u3", 30),
            at("d", "u1", 99, "i2"),
        ],
        [],
        recorded_at=1.0,
    )
    got = log.item_interactions("i1", 2)
    assert [(i.user_id, i.event_id, i.type, i.time) for i in got] == [
        ("u2", "b", EventType.SKIP, 40.0),
        ("u3", "c", EventType.LIKE, 30.0),
    ]
    assert log.item_interactions("nothing", 5) == []
