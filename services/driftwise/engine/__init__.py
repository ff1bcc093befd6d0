"""The Driftwise engine: what the three services do, free of gRPC.

It ties the interest model (driftwise.model) to the encoder (Triton), the vector store (Milvus)
and the event log (SQLite). Servicers validate and convert messages, then call one method of
`Engine` (facade.py), which hands it to the room that does that job:

- catalogue.py — items encoded and stored; events made ready to apply (or, in a cluster, to publish);
- writes.py — the write path: events checked, applied to their profiles, recorded in the log;
- profiles.py — the profile cache and its commit rule, one writer per user, watches, rebuilds;
- learned_models.py — the models refitted on the log (in a child process) and served;
- recommend.py — retrieval and ranking for Recommend and Rank, reading users through reads.py
  (the log's profiles here, a cluster's snapshots there);
- popularity.py, encoding.py, log_access.py — what several rooms share;
- profile_view.py — a profile explained with its topics, for GetProfile and WatchProfile;
- types.py — the plain data going in and out.
"""

from driftwise.engine.facade import Engine
from driftwise.engine.profile_view import ProfileView
from driftwise.engine.types import Ack, NewItem, Recommendations, RecommendQuery

__all__ = ["Ack", "Engine", "NewItem", "ProfileView", "RecommendQuery", "Recommendations"]
