"""Static checks of every Triton model config in ``model_repository/``.

Each ``config.pbtxt`` and each custom configuration ``configs/*.pbtxt`` is parsed with protobuf
``text_format`` into Triton's ``ModelConfig`` message (as Triton itself does), so a typo in a field
name fails here rather than at server start. The ``parameters`` of the text encoders are parsed
by the shared model code (:mod:`driftwise_triton.triton_model`) the same way.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from google.protobuf import json_format, text_format
from tritonclient.grpc import model_config_pb2

from driftwise_triton.triton_model import EncoderOptions, resolve_placement

REPOSITORY = Path(__file__).resolve().parents[2] / "model_repository"
ENCODERS = ("text_encoder", "text_encoder_onnx", "text_encoder_onnx_int8")
ONNX_ENCODERS = ("text_encoder_onnx", "text_encoder_onnx_int8")
GPU = model_config_pb2.ModelInstanceGroup.KIND_GPU
CPU = model_config_pb2.ModelInstanceGroup.KIND_CPU

# Upper bound on how long the dynamic batcher may hold a request waiting for company.
MAX_QUEUE_DELAY_US = 100_000
GENERIC_TENSOR_NAME = re.compile(r"^(INPUT|OUTPUT)_?\d+$", re.IGNORECASE)


def _model_dirs() -> list[Path]:
    return sorted(p for p in REPOSITORY.iterdir() if (p / "config.pbtxt").is_file())


def _parse(path: Path) -> model_config_pb2.ModelConfig:
    config = model_config_pb2.ModelConfig()
    text_format.Parse(path.read_text(encoding="utf-8"), config)
    return config


def _load(model_dir: Path) -> model_config_pb2.ModelConfig:
    return _parse(model_dir / "config.pbtxt")


def _config_files() -> list[Path]:
    """Every config Triton may read: ``config.pbtxt`` and ``configs/<name>.pbtxt`` (selected
    with ``--model-config-name=<name>``)."""
    return [path for model_dir in _model_dirs() for path in sorted(model_dir.rglob("*.pbtxt"))]


def _config_id(path: Path) -> str:
    return str(path.relative_to(REPOSITORY))


def _model_dir_of(path: Path) -> Path:
    return path.parent if path.name == "config.pbtxt" else path.parent.parent


def _as_triton_json(config: model_config_pb2.ModelConfig) -> dict[str, object]:
    """The config as the python backend's ``args["model_config"]`` holds it."""
    return json_format.MessageToDict(config, preserving_proto_field_name=True)


def _tensors(config: model_config_pb2.ModelConfig) -> list[tuple[str, int, list[int]]]:
    return [(t.name, t.data_type, list(t.dims)) for t in [*config.input, *config.output]]


MODEL_DIRS = _model_dirs()
CONFIG_FILES = _config_files()


def test_repository_has_models() -> None:
    assert MODEL_DIRS, f"no */config.pbtxt under {REPOSITORY}"
    assert set(ENCODERS) <= {d.name for d in MODEL_DIRS}
    assert REPOSITORY / "text_encoder" / "configs" / "gpu.pbtxt" in CONFIG_FILES


def test_custom_configurations_live_in_configs() -> None:
    """Triton reads only ``config.pbtxt`` and ``configs/<name>.pbtxt``: any other .pbtxt is dead."""
    for path in CONFIG_FILES:
        relative = path.relative_to(REPOSITORY).parts
        assert len(relative) == 2 or (len(relative) == 3 and relative[1] == "configs"), path


def test_every_model_folder_has_a_config() -> None:
    folders = {p.name for p in REPOSITORY.iterdir() if p.is_dir() and not p.name.startswith(".")}
    assert folders == {d.name for d in MODEL_DIRS}


@pytest.mark.parametrize("config_file", CONFIG_FILES, ids=_config_id)
def test_name_equals_folder(config_file: Path) -> None:
    assert _parse(config_file).name == _model_dir_of(config_file).name


@pytest.mark.parametrize("config_file", CONFIG_FILES, ids=_config_id)
def test_tensors_are_named_and_typed(config_file: Path) -> None:
    config = _parse(config_file)
    assert config.input and config.output
    for tensor in [*config.input, *config.output]:
        assert tensor.name and not GENERIC_TENSOR_NAME.match(tensor.name), tensor.name
        assert tensor.data_type != model_config_pb2.TYPE_INVALID, tensor.name
        assert list(tensor.dims), f"{tensor.name} has no dims"
    names = [t.name for t in [*config.input, *config.output]]
    assert len(names) == len(set(names)), f"duplicate tensor names {names}"


