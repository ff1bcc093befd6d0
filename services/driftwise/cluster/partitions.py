"""Which shard owns a user: user id -> one of `partitions` fixed partitions -> shard.

The hash is blake2b of the UTF-8 user id, so every process, language and Python version agrees
(Python's `hash()` is salted per process). Partitions are assigned to shards round-robin
(partition % shards): adding shards moves whole partitions, never rehashes users one by one.
The partition count is fixed for the life of the data; changing it moves users between shards.
"""

from __future__ import annotations

import base64
import hashlib
import re
import socket
from dataclasses import dataclass

from driftwise.settings import ClusterSettings


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


@dataclass(frozen=True, slots=True)
class Partitioner:
    partitions: int
    shards: int

    @classmethod
    def from_settings(cls, cluster: ClusterSettings) -> Partitioner:
        return cls(cluster.partitions, cluster.shards)

    def partition(self, key: str) -> int:
        return partition_of(key, self.partitions)

    def shard(self, key: str) -> int:
        """The shard owning a user id (or an item id, to spread item writes)."""
        return self.partition(key) % self.shards


_TRAILING_INDEX = re.compile(r"-(\d+)$")


def shard_index_from_host(hostname: str) -> int | None:
    """The trailing -N of a host name, as in the StatefulSet pod `driftwise-profile-3`."""
    match = _TRAILING_INDEX.search(hostname.split(".", 1)[0])
    return int(match.group(1)) if match else None


def resolve_shard_index(cluster: ClusterSettings, hostname: str | None = None) -> int:
    """This profile shard's index: cluster.shard_index, else the host name's trailing -N.

    Raises ValueError with the fix when neither gives an index below cluster.shards."""
    if cluster.shard_index >= 0:
        index = cluster.shard_index
        source = "cluster.shard_index"
    else:
        hostname = socket.gethostname() if hostname is None else hostname
        found = shard_index_from_host(hostname)
        if found is None:
            raise ValueError(
                f"cannot tell which profile shard this is: cluster.shard_index is unset and the host "
                f"name {hostname!r} does not end in -N (a StatefulSet pod name); set "
                f"DRIFTWISE_CLUSTER__SHARD_INDEX"
            )
        index = found
        source = f"host name {hostname!r}"
    if index >= cluster.shards:
        raise ValueError(
            f"profile shard index {index} (from {source}) is out of range: cluster.shards is {cluster.shards}"
        )
    return index
