"""The saved fit (`driftwise.engine.saved_fit`): served back only when it was fitted for what the
server serves now; a corrupt, truncated, stale or foreign file is ignored, never raised."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import numpy as np
import pytest

from driftwise.engine import saved_fit
from driftwise.engine.saved_fit import FitKey
from driftwise.model.config import RankingConfig
from driftwise.model.refit import Refitted
from driftwise.model.topics import TopicModel
from driftwise.model.tuning import TuningReport, TuningStatus
from driftwise.settings import Settings, TritonSettings


def topics() -> TopicModel:
    return TopicModel(["a", "b"], np.eye(2, 4), 0.1)


def fit(events: int = 10) -> Refitted:
    ranking = RankingConfig().model_copy(update={"sequence_boost": 0.25})
    report = TuningReport(TuningStatus.TUNED, {"sequence_boost": 0.25})
    return Refitted(None, topics(), ranking, report, events, 1.5, finished_at=1234.0)


def key(settings: Settings | None = None, topics_fingerprint: str | None = None) -> FitKey:
    return FitKey.of(settings or Settings(), 4, topics_fingerprint or topics().fingerprint)


def test_a_saved_fit_comes_back_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / saved_fit.FILE_NAME
    saved_fit.save(path, key(), fit())
    restored = saved_fit.load(path, key(), logged_events=12)  # events logged since: served, refit later
    assert restored is not None
    assert restored.ranking == fit().ranking and restored.tuning == fit().tuning
    assert (restored.events, restored.finished_at) == (10, 1234.0)
    assert restored.topics.fingerprint == topics().fingerprint
    assert [p.name for p in tmp_path.iterdir()] == [saved_fit.FILE_NAME]  # no temporary file left


def test_no_file_is_no_fit(tmp_path: Path) -> None:
    assert saved_fit.load(tmp_path / saved_fit.FILE_NAME, key(), 10) is None


@pytest.mark.parametrize(
    "other",
    [
        key(topics_fingerprint="another-topic-model"),
        key(Settings(triton=TritonSettings(model_name="another-encoder"))),
        key(Settings(ranking=RankingConfig().model_copy(update={"sequence_boost": 0.5}))),
        FitKey(saved_fit.FORMAT + 1, key().encoder, key().topics, key().config),
    ],
    ids=["topics", "encoder", "config", "format"],
)
def test_a_fit_for_something_else_is_ignored(
    tmp_path: Path, other: FitKey, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / saved_fit.FILE_NAME
    saved_fit.save(path, key(), fit())
    with caplog.at_level(logging.INFO, logger="driftwise.engine.saved_fit"):
        assert saved_fit.load(path, other, 10) is None
    assert "ignoring the saved fit" in caplog.text and "another" in caplog.text


def test_a_fit_on_more_events_than_the_log_holds_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / saved_fit.FILE_NAME
    saved_fit.save(path, key(), fit(events=10))
    assert saved_fit.load(path, key(), logged_events=9) is None  # another log: restored, replaced


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[: len(data) // 2],  # truncated
        lambda data: b"not a pickle at all",
        lambda data: b"",
        lambda data: data[:40] + bytes(len(data) - 40),  # zeroed after the start
        lambda data: pickle.dumps({"key": {}, "events": 1}),  # a header from nothing we wrote
    ],
    ids=["truncated", "garbage", "empty", "zeroed", "foreign"],
)
def test_a_damaged_file_is_ignored(tmp_path: Path, damage: object) -> None:
    path = tmp_path / saved_fit.FILE_NAME
    saved_fit.save(path, key(), fit())
    path.write_bytes(damage(path.read_bytes()))  # type: ignore[operator]
    assert saved_fit.load(path, key(), 10) is None


def test_a_header_without_its_fit_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / saved_fit.FILE_NAME
    path.write_bytes(pickle.dumps({"key": vars(key()) | {}, "events": 10}) + pickle.dumps("not a fit"))
    assert saved_fit.load(path, key(), 10) is None