@pytest.mark.parametrize("config_file", CONFIG_FILES, ids=_config_id)
def test_dynamic_batching_is_bounded(config_file: Path) -> None:
    config = _parse(config_file)
    assert config.max_batch_size > 0
    assert config.HasField("dynamic_batching")
    batching = config.dynamic_batching
    assert 0 < batching.max_queue_delay_microseconds <= MAX_QUEUE_DELAY_US
    assert all(0 < size <= config.max_batch_size for size in batching.preferred_batch_size)
    assert config.instance_group
    assert all(group.count >= 1 for group in config.instance_group)


@pytest.mark.parametrize("config_file", CONFIG_FILES, ids=_config_id)
def test_version_policy_is_pinned(config_file: Path) -> None:
    config = _parse(config_file)
    model_dir = _model_dir_of(config_file)
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


def test_text_encoder_runs_torch_in_fp32_on_cpu() -> None:
    options = EncoderOptions.from_config(_as_triton_json(_load(REPOSITORY / "text_encoder")))
    assert (options.runtime, options.fp16, options.num_threads) == ("torch", False, 1)


@pytest.mark.parametrize("name", ONNX_ENCODERS)
def test_onnx_encoder_contract(name: str) -> None:
    """Same tensors and batching as text_encoder, ONNX Runtime on two single-threaded CPU
    instances, the generated model file named in the parameters."""
    config = _load(REPOSITORY / name)
    torch_config = _load(REPOSITORY / "text_encoder")
    assert config.backend == "python"
    assert _tensors(config) == _tensors(torch_config)
    assert config.max_batch_size == torch_config.max_batch_size == 64
    assert list(config.version_policy.specific.versions) == [1]
    assert [(g.kind, g.count) for g in config.instance_group] == [(CPU, 2)]
    options = EncoderOptions.from_config(_as_triton_json(config))
    assert options.runtime == "onnx"
    assert options.model_file == "model.onnx"
    assert (options.num_threads, options.max_tokens, options.max_batch_tokens) == (1, 256, 256)
    assert (REPOSITORY / name / "1" / "model.py").is_file()


@pytest.mark.parametrize("name", ENCODERS)
def test_encoder_model_py_is_the_shared_model(name: str) -> None:
    """Each encoder's model.py only subclasses the shared TextEncoderModel (no copied logic)."""
    source = (REPOSITORY / name / "1" / "model.py").read_text(encoding="utf-8")
    assert "from driftwise_triton.triton_model import TextEncoderModel" in source
    assert "class TritonPythonModel(TextEncoderModel):" in source
    assert "def execute" not in source and "def initialize" not in source


@pytest.mark.parametrize(
    "config_file",
    [p for p in CONFIG_FILES if _model_dir_of(p).name in ENCODERS],
    ids=_config_id,
)
def test_encoder_parameters_are_valid_for_the_shared_code(config_file: Path) -> None:
    """The shared model rejects unknown keys and bad values at load time; check them here."""
    EncoderOptions.from_config(_as_triton_json(_parse(config_file)))


def test_encoder_options_reject_typos_and_bad_values() -> None:
    def params(**values: str) -> dict[str, object]:
        return {"parameters": {key: {"string_value": value} for key, value in values.items()}}

    assert EncoderOptions.from_config({}) == EncoderOptions()
    with pytest.raises(ValueError, match="unknown parameters"):
        EncoderOptions.from_config(params(num_thread="1"))
    with pytest.raises(ValueError, match="unknown parameters"):  # an onnx key under torch
        EncoderOptions.from_config(params(runtime="torch", model_file="model.onnx"))
    with pytest.raises(ValueError, match="runtime"):
        EncoderOptions.from_config(params(runtime="tensorrt"))
    with pytest.raises(ValueError, match="num_threads"):
        EncoderOptions.from_config(params(num_threads="0"))
    with pytest.raises(ValueError, match="fp16"):
        EncoderOptions.from_config(params(fp16="maybe"))
    client_side = params(runtime="onnx", query_prefix="query: ", passage_prefix="passage: ")
    assert EncoderOptions.from_config(client_side).runtime == "onnx"


