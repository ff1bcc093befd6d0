"""Which partition of the event stream a user's events go to, and the user's token in subjects
and KV keys.

The hash is blake2b of the UTF-8 user id, so every process, language and Python version agrees
(Python's `hash()` is salted per process). The partition count (cluster.partitions) is fixed for
the life of the stream; workers share partitions, never users one by one.
"""

from __future__ import annotations

import base64
import hashlib


def partition_of(key: str, partitions: int) -> int:
    """The partition of a user id (or any routing key), in [0, partitions)."""
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % partitions


def user_key(user_id: str) -> str:
    """A KV key token for any user id: URL-safe base64 of its UTF-8, no padding."""
    if not user_id:
        raise ValueError("empty user id")
    return base64.urlsafe_b64encode(user_id.encode()).rstrip(b"=").decode()


def user_of_key(token: str) -> str:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
