"""The wire formats of the DRIFTWISE_EVENTS stream: a validated event with its vector, or a user's
deletion.

Ingest replicas validate an event, encode it (the item's stored vector or Triton for free text)
and publish an :class:`EventMessage`; profile workers apply it without an encoder. Layout::

    byte 0        format (1)
    bytes 1-4     u32 little-endian: length n of the JSON header
    bytes 5-5+n   JSON header (UTF-8): the event's fields, and "remembered", the text the
                  profile keeps with the event (item title / free text); empty fields omitted
    rest          the event's vector, float32 little-endian (its dimension: rest / 4)

float32 because that is what the encoder and Milvus hold (an item's stored vector round-trips
exactly); the worker applies it as float64, as the embedded engine does. A new layout gets a new
format byte, and workers refuse formats they do not know rather than guess.

DeleteUserData publishes a :class:`ForgetMessage` on the user's subject (format byte 2, then a
JSON object: ``user_id`` and ``request_id``). It takes its place among the user's events, so the
worker that reaches it has applied every event before it, and none after: it forgets the user
there (:mod:`driftwise.cluster.worker`).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from driftwise.cluster import event_stream
from driftwise.model.events import Event, EventType

__all__ = ["FORGET", "FORMAT", "EventMessage", "ForgetMessage", "MessageFormatError", "decode", "encode"]

FORMAT = 1
FORGET = 2
_LENGTH = struct.Struct("<I")
_PREFIX = 1 + _LENGTH.size


class MessageFormatError(ValueError):
    """Bytes that are not an event message of a known format (a poison message: skip it)."""


@dataclass(frozen=True, slots=True)
class EventMessage:
    event: Event
    """The validated event; ``user_id`` is already the stored (perhaps pseudonymised) id."""
    vector: npt.NDArray[np.float32]
    remembered: str
    """The text the profile remembers with the event (RecentEvent.text)."""

    @property
    def user_id(self) -> str:
        return self.event.user_id

    def to_stream(self) -> event_stream.Event:
        """What :meth:`EventStream.publish` takes (the event id is the stream's dedup key)."""
        return event_stream.Event(self.event.event_id, self.event.user_id, encode(self))


@dataclass(frozen=True, slots=True)
class ForgetMessage:
    """DeleteUserData's mark in the user's place of the stream."""

    user_id: str
    """The stored (perhaps pseudonymised) id."""
    request_id: str
    """Unique per deletion: a resend of the same deletion is stored once."""

    def to_stream(self) -> event_stream.Event:
        body = json.dumps({"user_id": self.user_id, "request_id": self.request_id}, ensure_ascii=False)
        return event_stream.Event(f"forget:{self.request_id}", self.user_id, bytes([FORGET]) + body.encode())


def encode(message: EventMessage) -> bytes:
    e = message.event
    header: dict[str, Any] = {
        "event_id": e.event_id,
        "user_id": e.user_id,
        "type": int(e.type),
        "time": e.time,
    }
    optional = {
        "item_id": e.item_id,
        "text": e.text,
        "dwell_seconds": e.dwell_seconds,
        "impression_id": e.impression_id,
        "remembered": message.remembered,
    }
    header.update((name, value) for name, value in optional.items() if value)
    encoded = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    vector = np.ascontiguousarray(message.vector, dtype="<f4")
    if vector.ndim != 1:
        raise ValueError(f"an event vector must be one-dimensional, got shape {vector.shape}")
    return b"".join([bytes([FORMAT]), _LENGTH.pack(len(encoded)), encoded, vector.tobytes()])


def decode(data: bytes) -> EventMessage | ForgetMessage:
    """The message in ``data``; raises :class:`MessageFormatError` for anything else."""
    if data[:1] == bytes([FORGET]):
        return _decode_forget(data)
    if len(data) < _PREFIX or data[0] != FORMAT:
        found = data[0] if data else None
        raise MessageFormatError(
            f"unknown event message format {found!r} (this worker reads {FORMAT}, {FORGET})"
        )
    (length,) = _LENGTH.unpack_from(data, 1)
    body = _PREFIX + length
    if len(data) < body or (len(data) - body) % 4:
        raise MessageFormatError(f"truncated event message ({len(data)} bytes, header {length})")
    try:
        h = json.loads(data[_PREFIX:body])
        event = Event(
            event_id=str(h["event_id"]),
            user_id=str(h["user_id"]),
            type=EventType(h["type"]),
            time=float(h["time"]),
            item_id=str(h.get("item_id", "")),
            text=str(h.get("text", "")),
            dwell_seconds=float(h.get("dwell_seconds", 0.0)),
            impression_id=str(h.get("impression_id", "")),
        )
        remembered = str(h.get("remembered", ""))
    except (ValueError, KeyError, TypeError) as exc:
        raise MessageFormatError(f"bad event message header: {exc!r}") from exc
    vector = np.frombuffer(data, dtype="<f4", offset=body)
    return EventMessage(event, vector, remembered)


def _decode_forget(data: bytes) -> ForgetMessage:
    try:
        body = json.loads(data[1:])
        return ForgetMessage(str(body["user_id"]), str(body["request_id"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise MessageFormatError(f"bad forget message: {exc!r}") from exc