@pytest.mark.parametrize("config_file", CONFIG_FILES, ids=_config_id)
def test_model_warmup_files_exist_and_decode(config_file: Path) -> None:
    """The encoders warm up on a few texts before they are ready. Triton reads each
    ``input_data_file`` from ``<model>/warmup/``; a TYPE_STRING element is a 4-byte
    little-endian length followed by that many bytes (here UTF-8 text)."""
    config = _parse(config_file)
    if _model_dir_of(config_file).name in ENCODERS:
        assert config.model_warmup, "no model_warmup: the first real request would pay for it"
    inputs = {t.name: t for t in config.input}
    for sample in config.model_warmup:
        assert 1 <= sample.batch_size <= config.max_batch_size, sample.name
        assert set(sample.inputs) == set(inputs), sample.name
        for name, warm in sample.inputs.items():
            assert warm.data_type == inputs[name].data_type
            assert list(warm.dims) == list(inputs[name].dims)
            assert warm.WhichOneof("input_data_type") == "input_data_file"
            data = (_model_dir_of(config_file) / "warmup" / warm.input_data_file).read_bytes()
            (length,) = struct.unpack("<I", data[:4])
            assert length == len(data) - 4, f"{warm.input_data_file}: one element of {length} bytes"
            assert data[4:].decode("utf-8").strip()


def test_gpu_variant_of_text_encoder() -> None:
    """``configs/gpu.pbtxt`` (``--model-config-name=gpu``): the same model and tensors on GPU
    instances, fp16, bigger batches and more tokens per forward pass."""
    cpu = _load(REPOSITORY / "text_encoder")
    gpu = _parse(REPOSITORY / "text_encoder" / "configs" / "gpu.pbtxt")
    assert gpu.name == cpu.name and gpu.backend == cpu.backend
    assert _tensors(gpu) == _tensors(cpu)
    assert gpu.version_policy == cpu.version_policy
    assert [g.kind for g in gpu.instance_group] == [GPU]
    assert all(1 <= g.count <= 4 for g in gpu.instance_group)
    assert gpu.max_batch_size > cpu.max_batch_size
    assert max(gpu.dynamic_batching.preferred_batch_size) > max(cpu.dynamic_batching.preferred_batch_size)
    gpu_options = EncoderOptions.from_config(_as_triton_json(gpu))
    cpu_options = EncoderOptions.from_config(_as_triton_json(cpu))
    assert gpu_options.runtime == "torch" and gpu_options.fp16
    assert gpu_options.max_tokens == cpu_options.max_tokens
    assert gpu_options.max_batch_tokens > cpu_options.max_batch_tokens


def test_gpu_placement_falls_back_to_cpu_with_a_reason() -> None:
    on_gpu = resolve_placement("torch", "GPU", 1, fp16=True, cuda_available=True)
    assert (on_gpu.device, on_gpu.fp16, on_gpu.fallback) == ("cuda:1", True, None)
    fallback = resolve_placement("torch", "GPU", 0, fp16=True, cuda_available=False)
    assert (fallback.device, fallback.fp16) == ("cpu", False)
    assert fallback.fallback and "torch.cuda.is_available() is False" in fallback.fallback
    onnx = resolve_placement("onnx", "GPU", 0, fp16=False, cuda_available=True)
    assert onnx.device == "cpu" and onnx.fallback and "CPU execution provider" in onnx.fallback
    assert resolve_placement("torch", "CPU", 0, fp16=True, cuda_available=True).device == "cpu"
    assert not resolve_placement("torch", "CPU", 0, fp16=True, cuda_available=True).fp16
    assert resolve_placement("torch", "MODEL", 0, fp16=False, cuda_available=False).fallback is None


def test_generated_onnx_files_are_not_committed() -> None:
    """The exported .onnx files are build outputs of scripts/export_onnx.py: git ignores them."""
    git = shutil.which("git")
    root = REPOSITORY.parent
    if git is None or not (root / ".git").exists():
        pytest.skip("not a git checkout")
    for name in ONNX_ENCODERS:
        path = f"model_repository/{name}/1/model.onnx"
        result = subprocess.run([git, "check-ignore", "-q", path], cwd=root, check=False)
        assert result.returncode == 0, f"{path} is not ignored by git"
        tracked = subprocess.run(
            [git, "ls-files", "--error-unmatch", path], cwd=root, check=False, capture_output=True
        )
        assert tracked.returncode != 0, f"{path} is tracked by git"
