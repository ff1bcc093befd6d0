from pathlib import Path

import pytest
from pydantic import ValidationError

from driftwise.model.events import EventType, Layer
from driftwise.settings import Settings


def test_defaults_are_embedded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DRIFTWISE_CONFIG", raising=False)
    s = Settings()
    assert s.triton.url == "" and s.milvus_uri.endswith("milvus.db")
    assert s.interest.half_life_seconds[Layer.SURFACE] == 3600.0
    assert (s.triton.model_repository / "text_encoder" / "config.pbtxt").exists()


def test_environment_overrides_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "driftwise.toml"
    config.write_text(
        'data_dir = "/srv/dw"\n[server]\nport = 7000\n[interest]\ntopic_temperature = 0.5\n'
        "[interest.event_weights]\n1 = 0.1\n2 = 1\n3 = 0.2\n4 = 2\n5 = 1.5\n6 = 2\n7 = 3\n"
        "8 = -1\n9 = -0.2\n10 = -2\n"
    )
    monkeypatch.setenv("DRIFTWISE_CONFIG", str(config))
    monkeypatch.setenv("DRIFTWISE_SERVER__PORT", "7001")
    s = Settings()
    assert s.data_dir == Path("/srv/dw")
    assert s.server.port == 7001
    assert s.interest.topic_temperature == 0.5
    assert s.interest.event_weights[EventType.VIEW] == 0.1


def test_invalid_settings_are_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DRIFTWISE_CONFIG", raising=False)
    monkeypatch.setenv("DRIFTWISE_SERVER__PORT", "-1")
    with pytest.raises(ValidationError):
        Settings()
