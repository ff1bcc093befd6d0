from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
import pytest
import torch

from driftwise.evaluation.sequence_training import ranking_metrics, target_ranks, train, training_windows
from driftwise.evaluation.transformer import (
    ONNX_INPUTS,
    ONNX_OUTPUT,
    SequenceModel,
    SequenceModelConfig,
    export_onnx,
    load_model,
    padded_query,
    save_model,
)

N_ITEMS = 24
DIM = 16
CONFIG = SequenceModelConfig(
    max_len=8, hidden=32, blocks=2, heads=2, ffn_dim=64, dropout=0.1, lr=1e-2, batch_size=32, max_epochs=12
)


pytestmark = pytest.mark.usefixtures("one_thread")


def cyclic_sequences(n_users: int = 60, seed: int = 0) -> list[list[int]]:
    """Item i is always followed by i + 1 (mod N_ITEMS); each user starts somewhere else."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_users):
        start, length = int(rng.integers(N_ITEMS)), int(rng.integers(6, 20))
        out.append([(start + j) % N_ITEMS for j in range(length)])
    return out


def content_vectors(seed: int = 1) -> npt.NDArray[np.float32]:
    v = np.random.default_rng(seed).normal(size=(N_ITEMS, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def hr_at_1(model: SequenceModel, sequences: Sequence[Sequence[int]]) -> float:
    histories, targets = [s[:-1] for s in sequences], [s[-1] for s in sequences]
    return ranking_metrics(target_ranks(model, histories, targets, exclude_seen=False), k=1)["hr@1"]


@pytest.fixture(scope="module")
def id_model() -> SequenceModel:
    return train(cyclic_sequences(), N_ITEMS, CONFIG)


@pytest.fixture(scope="module")
def content_model() -> SequenceModel:
    return train(cyclic_sequences(), N_ITEMS, CONFIG, item_vectors=content_vectors())


def test_id_mode_learns_the_next_item_rule(id_model: SequenceModel) -> None:
    held_out = cyclic_sequences(seed=7)  # other users, same rule
    assert hr_at_1(id_model, held_out) >= 0.9
    assert hr_at_1(SequenceModel(N_ITEMS, CONFIG), held_out) < 0.3


def test_content_mode_learns_the_next_item_rule(content_model: SequenceModel) -> None:
    held_out = cyclic_sequences(seed=7)
    assert hr_at_1(content_model, held_out) >= 0.9
    assert hr_at_1(SequenceModel(N_ITEMS, CONFIG, content_vectors()), held_out) < 0.3


@pytest.mark.parametrize("content", [False, True])
def test_attention_is_causal(content: bool) -> None:
    torch.manual_seed(0)
    model = SequenceModel(N_ITEMS, CONFIG, content_vectors() if content else None).eval()
    slots = torch.tensor([[0, 0, 3, 4, 5, 6, 7, 8], [0, 0, 3, 4, 5, 6, 9, 8]])  # differ at slot 6
    with torch.no_grad():
        hidden = model.encode(model.embed_items(slots), slots > 0)
    assert torch.allclose(hidden[0, :6], hidden[1, :6], atol=1e-6)  # earlier slots do not see slot 6
    assert not torch.allclose(hidden[0, 6:], hidden[1, 6:], atol=1e-3)


def test_padding_content_does_not_change_the_query() -> None:
    torch.manual_seed(0)
    model = SequenceModel(N_ITEMS, CONFIG, content_vectors())
    rng = np.random.default_rng(2)
    vectors = np.zeros((2, CONFIG.max_len, DIM), dtype=np.float32)
    vectors[:, -3:] = content_vectors()[[1, 2, 3]]
    vectors[1, :-3] = rng.normal(size=(CONFIG.max_len - 3, DIM))  # garbage in the padded slots
    mask = np.zeros((2, CONFIG.max_len), dtype=np.float32)
    mask[:, -3:] = 1.0
    query = padded_query(model, vectors, mask)
    np.testing.assert_allclose(query[0], query[1], atol=1e-6)
    # histories of different lengths in one batch give what each gives alone
    histories = [content_vectors()[[1, 2, 3]], content_vectors()[[5, 6, 7, 8, 9, 10, 11, 12, 13, 14]]]
    batched = model.query_vectors(histories)
    np.testing.assert_allclose(batched[0], model.query_vectors(histories[:1])[0], atol=1e-6)
    np.testing.assert_allclose(batched[1], model.query_vectors(histories[1:])[0], atol=1e-6)
    np.testing.assert_allclose(batched[0], query[0], atol=1e-6)


def test_query_vectors_score_like_score_histories(content_model: SequenceModel) -> None:
    vectors = content_vectors()
    histories = [[1, 2, 3], [5], list(range(N_ITEMS)), []]
    queries = content_model.query_vectors([vectors[h].reshape(-1, DIM) for h in histories])
    assert queries.shape == (4, DIM)
    np.testing.assert_allclose(queries @ vectors.T, content_model.score_histories(histories), atol=1e-5)


def test_a_new_item_is_scored_from_its_content_alone(content_model: SequenceModel) -> None:
    # a vector the model never saw, placed next to the known successor of the history
    vectors = content_vectors()
    new_item = vectors[4] + 0.01 * content_vectors(seed=9)[0]
    new_item /= np.linalg.norm(new_item)
    query = content_model.query_vectors([vectors[[1, 2, 3]]])[0]
    assert query @ new_item > np.max(np.delete(vectors, 4, axis=0) @ query)


def test_onnx_export_matches_torch(content_model: SequenceModel, tmp_path: Path) -> None:
    path = tmp_path / "query.onnx"
    export_onnx(content_model, path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == list(ONNX_INPUTS)
    assert [o.name for o in session.get_outputs()] == [ONNX_OUTPUT]
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(3, CONFIG.max_len, DIM)).astype(np.float32)
    mask = np.ones((3, CONFIG.max_len), dtype=np.float32)
    mask[1, :5] = 0.0
    mask[2, :-1] = 0.0
    (onnx_query,) = session.run([ONNX_OUTPUT], {"EVENT_VECTORS": vectors, "EVENT_MASK": mask})
    np.testing.assert_allclose(onnx_query, padded_query(content_model, vectors, mask), atol=1e-4)


def test_export_needs_content_mode(id_model: SequenceModel, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="content-mode"):
        export_onnx(id_model, tmp_path / "x.onnx")
    with pytest.raises(ValueError, match="content-mode"):
        id_model.query_vectors([content_vectors()[:2]])


@pytest.mark.parametrize("content", [False, True])
def test_save_load_round_trip(
    id_model: SequenceModel, content_model: SequenceModel, content: bool, tmp_path: Path
) -> None:
    model = content_model if content else id_model
    save_model(model, tmp_path / "model")
    loaded = load_model(tmp_path / "model")
    assert loaded.config == model.config and loaded.content_mode == content
    histories = [[1, 2, 3], [7, 8], list(range(N_ITEMS))]
    np.testing.assert_array_equal(loaded.score_histories(histories), model.score_histories(histories))


def test_training_is_deterministic_given_the_seed() -> None:
    config = SequenceModelConfig(max_len=8, hidden=16, blocks=1, ffn_dim=32, max_epochs=2, batch_size=16)
    sequences = cyclic_sequences(n_users=20)
    first, second = (train(sequences, N_ITEMS, config).state_dict() for _ in range(2))
    assert all(torch.equal(first[k], second[k]) for k in first)
    other_seed = SequenceModelConfig(**{**config.__dict__, "seed": 1})
    third = train(sequences, N_ITEMS, other_seed).state_dict()
    assert not torch.equal(first["position.weight"], third["position.weight"])


def test_early_stopping_keeps_the_best_epoch() -> None:
    scores = iter([0.1, 0.5, 0.2, 0.3, 0.4, 0.9])
    seen: list[float] = []
    snapshots: list[torch.Tensor] = []

    def validate(model: SequenceModel) -> float:
        snapshots.append(model.position.weight.detach().clone())
        seen.append(next(scores))
        return seen[-1]

    config = SequenceModelConfig(max_len=8, hidden=16, blocks=1, ffn_dim=32, max_epochs=6, patience=3)
    model = train(cyclic_sequences(n_users=10), N_ITEMS, config, validate=validate)
    assert seen == [0.1, 0.5, 0.2, 0.3, 0.4]  # stopped 3 epochs after the best (epoch 2)
    assert torch.equal(model.position.weight, snapshots[1])


def test_training_windows_count_every_target_once_with_full_context() -> None:
    sequence = list(range(23))
    for seed in range(5):
        inputs, targets = training_windows([sequence, [5]], max_len=5, rng=np.random.default_rng(seed))
        counted = targets[targets >= 0]
        assert sorted(counted.tolist()) == sequence[1:]  # a 1-item sequence has no target
        for window_in, window_target in zip(inputs, targets, strict=True):
            slots = np.flatnonzero(window_target >= 0)
            for slot in slots:  # a slot sees the items right before its target
                target = int(window_target[slot])
                context = [i - 1 for i in window_in[: slot + 1] if i > 0]
                assert context == sequence[target - len(context) : target]
            # the window's last slot holds its newest target, which sees up to max_len items
            assert slots[-1] == 4 and np.count_nonzero(window_in) == min(5, int(window_target[-1]))
