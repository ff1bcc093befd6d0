"""A content two-tower for the next item: trained at each refit on CPU within a time budget, served
without torch (the training, with torch, is in `driftwise.sequence.two_tower_training`, imported
only when a fit runs, so a serving process never loads torch).

User tower
    The content vectors of the user's most recent item events (newest first, at most ``context``)
    pooled with a learned weight per position (a softmax over the positions present), then a
    linear map to ``rank`` dimensions.
Item tower
    A linear map of the item's content vector to ``rank`` dimensions, plus a learned bias per item
    (how often it is the next item at all).
Score
    ``scale * <user, item> + bias``, trained with the full softmax over the catalogue: each of a
    user's latest ``targets_per_user`` item events is predicted from the events before it (Adam,
    shuffled batches) until ``seconds`` have passed or ``max_epochs`` are done; an epoch started
    is finished, so at least one is.

Serving (`TwoTowerScorer`) folds the towers into one matrix in content space: the user's query is
``q = M h`` (``h`` the pooled recent vectors, ``M = scale * P^T W``), and a candidate with content
vector ``e`` scores ``e . q + bias``: an item added after the fit scores from its content alone,
with the median bias. Scores are divided by their spread on the training targets, so the ranking
weight `sequence_boost` means the same on every catalogue.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

_log = logging.getLogger(__name__)

Vector = npt.NDArray[np.float64]


@dataclass(frozen=True)
class TwoTowerConfig:
    seconds: float = 15.0  # training time budget (wall)
    max_epochs: int = 20
    context: int = 20  # recent item events pooled (the profile remembers `recent_events`)
    rank: int = 64  # dimensions the towers meet in
    targets_per_user: int = 50  # each user's latest events are the training targets
    batch_size: int = 1024
    lr: float = 0.02
    seed: int = 0


@dataclass(frozen=True)
class TwoTowerScorer:
    """The fitted towers as arrays: what Recommend and the self-tuning score with."""

    position_weights: Vector  # (context,) softmax logits per position, newest first
    query_map: npt.NDArray[np.float32]  # (d, d): q = query_map @ pooled recent vectors
    bias: Mapping[str, float]  # item id -> learned bias, already divided by the spread
    default_bias: float  # for items the fit did not know
    epochs: int
    seconds: float
    spread: float  # the std of the trained logits the scores were divided by

    def query(self, recent: Sequence[npt.NDArray[np.floating[Any]]]) -> Vector | None:
        """(d,) the next-item query from recent item vectors (newest first); None without any."""
        recent = recent[: len(self.position_weights)]
        if not recent:
            return None
        logits = self.position_weights[: len(recent)]
        weights = np.exp(logits - logits.max())
        pooled = (weights / weights.sum()) @ np.stack(recent).astype(np.float64)
        return np.asarray(self.query_map @ pooled, dtype=np.float64)

    def biases(self, item_ids: Sequence[str]) -> Vector:
        return np.array([self.bias.get(i, self.default_bias) for i in item_ids], dtype=np.float64)


def fit_two_tower(
    sequences: Sequence[Sequence[str]],
    item_ids: Sequence[str],
    vectors: npt.NDArray[np.float32],
    config: TwoTowerConfig = TwoTowerConfig(),
) -> TwoTowerScorer | None:
    """Fit on item sequences (ids in time order) over a catalogue (`item_ids`, unit `vectors`);
    None when there is nothing to learn from (no sequence of two known items)."""
    try:
        from driftwise.sequence.two_tower_training import fit  # torch: only where a fit runs
    except ModuleNotFoundError as exc:
        if exc.name != "torch":
            raise
        _log.warning("two-tower not trained: torch is not installed (pip install 'driftwise[serve]')")
        return None
    return fit(sequences, item_ids, vectors, config)
