"""Texts and events to vectors: items' texts are encoded on Triton; an event about an item reuses
the item's stored vector, and only free text is encoded."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from driftwise.errors import UnavailableError
from driftwise.inference.coverage import TextCoverage
from driftwise.inference.encoder import EncoderUnavailableError, TextEncoder, TextRole
from driftwise.model.events import Event
from driftwise.model.layers import Vector
from driftwise.model.topics import normalize_rows
from driftwise.storage.vector_store import StoredItem


async def encode_texts(encoder: TextEncoder, texts: Sequence[str], role: TextRole) -> npt.NDArray[np.float32]:
    """Item texts are passages; what users type (searches, comments) and topic labels are queries."""
    try:
        return await encoder.encode(texts, role)
    except EncoderUnavailableError as exc:
        raise UnavailableError(f"text encoder unavailable: {exc}") from exc


class EventEncoding:
    def __init__(self, encoder: TextEncoder, coverage: TextCoverage) -> None:
        self.encoder = encoder
        # texts the model cannot represent (mostly unknown tokens) are logged and counted on their
        # way to the encoder
        self.coverage = coverage

    async def encode(
        self, texts: Sequence[str], role: TextRole, *, check_coverage: bool = True
    ) -> npt.NDArray[np.float32]:
        """Encode texts that arrive (`check_coverage`: logged and counted if the model cannot
        represent them; they are encoded all the same)."""
        if check_coverage:
            self.coverage.check(texts, role)
        return await encode_texts(self.encoder, texts, role)

    async def event_vectors(
        self, events: Sequence[Event], items: dict[str, StoredItem], *, check_coverage: bool = True
    ) -> tuple[list[Vector], list[str]]:
        """Each event's unit vector and text: the stored item vector (not re-encoded), the
        encoded free text, or the normalised sum of both."""
        free_text = [e.text for e in events if e.text]
        check = check_coverage
        encoded = iter(await self.encode(free_text, "query", check_coverage=check) if free_text else ())
        vectors: list[Vector] = []
        texts: list[str] = []
        for e in events:
            parts = []
            if e.item_id:
                parts.append(items[e.item_id].vector.astype(np.float64))
            if e.text:
                parts.append(np.asarray(next(encoded), dtype=np.float64))
            # an item event with text of its own: the normalised sum (a 1 x d row, then the row)
            vectors.append(
                normalize_rows(np.sum(parts, axis=0)[np.newaxis])[0] if len(parts) > 1 else parts[0]
            )
            texts.append(" / ".join(t for t in (items[e.item_id].title if e.item_id else "", e.text) if t))
        return vectors, texts
