"""A deployment configured with the multilingual encoder: Chinese behaviour, English catalogue.

Only configuration changes (settings.triton.model_name); the vector dimension (512 instead of 384)
follows the model all the way into Milvus.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from driftwise.api.convert import timestamp
from driftwise.settings import REPO_ROOT, ServerSettings, Settings, TritonSettings
from driftwise_client.v1 import common_pb2, ingest_service_pb2, ranking_service_pb2
from tests.integration.support import app_and_client

pytestmark = pytest.mark.integration
CROSS_LINGUAL = json.loads((REPO_ROOT / "tests" / "data" / "cross_lingual.json").read_text())


async def test_chinese_search_recommends_matching_english_titles(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        server=ServerSettings(port=0),
        triton=TritonSettings(model_name="text_encoder_multilingual"),
    )
    items = [
        common_pb2.Item(item_id=it["item_id"], title=it["title"], tags=it["tags"], category="movie")
        for it in CROSS_LINGUAL["english_items"] + CROSS_LINGUAL["chinese_distractors"]
    ]
    query = CROSS_LINGUAL["queries"][0]  # 我喜欢看科幻小说: "I like reading science fiction"
    async with app_and_client(settings) as (app, client):
        assert app.engine.encoder.dimension == 512 and app.engine.store.dimension == 512
        await client.ingest.UpsertItems(ingest_service_pb2.UpsertItemsRequest(items=items))
        await client.ingest.IngestEvents(
            ingest_service_pb2.IngestEventsRequest(
                events=[
                    common_pb2.Event(
                        event_id="zh-search-1",
                        user_id="zh-user",
                        type=common_pb2.EVENT_TYPE_SEARCH,
                        text=query["text"],
                        event_time=timestamp(time.time() - 5),
                    )
                ]
            )
        )
        recs = await client.ranking.Recommend(
            ranking_service_pb2.RecommendRequest(user_id="zh-user", count=5)
        )
    top = [item.item_id for item in recs.items]
    relevant = {query["relevant"], *query["also_relevant"]}
    assert not any(item_id.startswith("zh-") for item_id in top[:3]), top
    assert relevant & set(top[:3]), [item.title for item in recs.items]
