from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pytest

from driftwise.evaluation.protocol import Split, evaluate, leave_one_out
from driftwise.evaluation.sasrec import (
    content_sequence_model,
    sasrec,
    sasrec_model,
    sequence_score_fn,
    validation_metrics,
)
from driftwise.evaluation.transformer import SequenceModelConfig

N_ITEMS = 30
CONFIG = SequenceModelConfig(
    max_len=8, hidden=32, blocks=1, ffn_dim=64, dropout=0.1, lr=1e-2, batch_size=32, max_epochs=15, patience=2
)


pytestmark = pytest.mark.usefixtures("one_thread")


@dataclass(frozen=True)
class R:
    user_id: str
    item_id: str
    time: float


def cyclic_split(n_users: int = 80, seed: int = 0) -> Split:
    """Item i is always followed by item i + 1 (mod N_ITEMS); no user sees an item twice."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        start, length = int(rng.integers(N_ITEMS)), int(rng.integers(6, 20))
        rows += [R(f"u{u}", f"m{(start + j) % N_ITEMS}", float(1000 * u + j)) for j in range(length)]
    return leave_one_out(rows)


@pytest.fixture(scope="module")
def split() -> Split:
    return cyclic_split()


def test_sasrec_learns_the_rule_and_trains_once_per_split(split: Split) -> None:
    validation = evaluate(sasrec(split, "validation", CONFIG), split, "validation")
    model = sasrec_model(split, CONFIG)
    test = evaluate(sasrec(split, "test", CONFIG), split, "test")
    assert sasrec_model(split, CONFIG) is model  # the test phase reuses the validation-phase model
    assert validation["mrr@10"] >= 0.9 and test["mrr@10"] >= 0.9
    # the batched metric used for early stopping agrees with the protocol
    assert validation_metrics(model, split)["hr@10"] == pytest.approx(validation["hr@10"])
    assert validation_metrics(model, split)["ndcg@10"] == pytest.approx(validation["ndcg@10"])
    assert validation_metrics(model, split, "test")["ndcg@10"] == pytest.approx(test["ndcg@10"])


def test_the_test_phase_feeds_the_validation_item(split: Split) -> None:
    model = sasrec_model(split, CONFIG)
    user = split.evaluated_users[0]
    history = split.history(user, "test")
    assert history[-1] == split.validation[user]
    score = sasrec(split, "test", CONFIG)
    expected = model.score_histories([[split.item_index[i] for i in history]])[0]
    np.testing.assert_allclose(np.asarray(score(user, history)), expected, atol=1e-5)  # batched vs alone
    # any other history is scored on its own
    without = model.score_histories([[split.item_index[i] for i in history[:-1]]])[0]
    np.testing.assert_allclose(np.asarray(score(user, history[:-1])), without, atol=1e-5)
    assert not np.allclose(expected, without, atol=1e-2)


def item_vectors(split: Split) -> npt.NDArray[np.float32]:
    v = np.random.default_rng(5).normal(size=(split.n_items, 16)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_content_sequence_model_learns_the_rule(split: Split) -> None:
    vectors = item_vectors(split)
    model = content_sequence_model(split, vectors, CONFIG)
    assert model.content_mode
    m = evaluate(sequence_score_fn(model, split, "test"), split, "test")
    assert m["hr@10"] >= 0.9
    with pytest.raises(ValueError, match="rows"):
        content_sequence_model(split, vectors[:-1], CONFIG)
