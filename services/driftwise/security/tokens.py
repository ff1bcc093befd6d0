"""Tenants and their bearer tokens, from a TOML file that holds only SHA-256 hashes of the tokens.

    [tenants.shop-frontend]
    scopes = ["recommend", "events:write"]
    token_sha256 = ["<64 hex digits>"]   # several during a rotation

A leaked file grants nothing: tokens are long random strings (`driftwise token` makes one and
prints its hash), so their hashes cannot be reversed. A presented token is hashed and compared with
every stored hash in constant time, without early exit, so timing tells nothing about the hashes.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import tomllib
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

from driftwise.errors import StartupError
from driftwise.security.scopes import Scope, parse_scope

_HEX_SHA256 = re.compile(r"[0-9a-f]{64}")
_TENANT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def hash_token(token: str) -> str:
    """Hex SHA-256 of a token, as stored in the tokens file."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A random token (256 bits, URL-safe)."""
    return "dw_" + secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class Tenant:
    name: str
    scopes: frozenset[Scope]


class TokenTable:
    """The tenants of a tokens file; `tenant(token)` is the tenant a token belongs to, or None."""

    def __init__(self, entries: list[tuple[bytes, Tenant]]) -> None:
        self._entries = entries  # (SHA-256 digest, tenant)

    def __len__(self) -> int:
        return len(self._entries)

    @classmethod
    def load(cls, path: Path) -> TokenTable:
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise StartupError(f"auth.tokens_file {path}: {exc}") from exc
        try:
            return cls.parse(data)
        except ValueError as exc:
            raise StartupError(f"auth.tokens_file {path}: {exc}") from None

    @classmethod
    def parse(cls, data: dict[str, object]) -> TokenTable:
        """From the parsed TOML; ValueError names the first problem (a typo must not start a
        server that silently refuses or grants)."""
        if set(data) - {"tenants"}:
            raise ValueError(f"unknown keys {sorted(set(data) - {'tenants'})}: only [tenants.<name>]")
        tenants = data.get("tenants")
        if not isinstance(tenants, dict) or not tenants:
            raise ValueError("no tenants: expected [tenants.<name>] sections")
        entries: list[tuple[bytes, Tenant]] = []
        seen: dict[str, str] = {}
        for name, spec in tenants.items():
            where = f"tenant {name!r}"
            if not _TENANT_NAME.fullmatch(name):
                raise ValueError(f"{where}: a name is 1-64 letters, digits, '.', '_' or '-'")
            if not isinstance(spec, dict) or set(spec) != {"scopes", "token_sha256"}:
                raise ValueError(f"{where}: expected exactly the keys scopes and token_sha256")
            scopes, hashes = spec["scopes"], spec["token_sha256"]
            if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
                raise ValueError(f"{where}: scopes is a list of scope names")
            try:
                tenant = Tenant(name, frozenset(parse_scope(s) for s in scopes))
            except ValueError as exc:
                raise ValueError(f"{where}: {exc}") from None
            if not isinstance(hashes, list) or not hashes:
                raise ValueError(f"{where}: token_sha256 is a non-empty list of hex SHA-256 hashes")
            for digest in hashes:
                if not isinstance(digest, str) or not _HEX_SHA256.fullmatch(digest):
                    raise ValueError(
                        f"{where}: token_sha256 entries are 64 lower-case hex digits (the hash of a "
                        "token, from `driftwise token`), never the token itself"
                    )
                if digest in seen:
                    raise ValueError(f"{where}: a token hash is also listed for tenant {seen[digest]!r}")
                seen[digest] = name
                entries.append((bytes.fromhex(digest), tenant))
        return cls(entries)

    def tenant(self, token: str) -> Tenant | None:
        presented = hashlib.sha256(token.encode()).digest()
        found = None
        for digest, tenant in self._entries:  # no early exit: the time does not depend on the match
            if hmac.compare_digest(presented, digest):
                found = tenant
        return found


# The tenant of the call being served ("" outside one or without auth), for logs (JSON "tenant").
# grpc.aio serves each call in its own task, so a value set in one call is not seen by another.
current_tenant: ContextVar[str] = ContextVar("driftwise_tenant", default="")
