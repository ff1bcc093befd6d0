"""Browser sessions: random ids and CSRF tokens, idle expiry, a bound on their number, login."""

from driftwise.console.sessions import Sessions


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_sessions_are_random_and_found_by_id() -> None:
    sessions = Sessions(60)
    a, b = sessions.create(), sessions.create()
    assert a.id != b.id and a.csrf != b.csrf and len(a.id) >= 40 and len(a.csrf) >= 40
    assert sessions.get(a.id) is a
    assert sessions.get("made-up") is None and sessions.get(None) is None and sessions.get("") is None


def test_idle_sessions_are_forgotten_and_use_keeps_them() -> None:
    clock = Clock()
    sessions = Sessions(60, clock=clock)
    kept, idle = sessions.create(), sessions.create()
    clock.now = 50
    assert sessions.get(kept.id) is kept
    clock.now = 100  # idle was last seen at 0, kept at 50
    assert sessions.get(idle.id) is None
    assert sessions.get(kept.id) is kept
    assert len(sessions) == 1


def test_the_oldest_go_first_beyond_the_bound() -> None:
    sessions = Sessions(60, max_sessions=3)
    first, *rest = [sessions.create() for _ in range(4)]
    assert len(sessions) == 3
    assert sessions.get(first.id) is None
    assert all(sessions.get(s.id) is s for s in rest)


def test_login_moves_the_token_to_a_new_session() -> None:
    sessions = Sessions(60)
    before = sessions.create()
    after = sessions.login(before, "secret")
    assert after.token == "secret" and after.id != before.id and after.csrf != before.csrf
    assert sessions.get(before.id) is None  # an id known before the login is worth nothing after it
    assert sessions.get(after.id) is after


def test_csrf_compares_whole_tokens() -> None:
    session = Sessions(60).create()
    assert session.csrf_matches(session.csrf)
    assert not session.csrf_matches(session.csrf[:-1])
    assert not session.csrf_matches("")
    assert not session.csrf_matches(None)
