"""Request validation: every violation of a request is collected (field paths like
"events[3].user_id") and raised as one InvalidArgumentError, so a caller sees all problems at once
and nothing is stored. The rules every field of a kind follows live here."""

from __future__ import annotations

import re

from google.protobuf import duration_pb2, timestamp_pb2

from driftwise.errors import FieldViolation, InvalidArgumentError
from driftwise.settings import LimitSettings

# google.protobuf.Timestamp and Duration: the ranges their definitions allow (0001-01-01T00:00:00Z
# to 9999-12-31T23:59:59Z; +-10,000 years). Values outside are rejected rather than computed with.
MIN_TIMESTAMP_SECONDS, MAX_TIMESTAMP_SECONDS = -62_135_596_800, 253_402_300_799
MAX_DURATION_SECONDS = 315_576_000_000
# topic_temperature of GetProfile and Recommend (0: the server's interest.topic_temperature)
MIN_TOPIC_TEMPERATURE, MAX_TOPIC_TEMPERATURE = 0.01, 10.0


class Violations:
    """Collects field violations; `raise_if_any` ends validation."""

    def __init__(self) -> None:
        self.items: list[FieldViolation] = []

    def add(self, field: str, description: str) -> None:
        self.items.append(FieldViolation(field, description))

    def check_id(
        self,
        field: str,
        value: str,
        limits: LimitSettings,
        *,
        required: bool = True,
        lengths_only: bool = False,
    ) -> None:
        """Every id field follows one rule: required unless said otherwise; within max_id_chars
        and ID_BYTES; no quote, backslash or control character (ID_FORBIDDEN); not blank and no
        white space at either end (an id of spaces, or "a " beside "a", is a caller's bug).
        `lengths_only`: the lengths alone, for DeleteUserData (see ID_FORBIDDEN)."""
        if not value:
            if required:
                self.add(field, "is required")
        elif len(value) > limits.max_id_chars:
            self.add(field, f"is longer than {limits.max_id_chars} characters")
        elif len(value.encode()) > ID_BYTES:
            self.add(field, f"is longer than {ID_BYTES} bytes in UTF-8")
        elif lengths_only:
            pass
        elif ID_FORBIDDEN.search(value):
            self.add(field, "must not contain a quote ('), a backslash or a control character")
        elif value != value.strip():
            self.add(field, "must not be blank or begin or end with white space")

    def check_text(self, field: str, value: str, limits: LimitSettings) -> None:
        if len(value) > limits.max_text_chars:
            self.add(field, f"is longer than {limits.max_text_chars} characters")

    def check_batch(self, field: str, size: int, limits: LimitSettings, *, required: bool = True) -> bool:
        """False if the batch is over max_batch: its entries are then not checked one by one."""
        if size == 0 and required:
            self.add(field, "must not be empty")
        elif size > limits.max_batch:
            self.add(field, f"has {size} entries; at most {limits.max_batch} are allowed")
            return False
        return True

    def check_timestamp(self, field: str, ts: timestamp_pb2.Timestamp) -> bool:
        """True if `ts` is a valid Timestamp (seconds within years 1-9999, nanos in [0, 1e9))."""
        if not MIN_TIMESTAMP_SECONDS <= ts.seconds <= MAX_TIMESTAMP_SECONDS or not 0 <= ts.nanos < 10**9:
            self.add(field, "is not a valid timestamp (years 1 to 9999, nanos from 0 to 999999999)")
            return False
        return True

    def check_duration(self, field: str, d: duration_pb2.Duration) -> bool:
        """True if `d` is a valid Duration (+-10,000 years, nanos of the same sign as seconds)."""
        if (
            abs(d.seconds) > MAX_DURATION_SECONDS
            or abs(d.nanos) >= 10**9
            or (d.seconds > 0 and d.nanos < 0)
            or (d.seconds < 0 and d.nanos > 0)
        ):
            self.add(field, "is not a valid duration")
            return False
        return True

    def check_topic_temperature(self, field: str, value: float) -> None:
        """A preview of another topic temperature: 0 (the server's) or within [0.01, 10]."""
        if value != 0 and not MIN_TOPIC_TEMPERATURE <= value <= MAX_TOPIC_TEMPERATURE:
            self.add(
                field,
                f"must be 0 (the server's) or between {MIN_TOPIC_TEMPERATURE} and {MAX_TOPIC_TEMPERATURE:g}",
            )

    def raise_if_any(self) -> None:
        if self.items:
            raise InvalidArgumentError(self.items)


# Item, user and category ids are Milvus VARCHAR(128) fields, whose limit counts UTF-8 bytes; the
# same bound holds for every id so that one rule fits all.
ID_BYTES = 128
# Item and user ids are Milvus primary keys (items; user_interests rows). pymilvus looks items up,
# and Milvus Lite upserts rows, through an expression that quotes each key with ' and escapes
# nothing: a quote changes the expression, a backslash or a line break breaks it (one such user id
# stalled the whole interest mirror). Every id field refuses them, event and impression ids too,
# so that an id valid in one field is valid in all (DeleteUserData alone takes any user id, so
# data stored under ids that older versions accepted can always be deleted).
ID_FORBIDDEN = re.compile(r"['\\\x00-\x1f\x7f-\x9f]")
