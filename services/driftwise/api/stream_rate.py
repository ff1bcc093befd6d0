"""Per-stream message rate limits (StreamEvents, StreamFeedback)."""

from __future__ import annotations

import time
from collections.abc import Callable

from driftwise.errors import ResourceExhaustedError


class StreamRate:
    """The message rate limit of one stream (LimitSettings.max_stream_messages_per_second): a
    token bucket refilled at `rate` per second that holds one second's worth (at least one)."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = rate
        self._capacity = max(rate, 1.0)
        self._tokens = self._capacity
        self._clock = clock
        self._last = clock()

    def take(self, stream: str) -> None:
        """Count one message; ResourceExhaustedError if the stream is over its rate."""
        now = self._clock()
        self._tokens = min(self._capacity, self._tokens + (now - self._last) * self._rate)
        self._last = now
        if self._tokens < 1.0:
            raise ResourceExhaustedError(
                f"stream:{stream}",
                f"more than {self._rate:g} messages per second on one {stream} stream; this message "
                "was not processed: send it again later",
            )
        self._tokens -= 1.0
