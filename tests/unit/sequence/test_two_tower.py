"""The next-item two-tower: it learns what follows what from content, and the arrays it serves
with score exactly as the trained towers do."""

import time

import numpy as np
import torch

from driftwise.model.topics import normalize_rows
from driftwise.sequence.two_tower import TwoTowerConfig, fit_two_tower
from driftwise.sequence.two_tower_training import _examples, _fold, _train

N_ITEMS, DIM = 60, 16


def catalogue() -> tuple[list[str], np.ndarray]:
    vectors = normalize_rows(np.random.default_rng(0).normal(size=(N_ITEMS, DIM))).astype(np.float32)
    return [f"i{k}" for k in range(N_ITEMS)], vectors


def successor_sequences(users: int, length: int = 12) -> list[list[str]]:
    """Every user walks i_s, i_{s+7}, i_{s+14}, ...: the next item is a function of the last one."""
    rng = np.random.default_rng(1)
    return [
        [f"i{(start + 7 * k) % N_ITEMS}" for k in range(length)]
        for start in rng.integers(N_ITEMS, size=users).tolist()
    ]


def test_it_learns_the_next_item_and_serves_the_scores_it_was_trained_with() -> None:
    ids, vectors = catalogue()
    config = TwoTowerConfig(seconds=60.0, max_epochs=60, batch_size=64, lr=0.02, context=4)
    scorer = fit_two_tower(successor_sequences(200), ids, vectors, config)
    assert scorer is not None and scorer.epochs == 60
    hits = 0
    for k in range(N_ITEMS):  # after i_k, i_{k+7} comes first among the catalogue
        query = scorer.query([vectors[k]])
        assert query is not None
        scores = vectors @ query + scorer.biases(ids)
        hits += int(np.argmax(scores) == (k + 7) % N_ITEMS)
    assert hits >= 0.9 * N_ITEMS


def test_the_served_arrays_score_as_the_trained_towers() -> None:
    ids, vectors = catalogue()
    config = TwoTowerConfig(max_epochs=3, batch_size=64, context=4)
    sequences = [[int(i[1:]) for i in s] for s in successor_sequences(50)]
    contexts, targets = _examples(sequences, config)
    towers, epochs = _train(contexts, targets, torch.from_numpy(vectors), config, started=time.perf_counter())
    assert epochs == 3
    scorer = _fold(towers, contexts, torch.from_numpy(vectors), ids, epochs, 0.0)
    with torch.no_grad():
        logits = (towers.logits(contexts[:20], torch.from_numpy(vectors)) / scorer.spread).numpy()
    for row, expected in zip(contexts[:20].tolist(), logits, strict=True):
        query = scorer.query([vectors[r] for r in row if r >= 0])  # padding (-1) is not an event
        assert query is not None
        assert np.allclose(vectors @ query + scorer.biases(ids), expected, atol=1e-4)


def test_unknown_items_get_the_median_bias_and_no_history_no_query() -> None:
    ids, vectors = catalogue()
    scorer = fit_two_tower(successor_sequences(20), ids, vectors, TwoTowerConfig(max_epochs=1))
    assert scorer is not None
    assert scorer.query([]) is None
    known = scorer.biases(ids)
    assert scorer.biases(["never-seen"])[0] == np.median(known)
    assert fit_two_tower([["i1"], []], ids, vectors) is None  # no sequence of two: nothing to learn


def test_without_torch_no_two_tower_is_trained_and_nothing_fails(monkeypatch, caplog) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "torch", None)  # as if torch were not installed
    monkeypatch.delitem(sys.modules, "driftwise.sequence.two_tower_training", raising=False)
    ids, vectors = catalogue()
    assert fit_two_tower(successor_sequences(20), ids, vectors, TwoTowerConfig(max_epochs=1)) is None
    assert "torch is not installed" in caplog.text
