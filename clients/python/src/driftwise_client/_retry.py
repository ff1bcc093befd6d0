"""The bookkeeping of one logical call's attempts: deadlines and retry decisions.

Why an explicit loop and not gRPC's service-config retry policy (`"retryPolicy"` in
`grpc.service_config`)? Both would work for UNAVAILABLE/ABORTED; the loop was chosen because:
- DEADLINE_EXCEEDED of one attempt can only be retried with a per-attempt deadline, which the
  Python (C-core) channel does not offer in its retry policy (no perAttemptRecvTimeout); here the
  loop gives each attempt min(attempt_timeout, time left) and keeps the caller's overall deadline;
- which calls are idempotent is decided per call by this library (an IngestEvents batch is safe to
  resend because every event carries its event_id, the server's idempotency key), not per method
  name in a JSON blob that must be kept in sync with the API;
- the same, testable code (jittered backoff, attempt counting, typed errors with the number of
  attempts) serves the sync and the asyncio client, and the policy has no 5-attempt cap and no
  retry-throttling state hidden in the channel.
gRPC's transparent retries (an RPC that never left the client) stay on; they are always safe.
"""

from __future__ import annotations

import random
import time

import grpc

from driftwise_client.errors import DeadlineExceeded, DriftwiseError
from driftwise_client.options import RetryPolicy

# Below this much time left, another attempt cannot succeed: give up instead of starting it.
MIN_ATTEMPT_SECONDS = 0.001


class Attempts:
    """Attempts of one call, against one overall deadline (None: no deadline)."""

    def __init__(
        self,
        policy: RetryPolicy,
        timeout: float | None,
        *,
        idempotent: bool,
        rng: random.Random | None = None,
    ) -> None:
        self._policy = policy if idempotent else RetryPolicy.disabled()
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self._rng = rng
        self.count = 0

    def remaining(self) -> float | None:
        return None if self._deadline is None else self._deadline - time.monotonic()

    def start(self) -> float | None:
        """Begin an attempt; its timeout in seconds (None: no deadline)."""
        self.count += 1
        remaining = self.remaining()
        if remaining is not None and remaining < MIN_ATTEMPT_SECONDS:
            error = DeadlineExceeded(
                grpc.StatusCode.DEADLINE_EXCEEDED, "deadline exceeded before the attempt"
            )
            raise self.finish(error)
        limit = self._policy.attempt_timeout
        if limit is None:
            return remaining
        return limit if remaining is None else min(limit, remaining)

    def retry_delay(self, error: DriftwiseError) -> float | None:
        """Seconds to wait before the next attempt after `error`, or None to give up."""
        policy = self._policy
        if self.count >= policy.max_attempts or error.code not in policy.retryable_codes:
            return None
        delay = policy.backoff(self.count, self._rng)
        remaining = self.remaining()
        if remaining is not None and delay + MIN_ATTEMPT_SECONDS >= remaining:
            return None  # the next attempt would start at or after the deadline
        return delay

    def finish(self, error: DriftwiseError) -> DriftwiseError:
        """The error to raise when giving up, with the number of attempts made."""
        error.attempts = self.count
        return error
