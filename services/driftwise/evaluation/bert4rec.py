"""BERT4Rec baseline for the offline evaluation: a bidirectional transformer trained as a cloze task.

Model
    :class:`Bert4RecModel` is the project's transformer (:mod:`driftwise.evaluation.transformer`, ID
    mode: same blocks, position embeddings, tied item table) with two differences: attention is
    bidirectional (no causal mask; padding slots are still never attended to), and the item table
    has one more row, the ``[MASK]`` token (slot token ``n_items + 1``; 0 is padding, ``i + 1`` item i).

Training (cloze / masked-item objective)
    Each user's training items in time order form one sequence. Every epoch a sequence of n >= 2
    items is cut into contiguous groups of at most ``max_len`` items, the boundaries shifted by a
    random offset in [0, max_len) as in :func:`driftwise.evaluation.sequence_training.training_windows`; each
    group becomes one window: the ``max_len`` items ending with the group's newest item (left-padded
    if fewer). Within the window, each item of the group is replaced by ``[MASK]`` with probability
    ``mask_prob`` (0.2), and the window's last item always is, so training also sees the inference
    case (``[MASK]`` in the last slot after ``max_len - 1`` items). Items before the group are
    unmasked context, padding is never masked. The loss is the full-softmax cross-entropy over the
    whole catalogue at the masked slots (predicting the original item); the loop, optimiser, early
    stopping and determinism are :func:`driftwise.evaluation.sequence_training.fit`'s.

Protocol (as SASRec, :mod:`driftwise.evaluation.sasrec`)
    Trained once per split, on ``split.training("validation")`` only, early-stopped on validation
    HR@10 (ranked as ``protocol.evaluate`` ranks), best epoch's weights kept. The test phase uses the
    same model fed the test-phase history (train items + the validation item), without retraining.

Scoring
    A user's scores are the logits at a ``[MASK]`` appended after the newest ``max_len - 1`` items
    of the history; ``protocol.evaluate`` removes the seen items. :func:`bert4rec` caches the model
    per (split, config, mask_prob), so the validation and test phases train once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt
import torch

from driftwise.evaluation.protocol import Phase, ScoreFn, Split
from driftwise.evaluation.sasrec import (
    cached_model,
    early_stopping_score,
    sequence_score_fn,
    training_sequences,
)
from driftwise.evaluation.sequence_training import EpochStats, fit
from driftwise.evaluation.transformer import SequenceModel, SequenceModelConfig

__all__ = [
    "DEFAULT_CONFIG",
    "MASK_PROB",
    "Bert4RecModel",
    "bert4rec",
    "bert4rec_config",
    "bert4rec_model",
    "cloze_windows",
    "train_bert4rec",
]

MASK_PROB = 0.2
DEFAULT_CONFIG = SequenceModelConfig(max_epochs=200, patience=15)
"""SASRec's architecture and optimiser; more epochs and patience: the cloze objective counts about a
fifth of the targets per epoch (the masked ones) and climbs more slowly."""


class Bert4RecModel(SequenceModel):
    """The bidirectional ID-mode transformer with a ``[MASK]`` token (see module doc)."""

    causal = False
    extra_tokens = 1

    def __init__(self, n_items: int, config: SequenceModelConfig) -> None:
        super().__init__(n_items, config)  # ID mode only: no item_vectors

    @property
    def mask_token(self) -> int:
        """The slot token of ``[MASK]`` (0 is padding, ``i + 1`` is item i)."""
        return self.n_items + 1

    def pad_histories(self, histories: Sequence[Sequence[int]]) -> torch.Tensor:
        """``(B, max_len)``: the newest ``max_len - 1`` items of each history (+1, left-padded), [MASK]."""
        keep = self.config.max_len - 1
        recent = [history[-keep:] if keep else [] for history in histories]
        slots = super().pad_histories(recent)  # the oldest slot is padding: at most max_len - 1 items
        return torch.cat([slots[:, 1:], torch.full((len(slots), 1), self.mask_token)], dim=1)


def cloze_windows(
    sequences: Sequence[Sequence[int]],
    max_len: int,
    mask_prob: float,
    mask_token: int,
    rng: np.random.Generator,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """One epoch's masked windows (see module doc), in sequence order (not shuffled).

    Returns ``inputs`` (W, max_len): item index + 1, ``mask_token`` at masked slots, left-padded
    with 0; and ``targets`` (W, max_len): the 0-based original item at masked slots, else -1.
    """
    if not 0.0 <= mask_prob <= 1.0:
        raise ValueError(f"mask_prob must be in [0, 1], got {mask_prob}")
    inputs: list[npt.NDArray[np.int64]] = []
    targets: list[npt.NDArray[np.int64]] = []
    for sequence in sequences:
        items = np.asarray(sequence, dtype=np.int64)
        n = len(items)
        if n < 2:
            continue
        offset = int(rng.integers(max_len))
        ends = [n] if offset else []  # exclusive group ends, newest first
        ends += list(range(n - offset, 0, -max_len))
        for end, start in zip(ends, [*ends[1:], 0], strict=True):
            first = max(0, end - max_len)  # the window shows items[first:end]
            window = items[first:end]
            masked = np.zeros(len(window), dtype=bool)
            masked[start - first :] = rng.random(end - start) < mask_prob  # only the group's items
            masked[-1] = True
            window_in = np.zeros(max_len, dtype=np.int64)
            window_target = np.full(max_len, -1, dtype=np.int64)
            window_in[max_len - len(window) :] = np.where(masked, mask_token, window + 1)
            window_target[max_len - len(window) :] = np.where(masked, window, -1)
            inputs.append(window_in)
            targets.append(window_target)
    if not inputs:
        empty = np.zeros((0, max_len), dtype=np.int64)
        return empty, empty.copy()
    return np.stack(inputs), np.stack(targets)


def train_bert4rec(
    split: Split,
    config: SequenceModelConfig | None = None,
    *,
    mask_prob: float = MASK_PROB,
    on_epoch: Callable[[EpochStats], None] | None = None,
    num_threads: int | None = None,
) -> Bert4RecModel:
    """Train on the validation phase's training data, early-stopping on validation HR@10 (module doc)."""
    settings = config or DEFAULT_CONFIG
    if not 0.0 <= mask_prob <= 1.0:
        raise ValueError(f"mask_prob must be in [0, 1], got {mask_prob}")
    sequences = training_sequences(split)
    n_items = split.n_items
    return fit(
        lambda: Bert4RecModel(n_items, settings),
        lambda rng: cloze_windows(sequences, settings.max_len, mask_prob, n_items + 1, rng),
        settings,
        validate=early_stopping_score(split),
        on_epoch=on_epoch,
        num_threads=num_threads,
    )


def bert4rec_model(
    split: Split, config: SequenceModelConfig | None = None, mask_prob: float = MASK_PROB
) -> SequenceModel:
    """The BERT4Rec model trained on ``split`` (see module doc), trained on the first call only."""
    settings = config or DEFAULT_CONFIG
    key = ("bert4rec", settings, mask_prob)
    return cached_model(split, key, lambda: train_bert4rec(split, settings, mask_prob=mask_prob))


def bert4rec(
    split: Split, phase: Phase, config: SequenceModelConfig | None = None, mask_prob: float = MASK_PROB
) -> ScoreFn:
    """BERT4Rec scores for ``phase`` (trained once per split, config and mask_prob; see module doc)."""
    return sequence_score_fn(bert4rec_model(split, config, mask_prob), split, phase)


def bert4rec_config(max_epochs: int | None = None) -> SequenceModelConfig:
    """:data:`DEFAULT_CONFIG`, ``max_epochs`` replaced when given (``driftwise eval --sequence-epochs``)."""
    if max_epochs is None:
        return DEFAULT_CONFIG
    return dataclasses.replace(DEFAULT_CONFIG, max_epochs=max_epochs)
