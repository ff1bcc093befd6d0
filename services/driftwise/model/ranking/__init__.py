"""Scoring, diversity and explanations for recommendations (docs/interest-model.md §7).

Retrieval happens elsewhere (the vector store); this package gets candidates with their vectors
and turns them into an ordered, explained list:

- scoring.py — the score of each item and its components (§7.2), the learned `Signals`;
- candidates.py — `Candidate`, rejected near-duplicates (§7.3), candidates scored for a profile;
- ordering.py — new-item slots (§7.4), rejected items last, MMR diversity (§7.5);
- explanations.py — `Ranked` and its `Reason`, the evidence and the sentence (§7.6);
- rank.py — the whole list: `rank_for_profile`, and `rank_cold_start` for users without a profile.
"""

from driftwise.model.ranking.candidates import Candidate, Scored, near_rejected, score_candidates
from driftwise.model.ranking.explanations import Ranked, Reason, explain
from driftwise.model.ranking.ordering import final_scores, mmr_order, promote_new_items
from driftwise.model.ranking.rank import rank_cold_start, rank_for_profile
from driftwise.model.ranking.scoring import (
    COMPONENTS,
    WEIGHT_FIELDS,
    ItemScores,
    Signals,
    component_weights,
    layer_queries,
    layer_weights,
    score_items,
)

__all__ = [
    "COMPONENTS",
    "WEIGHT_FIELDS",
    "Candidate",
    "ItemScores",
    "Ranked",
    "Reason",
    "Scored",
    "Signals",
    "component_weights",
    "explain",
    "final_scores",
    "layer_queries",
    "layer_weights",
    "mmr_order",
    "near_rejected",
    "promote_new_items",
    "rank_cold_start",
    "rank_for_profile",
    "score_candidates",
    "score_items",
]
