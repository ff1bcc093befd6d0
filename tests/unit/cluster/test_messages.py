"""The event message format on the stream: round trip, and refusal of what it is not."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from driftwise.cluster.messages import EventMessage, MessageFormatError, decode, encode
from driftwise.model.events import Event, EventType


def message(**fields: Any) -> EventMessage:
    event = dataclasses.replace(Event("e1", "u/ü 1", EventType.CLICK, 1.7e9), **fields)
    return EventMessage(event, np.linspace(-1, 1, 8, dtype=np.float32), "Title / my words")


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"item_id": "i9", "text": "déjà vu", "dwell_seconds": 12.25, "impression_id": "imp-3"},
        {"time": 1712345678.123456, "type": EventType.STATED_INTEREST},
    ],
)
def test_a_message_round_trips(fields: dict[str, Any]) -> None:
    sent = message(**fields)
    got = decode(encode(sent))
    assert got.event == sent.event
    assert got.remembered == sent.remembered
    assert got.vector.dtype == np.float32
    assert np.array_equal(got.vector, sent.vector)


def test_to_stream_keys_the_stream_event_by_event_id() -> None:
    sent = message()
    stream_event = sent.to_stream()
    assert (stream_event.event_id, stream_event.user_id) == ("e1", "u/ü 1")
    assert decode(stream_event.payload).event == sent.event


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x02" + encode(message())[1:],
        encode(message())[:-1],
        encode(message())[:9],
        b"\x01\x02\x00\x00\x00{}",
    ],
)
def test_what_is_not_a_message_is_refused(data: bytes) -> None:
    with pytest.raises(MessageFormatError):
        decode(data)
