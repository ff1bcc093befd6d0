"""Browser sessions of the console, kept in memory on the console's side.

A session is a random id (the browser holds it in an HttpOnly, SameSite=Strict cookie), a CSRF
token the pages send back in a header with every write, and the bearer token someone logged in
with, which never goes to the browser. Sessions idle past their time are forgotten, and the
oldest go first when there are too many (each page load without a cookie makes one).
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

COOKIE = "driftwise_console"
MAX_SESSIONS = 10_000


@dataclass
class Session:
    id: str
    csrf: str
    token: str | None = None  # the logged-in token; None: the console's own (or none)
    last_seen: float = field(default_factory=time.monotonic)

    def csrf_matches(self, sent: str | None) -> bool:
        return sent is not None and hmac.compare_digest(sent.encode(), self.csrf.encode())


class Sessions:
    def __init__(
        self,
        idle_seconds: float,
        max_sessions: int = MAX_SESSIONS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._idle = idle_seconds
        self._max = max_sessions
        self._clock = clock
        self._sessions: OrderedDict[str, Session] = OrderedDict()  # least recently seen first

    def __len__(self) -> int:
        return len(self._sessions)

    def get(self, session_id: str | None) -> Session | None:
        """The live session with this id (and it was seen now), else None."""
        self._expire()
        if not session_id:
            return None
        session = self._sessions.get(session_id)
        if session is None:
            return None
        session.last_seen = self._clock()
        self._sessions.move_to_end(session_id)
        return session

    def create(self) -> Session:
        self._expire()
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), last_seen=self._clock())
        self._sessions[session.id] = session
        while len(self._sessions) > self._max:
            self._sessions.popitem(last=False)
        return session

    def login(self, session: Session, token: str) -> Session:
        """A new session holding the token (a new id, so an id seen before login is worth nothing
        after it); the old one is dropped."""
        self.drop(session)
        fresh = self.create()
        fresh.token = token
        return fresh

    def drop(self, session: Session) -> None:
        self._sessions.pop(session.id, None)

    def _expire(self) -> None:
        cutoff = self._clock() - self._idle
        while self._sessions:
            oldest = next(iter(self._sessions.values()))
            if oldest.last_seen >= cutoff:
                break
            self._sessions.popitem(last=False)
