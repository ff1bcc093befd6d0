"""The order of a scored list: new items lifted into their slots, rejected items last
(docs/interest-model.md §7.3, §7.4), and diversity by maximal marginal relevance (§7.5)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from driftwise.model.config import RankingConfig
from driftwise.model.layers import Vector
from driftwise.model.topics import UnitRows, normalize_rows


def promote_new_items(
    scores: Vector, is_new: npt.NDArray[np.bool_], eligible: npt.NDArray[np.bool_], slots: int, position: int
) -> Vector:
    """Give the best ``slots`` new items (no interactions yet) a place at ``position`` (1-based).

    Collaborative and popularity signals cannot see an item nobody has touched, so without help it
    never reaches the top of a list and never gets the interactions it needs
    (docs/interest-model.md §7.4). The ``slots`` eligible new items with the highest scores are
    lifted just above the established item ranked ``position``, and only if they are below it;
    every other score is unchanged.
    """
    if slots <= 0 or position <= 0:
        return scores
    new = np.flatnonzero(is_new & eligible)
    established = np.flatnonzero(~is_new & eligible)
    if not len(new) or len(established) < position:
        return scores
    bar = np.partition(scores[established], len(established) - position)[len(established) - position]
    best_new = new[np.argsort(-scores[new], kind="stable")[:slots]]
    lifted = best_new[scores[best_new] < bar]
    if not len(lifted):
        return scores
    out = scores.copy()
    # keep their order among themselves, all just above the bar
    out[lifted] = bar + 1e-6 * (1.0 + scores[lifted] - scores[lifted].min())
    return out


def final_scores(
    total: Vector, popularity: Vector, rejected: npt.NDArray[np.bool_], config: RankingConfig
) -> Vector:
    """The scores candidates are ordered by: the best new items (no interactions: popularity 0)
    lifted into their slots, and kept rejected items put after every other item."""
    everything = np.ones(len(total), dtype=bool)
    slots, position = config.new_item_slots, config.new_item_position
    out = promote_new_items(total, popularity <= 0, everything, slots, position)
    if rejected.any():  # below every other item, in their own order
        out = np.where(rejected, out - (out.max() - out.min()) - 1.0, out)
    return out


def mmr_order(scores: Vector, vectors: UnitRows, diversity: float, count: int) -> list[int]:
    """Greedy maximal marginal relevance with lambda = 1 - diversity; returns indices."""
    order = list(np.argsort(-scores, kind="stable"))
    if diversity <= 0 or len(order) <= 1:
        return [int(i) for i in order[:count]]
    lam = 1.0 - diversity
    pool = order[: max(count * 5, count)]
    unit = normalize_rows(vectors[pool])
    sims = unit @ unit.T
    chosen: list[int] = []
    max_sim = np.full(len(pool), -np.inf)
    remaining = np.ones(len(pool), dtype=bool)
    pool_scores = scores[pool]
    while remaining.any() and len(chosen) < count:
        redundancy = np.where(np.isfinite(max_sim), max_sim, 0.0)
        value = np.where(remaining, lam * pool_scores - (1 - lam) * redundancy, -np.inf)
        best = int(np.argmax(value))
        chosen.append(best)
        remaining[best] = False
        max_sim = np.maximum(max_sim, sims[best])
    return [int(pool[i]) for i in chosen]
