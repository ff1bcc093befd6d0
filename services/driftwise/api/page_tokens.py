"""Recommend's page tokens: stateless, opaque to callers, bound to the request they continue."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import zlib
from collections.abc import Sequence

from driftwise.api.validation import ID_BYTES
from driftwise.engine import RecommendQuery

# Pages are stateless: the token carries the items already shown, which later pages exclude, so
# any replica can serve the next page, and a digest of the request's other fields, so that a token
# is only taken with the request it continues. It is opaque to callers but not secret (only the
# caller's own exclusions are in it), hence no signature.
MAX_PAGED_ITEMS = 500
# The JSON of the largest token this service issues (MAX_PAGED_ITEMS ids and a user id of
# ID_BYTES each, JSON spending at most 6 bytes per UTF-8 byte, and the field digests); decoding
# inflates no more than that.
_MAX_TOKEN_JSON_BYTES = (MAX_PAGED_ITEMS + 1) * (6 * ID_BYTES + 3) + 512
MAX_PAGE_TOKEN_CHARS = 1 << 20  # far above any token issued (its base64 of compressed JSON)


def _request_digests(query: RecommendQuery) -> dict[str, str]:
    """A short digest of each RecommendRequest field a page token must be used with, by the
    field's name in the request (order-free lists are compared as sets)."""
    fields: dict[str, object] = {
        "count": query.count,
        "filter": [sorted(set(query.categories)), query.created_after, query.created_before],
        "exclude_item_ids": sorted(set(query.exclude_item_ids)),
        "include_seen": query.include_seen,
        "diversity": query.diversity,
        "as_of_time": query.as_of,
    }
    if query.topic_temperature is not None:  # absent when unset: tokens issued before it still fit
        fields["topic_temperature"] = query.topic_temperature
    return {
        name: hashlib.sha256(json.dumps(value).encode()).hexdigest()[:12] for name, value in fields.items()
    }


def encode_page_token(query: RecommendQuery, shown: Sequence[str]) -> str:
    token = {"u": query.user_id, "s": list(shown), "q": _request_digests(query)}
    raw = json.dumps(token, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(zlib.compress(raw)).decode()


def decode_page_token(token: str, query: RecommendQuery) -> tuple[str, ...]:
    """The ids a token says were shown, if it was issued for a request like `query`. Any token a
    caller makes up is a ValueError: bad base64, zlib or JSON, a bomb (decompressed size bounded,
    nesting never recursed into), wrong shape."""
    not_ours = ValueError("is not a token this service issued")
    try:
        inflate = zlib.decompressobj()
        compressed = base64.b64decode(token.encode(), altchars=b"-_", validate=True)
        raw = inflate.decompress(compressed, _MAX_TOKEN_JSON_BYTES)
        if inflate.unconsumed_tail or not inflate.eof:
            raise not_ours
        data = json.loads(raw)
    except (ValueError, binascii.Error, zlib.error, RecursionError) as exc:
        raise not_ours from exc
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("s"), list)
        or not isinstance(data.get("q"), dict)
    ):
        raise not_ours
    token_user, shown, digests = data.get("u"), data["s"], data["q"]
    if token_user != query.user_id:
        raise ValueError("belongs to another request (use it with the same user_id)")
    if len(shown) > MAX_PAGED_ITEMS or not all(
        isinstance(i, str) and len(i.encode()) <= ID_BYTES for i in shown
    ):
        raise not_ours
    expected = _request_digests(query)
    changed = [
        name for name in dict.fromkeys([*expected, *digests]) if digests.get(name) != expected.get(name)
    ]
    if changed:
        raise ValueError(
            f"was issued for a request with another {' and '.join(changed)}: send the fields of the"
            " first page's request again with it"
        )
    return tuple(shown)


# -- the list methods of InsightService -------------------------------------------------------
# ListUsers and ListItems page by a cursor (the sort key of the last row shown: keyset paging, so
# a page costs what one query of the next rows costs, and rows added meanwhile are not repeated).
# The token carries the cursor, the method it belongs to and a digest of the request's filter.
_MAX_LIST_TOKEN_CHARS = 2048  # far above any issued: a cursor holds one id of ID_BYTES


def encode_list_token(method: str, cursor: Sequence[str | float], filter_value: str) -> str:
    token = {"m": method, "c": list(cursor), "f": _digest(filter_value)}
    return base64.urlsafe_b64encode(json.dumps(token, separators=(",", ":")).encode()).decode()


def decode_list_token(token: str, method: str, filter_name: str, filter_value: str) -> list[object]:
    """The cursor of a token `method` issued for a request with this filter; ValueError for any
    other (made up, another method's, another filter's)."""
    not_ours = ValueError("is not a token this method issued")
    if len(token) > _MAX_LIST_TOKEN_CHARS:
        raise not_ours
    try:
        data = json.loads(base64.b64decode(token.encode(), altchars=b"-_", validate=True))
    except (ValueError, binascii.Error, RecursionError) as exc:
        raise not_ours from exc
    if not isinstance(data, dict) or data.get("m") != method or not isinstance(data.get("c"), list):
        raise not_ours
    if data.get("f") != _digest(filter_value):
        raise ValueError(
            f"was issued for a request with another {filter_name}: send the first page's"
            f" {filter_name} with it"
        )
    return list(data["c"])


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:12]
