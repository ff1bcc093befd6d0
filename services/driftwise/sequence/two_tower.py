"""A content two-tower for the next item: trained at each refit on CPU within a time budget, served
without torch.

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

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F

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


class _Towers(torch.nn.Module):
    def __init__(self, n_items: int, dimension: int, config: TwoTowerConfig) -> None:
        super().__init__()
        self.position = torch.nn.Parameter(torch.linspace(0.0, -2.0, config.context))  # newer first
        self.user = torch.nn.Linear(dimension, config.rank, bias=False)
        self.item = torch.nn.Linear(dimension, config.rank, bias=False)
        self.bias = torch.nn.Parameter(torch.zeros(n_items))
        self.scale = torch.nn.Parameter(torch.tensor(10.0))

    def logits(self, contexts: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
        """(B, n) scores of every item after each context ((B, context) rows, -1 = padding)."""
        present = contexts >= 0
        weights = torch.softmax(self.position.masked_fill(~present, -1e9), dim=1) * present
        pooled = torch.einsum("bc,bcd->bd", weights, vectors[contexts.clamp(min=0)])
        logits: torch.Tensor = self.scale * self.user(pooled) @ self.item(vectors).T + self.bias
        return logits


def _examples(
    sequences: Sequence[Sequence[int]], config: TwoTowerConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """(contexts, targets): each user's latest `targets_per_user` events after their first, each
    with the events before it, newest first (padded with -1)."""
    contexts, targets = [], []
    for seq in sequences:
        for p in range(max(1, len(seq) - config.targets_per_user), len(seq)):
            before = list(seq[max(0, p - config.context) : p])[::-1]
            contexts.append(before + [-1] * (config.context - len(before)))
            targets.append(seq[p])
    return torch.tensor(contexts, dtype=torch.long), torch.tensor(targets, dtype=torch.long)


def fit_two_tower(
    sequences: Sequence[Sequence[str]],
    item_ids: Sequence[str],
    vectors: npt.NDArray[np.float32],
    config: TwoTowerConfig = TwoTowerConfig(),
) -> TwoTowerScorer | None:
    """Fit on item sequences (ids in time order) over a catalogue (`item_ids`, unit `vectors`);
    None when there is nothing to learn from (no sequence of two known items)."""
    started = time.perf_counter()
    index = {item: i for i, item in enumerate(item_ids)}
    contexts, targets = _examples([[index[i] for i in seq if i in index] for seq in sequences], config)
    if not len(targets):
        return None
    catalogue = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32))
    towers, epochs = _train(contexts, targets, catalogue, config, started)
    return _fold(towers, contexts, catalogue, item_ids, epochs, time.perf_counter() - started)


def _train(
    contexts: torch.Tensor,
    targets: torch.Tensor,
    catalogue: torch.Tensor,
    config: TwoTowerConfig,
    started: float,
) -> tuple[_Towers, int]:
    with torch.random.fork_rng():
        torch.manual_seed(config.seed)
        towers = _Towers(len(catalogue), catalogue.shape[1], config)
        optimiser = torch.optim.Adam(towers.parameters(), lr=config.lr)
        epochs = 0
        while epochs < config.max_epochs and (epochs == 0 or time.perf_counter() - started < config.seconds):
            for batch in torch.randperm(len(targets)).split(config.batch_size):  # type: ignore[no-untyped-call]
                loss = F.cross_entropy(towers.logits(contexts[batch], catalogue), targets[batch])
                optimiser.zero_grad()
                loss.backward()  # type: ignore[no-untyped-call]
                optimiser.step()
            epochs += 1
    return towers, epochs


def _fold(
    towers: _Towers,
    contexts: torch.Tensor,
    catalogue: torch.Tensor,
    item_ids: Sequence[str],
    epochs: int,
    seconds: float,
) -> TwoTowerScorer:
    """The towers as the arrays served: logits / spread = e . (M h) + bias / spread."""
    with torch.no_grad():
        spread = float(towers.logits(contexts[:2048], catalogue).std()) or 1.0
        folded = towers.scale * towers.item.weight.T @ towers.user.weight / spread  # (d, d) = M
        bias = (towers.bias / spread).numpy().astype(np.float64)
    return TwoTowerScorer(
        position_weights=towers.position.detach().numpy().astype(np.float64),
        query_map=folded.contiguous().numpy(),
        bias=dict(zip(item_ids, bias.tolist(), strict=True)),
        default_bias=float(np.median(bias)),
        epochs=epochs,
        seconds=seconds,
        spread=spread,
    )
