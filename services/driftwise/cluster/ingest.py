"""IngestService's engine in cluster mode: items go to Milvus as on an embedded server; events are
prepared the same way (stored user ids, known items, vectors: engine/catalogue.py) and published to
the event stream, one message each (cluster/messages.py). The caller is acknowledged once JetStream
has stored every event of the batch on a quorum of its replicas; profile workers apply them
behind the acknowledgement (cluster/worker.py).

- `duplicate` is JetStream's answer for a resend within its duplicate window; the worker skips
  anything already applied beyond it.
- `profile_version` is 0: the version an event makes is known only once a worker applies it.
- A batch is stored whole or the call fails UNAVAILABLE; resending it is safe (event ids).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from driftwise.cluster.event_stream import EventStream, PublishError
from driftwise.cluster.messages import EventMessage
from driftwise.engine.catalogue import Catalogue
from driftwise.engine.types import Ack, NewItem
from driftwise.errors import UnavailableError
from driftwise.settings import Settings
from driftwise.storage.event_log import LoggedEvent


class StreamIngest:
    def __init__(self, settings: Settings, catalogue: Catalogue, stream: EventStream) -> None:
        self.settings = settings
        self.catalogue = catalogue
        self.stream = stream

    async def upsert_items(self, items: Sequence[NewItem]) -> int:
        return await self.catalogue.upsert_items(items)

    async def delete_items(self, item_ids: Sequence[str]) -> int:
        return await self.catalogue.delete_items(item_ids)

    async def ingest_events(
        self, events: Sequence[LoggedEvent], field_prefix: str = "events", indexed: bool = True
    ) -> list[Ack]:
        prepared = await self.catalogue.prepare(events, field_prefix, indexed)
        messages = [
            EventMessage(logged.event, np.asarray(vector, dtype=np.float32), text).to_stream()
            for logged, vector, text in zip(prepared.events, prepared.vectors, prepared.texts, strict=True)
        ]
        try:
            published = await self.stream.publish(messages)
        except PublishError as exc:
            raise UnavailableError(f"the event stream did not store the batch: {exc}") from exc
        return [
            Ack(logged.event.event_id, result.duplicate, 0)
            for logged, result in zip(prepared.events, published, strict=True)
        ]
