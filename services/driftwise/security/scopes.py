"""The scope each Driftwise RPC needs. A tenant's token grants a set of scopes (tokens.py).

One scope per method keeps the table legible; a new RPC must be added here, or it is refused to
everyone (the interceptor fails closed and tests/unit/security/test_scopes.py fails).
"""

from __future__ import annotations

from enum import StrEnum


class Scope(StrEnum):
    EVENTS_WRITE = "events:write"  # send user events
    ITEMS_WRITE = "items:write"  # change the catalogue
    PROFILES_READ = "profiles:read"  # read a user's interests
    USERS_DELETE = "users:delete"  # erase a user's data (right to be forgotten)
    RECOMMEND = "recommend"  # recommendations, ranking, and the feedback loop that feeds them
    INSIGHTS_READ = "insights:read"  # the catalogue, the server's stats and online quality: no user data


_INGEST = "/driftwise.v1.IngestService/"
_PROFILE = "/driftwise.v1.ProfileService/"
_RANKING = "/driftwise.v1.RankingService/"
_INSIGHT = "/driftwise.v1.InsightService/"

METHOD_SCOPES: dict[str, Scope] = {
    _INGEST + "UpsertItems": Scope.ITEMS_WRITE,
    _INGEST + "DeleteItems": Scope.ITEMS_WRITE,
    _INGEST + "IngestEvents": Scope.EVENTS_WRITE,
    _INGEST + "StreamEvents": Scope.EVENTS_WRITE,
    _PROFILE + "GetProfile": Scope.PROFILES_READ,
    _PROFILE + "WatchProfile": Scope.PROFILES_READ,
    _PROFILE + "DeleteUserData": Scope.USERS_DELETE,
    _RANKING + "Recommend": Scope.RECOMMEND,
    _RANKING + "Rank": Scope.RECOMMEND,
    # feedback is applied to the profile like an event, but it is the recommendation loop of a
    # front end: one scope for a front end that shows recommendations and reports what was clicked
    _RANKING + "StreamFeedback": Scope.RECOMMEND,
    _RANKING + "GetModelStatus": Scope.RECOMMEND,  # what ranking serves with: no user data
    # user ids and what users did: the profile scope
    _INSIGHT + "ListUsers": Scope.PROFILES_READ,
    _INSIGHT + "GetTopicHistory": Scope.PROFILES_READ,
    _INSIGHT + "GetItem": Scope.PROFILES_READ,  # its recent interactions name users
    _INSIGHT + "ListItems": Scope.INSIGHTS_READ,
    _INSIGHT + "SearchItems": Scope.INSIGHTS_READ,
    _INSIGHT + "GetServerStats": Scope.INSIGHTS_READ,
    _INSIGHT + "GetOnlineQuality": Scope.INSIGHTS_READ,
}


def parse_scope(name: str) -> Scope:
    """The scope named `name`; ValueError listing the known ones otherwise."""
    try:
        return Scope(name)
    except ValueError:
        known = ", ".join(s.value for s in Scope)
        raise ValueError(f"unknown scope {name!r} (known: {known})") from None
