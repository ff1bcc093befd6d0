"""Training of the next-item two-tower (`driftwise.sequence.two_tower`) with torch: the towers,
the examples, the loop within the time budget, and the fold into the arrays served without torch."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F

from driftwise.sequence.two_tower import TwoTowerConfig, TwoTowerScorer


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


def fit(
    sequences: Sequence[Sequence[str]],
    item_ids: Sequence[str],
    vectors: npt.NDArray[np.float32],
    config: TwoTowerConfig,
) -> TwoTowerScorer | None:
    """`driftwise.sequence.two_tower.fit_two_tower`, with torch."""
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
