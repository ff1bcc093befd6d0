"""The wire format of one event on the DRIFTWISE_EVENTS stream: a validated event with its vector.

Ingest replicas validate an event, encode it (the item's stored vector or Triton for free text)
and publish this message; profile workers apply it without an encoder. Layout::

    byte 0        format (1)
    bytes 1-4     u32 little-endian: length n of the JSON header
    bytes 5-5+n   JSON header (UTF-8): the event's fields, and "remembered", the text the
                  profile keeps with the event (item title / free text); empty fields omitted
    rest          the event's vector, float32 little-endian (its dimension: rest / 4)

float32 because that is what the encoder and Milvus hold (an item's stored vector round-trips
exactly); the worker applies it as float64, as the embedded engine does. A new layout gets a new
format byte, and workers refuse formats they do not know rather than guess.
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

__all__ = ["FORMAT", "EventMessage", "MessageFormatError", "decode", "encode"]

FORMAT = 1
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

    def to_stream(self) -> event_stream.Event:
        """What :meth:`EventStream.publish` takes (the event id is the stream's dedup key)."""
        return event_stream.Event(self.event.event_id, self.event.user_id, encode(self))


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


def decode(data: bytes) -> EventMessage:
    """The message in ``data``; raises :class:`MessageFormatError` for anything else."""
    if len(data) < _PREFIX or data[0] != FORMAT:
        found = data[0] if data else None
        raise MessageFormatError(f"unknown event message format {found!r} (this worker reads {FORMAT})")
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
