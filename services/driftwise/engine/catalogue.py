"""The catalogue side of every write: items encoded and stored, and events made ready to apply
(user ids as stored, items known, vectors and texts). An embedded server applies what it prepares
(writes.py); a cluster ingest replica publishes it to the event stream (driftwise.cluster)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from driftwise.engine.encoding import EventEncoding
from driftwise.engine.types import NewItem
from driftwise.errors import FieldViolation, InvalidArgumentError
from driftwise.model.layers import Vector
from driftwise.privacy import UserIdScheme
from driftwise.storage.event_log import LoggedEvent
from driftwise.storage.item_cache import ItemCache
from driftwise.storage.vector_store import STRONG, UNKNOWN_TIME, MilvusVectorStore, StoredItem


@dataclass(frozen=True, slots=True)
class PreparedEvents:
    """A batch ready to apply: events under their stored user ids, with their vectors and texts."""

    events: list[LoggedEvent]
    vectors: list[Vector]
    texts: list[str]


class Catalogue:
    def __init__(
        self, user_ids: UserIdScheme, store: MilvusVectorStore, items: ItemCache, encoding: EventEncoding
    ) -> None:
        self.user_ids = user_ids
        self.store = store
        self.items = items
        self.encoding = encoding

    async def upsert_items(self, items: Sequence[NewItem]) -> int:
        vectors = await self.encoding.encode([it.text() for it in items], "passage")
        stored = [
            StoredItem(
                it.item_id,
                it.title,
                it.category,
                UNKNOWN_TIME if it.create_time is None else int(it.create_time),
                vectors[i],
                it.attributes,
            )
            for i, it in enumerate(items)
        ]
        await self.store.upsert_items(stored)
        self.items.put(stored)
        return len(items)

    async def delete_items(self, item_ids: Sequence[str]) -> int:
        self.items.drop(item_ids)
        return await self.store.delete_items(item_ids)

    async def prepare(
        self, events: Sequence[LoggedEvent], field_prefix: str = "events", indexed: bool = True
    ) -> PreparedEvents:
        """What applying a batch needs and nothing else changes: user ids as stored, every item
        known (else InvalidArgumentError naming each unknown one), each event's vector and text."""
        if self.user_ids.pseudonymises:
            events = [self._stored_user(le) for le in events]
        referenced = [le.event.item_id for le in events if le.event.item_id]
        items = await self.items.get(referenced)
        if not_found := [i for i in referenced if i not in items]:  # upserted a moment ago elsewhere?
            items.update(await self.store.get_items(not_found, consistency=STRONG))
        unknown = [
            FieldViolation(
                f"{field_prefix}[{i}].item_id" if indexed else f"{field_prefix}.item_id",
                f"unknown item {le.event.item_id!r}",
            )
            for i, le in enumerate(events)
            if le.event.item_id and le.event.item_id not in items
        ]
        if unknown:
            raise InvalidArgumentError(unknown)
        vectors, texts = await self.encoding.event_vectors([le.event for le in events], items)
        return PreparedEvents(list(events), vectors, texts)

    def _stored_user(self, logged: LoggedEvent) -> LoggedEvent:
        stored_id = self.user_ids.stored_id(logged.event.user_id)
        return dataclasses.replace(logged, event=dataclasses.replace(logged.event, user_id=stored_id))
