"""Sequence-model scorers for the offline evaluation: SASRec (ID mode) and the content-mode model.

Model: :mod:`driftwise.evaluation.transformer` (a causal transformer trained with full-softmax
cross-entropy at every position; its training: :mod:`driftwise.evaluation.sequence_training`).

Protocol (both modes)
    The model is trained ONCE per split, on ``split.training("validation")`` only: each user's train
    items in time order form one training sequence. After every epoch it is scored on the validation
    phase exactly like ``protocol.evaluate`` does (full catalogue, the user's training items removed,
    ties by lower index; computed in one batch by
    :func:`driftwise.evaluation.sequence_training.target_ranks`),
    and training stops early on validation HR@10, keeping the best epoch's weights.
    For the ``"test"`` phase the same model is used without retraining (standard RecBole practice):
    it is fed the test-phase history, i.e. the train items plus the validation item, and predicts the
    test item. The validation item is thus an input for the test prediction but never a training
    target, and the test item is never seen.

Scoring
    A user's scores are the model's logits over the whole catalogue after the newest ``max_len``
    items of the history. :func:`sasrec` caches the trained model per (split, config), so calling it for
    "validation" and then "test" trains once; :func:`content_sequence_model` returns its model to the
    caller (who mixes its scores with other signals) and does not cache.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Hashable, Sequence

import numpy as np
import numpy.typing as npt

from driftwise.evaluation.protocol import Phase, ScoreFn, Split
from driftwise.evaluation.sequence_training import EpochStats, ranking_metrics, target_ranks, train
from driftwise.evaluation.transformer import SequenceModel, SequenceModelConfig

__all__ = [
    "cached_model",
    "content_sequence_model",
    "early_stopping_score",
    "phase_histories",
    "sasrec",
    "sasrec_model",
    "sequence_score_fn",
    "train_on_split",
    "training_sequences",
    "validation_metrics",
]

EARLY_STOPPING_METRIC = "hr@10"

# (id(split), key) -> model, key = the config (SASRec) or what else identifies a trained model
# (BERT4Rec); entries leave when their split is garbage collected (a Split holds dicts, so it is
# not hashable and cannot key a WeakKeyDictionary).
_models: dict[tuple[int, Hashable], SequenceModel] = {}
_watched: set[int] = set()


def _indices(split: Split, items: Sequence[str]) -> list[int]:
    return [split.item_index[i] for i in items]


def phase_histories(split: Split, phase: Phase) -> tuple[list[str], list[list[int]], list[int]]:
    """Evaluated users, their phase histories (item indices, time order) and their target indices."""
    histories = split.histories(phase)
    targets = split.targets(phase)
    users = [u for u in split.users if u in targets]
    return (
        users,
        [_indices(split, histories[u]) for u in users],
        [split.item_index[targets[u]] for u in users],
    )


def validation_metrics(model: SequenceModel, split: Split, phase: Phase = "validation") -> dict[str, float]:
    """``hr@10`` / ``ndcg@10`` of ``model`` on a phase, ranked as ``protocol.evaluate`` ranks."""
    _, histories, targets = phase_histories(split, phase)
    return ranking_metrics(target_ranks(model, histories, targets), k=10)


def train_on_split(
    split: Split,
    config: SequenceModelConfig | None = None,
    *,
    item_vectors: npt.ArrayLike | None = None,
    on_epoch: Callable[[EpochStats], None] | None = None,
    num_threads: int | None = None,
) -> SequenceModel:
    """Train on the validation phase's training data, early-stopping on validation HR@10 (module doc).

    ``item_vectors`` None trains SASRec (ID mode), else the content-mode model; see
    :func:`driftwise.evaluation.sequence_training.train` for ``on_epoch`` and ``num_threads``.
    """
    return train(
        training_sequences(split),
        split.n_items,
        config,
        item_vectors=item_vectors,
        validate=early_stopping_score(split),
        on_epoch=on_epoch,
        num_threads=num_threads,
    )


def training_sequences(split: Split) -> list[list[int]]:
    """Each user's items in the validation phase's training data (item indices, time order)."""
    training = split.histories("validation")
    return [_indices(split, training[u]) for u in split.users]


def early_stopping_score(split: Split) -> Callable[[SequenceModel], float]:
    """Validation HR@10 of a model, ranked as ``protocol.evaluate`` ranks (the early-stopping score)."""
    _, histories, targets = phase_histories(split, "validation")

    def validate(model: SequenceModel) -> float:
        return ranking_metrics(target_ranks(model, histories, targets), k=10)[EARLY_STOPPING_METRIC]

    return validate


def sequence_score_fn(model: SequenceModel, split: Split, phase: Phase) -> ScoreFn:
    """A ``ScoreFn`` of ``model``: the logits after the given history (item ids of ``split``).

    The phase's histories of all evaluated users are scored up front in one batch; a call with any
    other history is scored on its own.
    """
    users, histories, _ = phase_histories(split, phase)
    batch = model.score_histories(histories)
    precomputed: dict[str, tuple[tuple[int, ...], npt.NDArray[np.float32]]]
    precomputed = {u: (tuple(h), batch[row]) for row, (u, h) in enumerate(zip(users, histories, strict=True))}

    def score(user_id: str, history: Sequence[str]) -> npt.NDArray[np.float32]:
        indices = _indices(split, history)
        known = precomputed.get(user_id)
        if known is not None and known[0] == tuple(indices):
            return known[1]
        alone: npt.NDArray[np.float32] = model.score_histories([indices])[0]
        return alone

    return score


def sasrec_model(split: Split, config: SequenceModelConfig | None = None) -> SequenceModel:
    """The ID-mode model trained on ``split`` (see module doc), trained on the first call only."""
    settings = config or SequenceModelConfig()
    return cached_model(split, settings, lambda: train_on_split(split, settings))


def cached_model(split: Split, key: Hashable, make: Callable[[], SequenceModel]) -> SequenceModel:
    """``make()``'s model, made on the first call per (``split``, ``key``) and kept while ``split`` lives."""
    slot = (id(split), key)
    if slot not in _models:
        _models[slot] = make()
        if id(split) not in _watched:
            _watched.add(id(split))
            weakref.finalize(split, _forget, id(split))
    return _models[slot]


def sasrec(split: Split, phase: Phase, config: SequenceModelConfig | None = None) -> ScoreFn:
    """SASRec scores for ``phase`` (the model is trained once per split and config; see module doc)."""
    return sequence_score_fn(sasrec_model(split, config), split, phase)


def content_sequence_model(
    split: Split,
    item_vectors: npt.ArrayLike,
    config: SequenceModelConfig | None = None,
    *,
    on_epoch: Callable[[EpochStats], None] | None = None,
) -> SequenceModel:
    """Train the content-mode model; ``item_vectors`` is ``(split.n_items, d)`` aligned with ``split.items``.

    Same protocol as :func:`sasrec` (trained on the validation phase's training data, early-stopped on
    validation HR@10). Score a phase with :func:`sequence_score_fn`, or use ``model.query_vectors``.
    """
    vectors = np.asarray(item_vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] != split.n_items:
        raise ValueError(f"item_vectors must have {split.n_items} rows (split.items), got {vectors.shape}")
    return train_on_split(split, config, item_vectors=vectors, on_epoch=on_epoch)


def _forget(split_id: int) -> None:
    _watched.discard(split_id)
    for key in [k for k in _models if k[0] == split_id]:
        del _models[key]
