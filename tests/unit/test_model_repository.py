"""Static checks of every Triton model config in ``model_repository/``.

Each ``config.pbtxt`` is parsed with protobuf ``text_format`` into Triton's ``ModelConfig``
message (as Triton itself does), so a typo in a field name fails here rather than at server start.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

REPOSITORY = Path(__file__).resolve().parents[2] / "model_repository"

# Upper bound on how long the dynamic batcher may hold a request waiting for company.
MAX_QUEUE_DELAY_US = 100_000
GENERIC_TENSOR_NAME = re.compile(r"^(INPUT|OUTPUT)_?\d+$", re.IGNORECASE)


def _model_dirs() -> list[Path]:
    return sorted(p for p in REPOSITORY.iterdir() if (p / "config.pbtxt").is_file())


def _load(model_dir: Path) -> model_config_pb2.ModelConfig:
    config = model_config_pb2.ModelConfig()
    text_format.Parse((model_dir / "config.pbtxt").read_text(encoding="utf-8"), config)
    return config


MODEL_DIRS = _model_dirs()


def test_repository_has_models() -> None:
    assert MODEL_DIRS, f"no */config.pbtxt under {REPOSITORY}"
    assert "text_encoder" in {d.name for d in MODEL_DIRS}


def test_every_model_folder_has_a_config() -> None:
    folders = {p.name for p in REPOSITORY.iterdir() if p.is_dir() and not p.name.startswith(".")}
    assert folders == {d.name for d in MODEL_DIRS}


@pytest.mark.parametrize("model_dir", MODEL_DIRS, ids=lambda d: d.name)
def test_name_equals_folder(model_dir: Path) -> None:
    assert _load(model_dir).name == model_dir.name


@pytest.mark.parametrize("model_dir", MODEL_DIRS, ids=lambda d: d.name)
def test_tensors_are_named_and_typed(model_dir: Path) -> None:
    config = _load(model_dir)
    assert config.input and config.output
    for tensor in [*config.input, *config.output]:
        assert tensor.name and not GENERIC_TENSOR_NAME.match(tensor.name), tensor.name
        assert tensor.data_type != model_config_pb2.TYPE_INVALID, tensor.name
        assert list(tensor.dims), f"{tensor.name} has no dims"
    names = [t.name for t in [*config.input, *config.output]]
    assert len(names) == len(set(names)), f"duplicate tensor names {names}"


@pytest.mark.parametrize("model_dir", MODEL_DIRS, ids=lambda d: d.name)
def test_dynamic_batching_is_bounded(model_dir: Path) -> None:
    config = _load(model_dir)
    assert config.max_batch_size > 0
    assert config.HasField("dynamic_batching")
    batching = config.dynamic_batching
    assert 0 < batching.max_queue_delay_microseconds <= MAX_QUEUE_DELAY_US
    assert all(0 < size <= config.max_batch_size for size in batching.preferred_batch_size)
    assert config.instance_group
    assert all(group.count >= 1 for group in config.instance_group)


@pytest.mark.parametrize("model_dir", MODEL_DIRS, ids=lambda d: d.name)
def test_version_policy_is_pinned(model_dir: Path) -> None:
    config = _load(model_dir)
    assert config.version_policy.WhichOneof("policy_choice") == "specific"
    versions = list(config.version_policy.specific.versions)
    assert versions
    for version in versions:
        version_dir = model_dir / str(version)
        assert version_dir.is_dir(), f"pinned version {version} has no folder"
        if config.backend == "python":
            assert (version_dir / "model.py").is_file()


def test_text_encoder_contract() -> None:
    config = _load(REPOSITORY / "text_encoder")
    assert config.backend == "python"
    assert config.max_batch_size == 64
    assert [(t.name, t.data_type, list(t.dims)) for t in config.input] == [
        ("TEXT", model_config_pb2.TYPE_STRING, [1])
    ]
    assert [(t.name, t.data_type, list(t.dims)) for t in config.output] == [
        ("EMBEDDING", model_config_pb2.TYPE_FP32, [384])
    ]
    assert list(config.version_policy.specific.versions) == [1]
    assert [(g.kind, g.count) for g in config.instance_group] == [
        (model_config_pb2.ModelInstanceGroup.KIND_CPU, 2)
    ]
    parameters = {key: value.string_value for key, value in config.parameters.items()}
    assert int(parameters["max_tokens"]) == 256
    assert int(parameters["num_threads"]) == 1
    assert "weights_path" in parameters
