"""Pseudonymised user ids: what is stored under a user is keyed by a keyed hash of their id.

With `privacy.pseudonymise_user_ids` on, the engine turns every user id it receives into
HMAC-SHA256(key, id) before anything is stored or looked up: the event log, the profile snapshots
and the Milvus interest rows never hold the id the caller sent. Callers keep using their own ids
(the same id always maps to the same pseudonym), so nothing changes for them. Without the key the
pseudonyms cannot be linked back to ids, nor recomputed from a list of candidate ids.

The data directory remembers which scheme (and which key, by a fingerprint that reveals nothing
of it) wrote its data: starting on it with another one would silently split every user in two, so
it is refused (`check_scheme`).
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

from driftwise.errors import StartupError
from driftwise.settings import PrivacySettings

MIN_KEY_BYTES = 32
PLAIN = "plain"
_PREFIX = "p-"  # pseudonyms are told apart from ids at a glance in the stores
_FINGERPRINT_MESSAGE = b"driftwise user id key fingerprint"


class UserIdScheme:
    """Maps the ids callers send to the ids stored: itself (no key) or a keyed hash."""

    def __init__(self, key: bytes | None = None) -> None:
        if key is not None and len(key) < MIN_KEY_BYTES:
            raise ValueError(f"the user id key must be at least {MIN_KEY_BYTES} bytes, got {len(key)}")
        self._key = key

    @classmethod
    def from_key_file(cls, path: Path) -> UserIdScheme:
        """The key is the file's bytes without surrounding whitespace (e.g. `openssl rand -hex 32`)."""
        try:
            key = path.read_bytes().strip()
        except OSError as exc:
            raise StartupError(f"cannot read the user id key file {path}: {exc.strerror}") from exc
        try:
            return cls(key)
        except ValueError as exc:
            raise StartupError(f"{path}: {exc}") from exc

    @classmethod
    def from_settings(cls, privacy: PrivacySettings) -> UserIdScheme:
        if privacy.pseudonymise_user_ids and privacy.user_id_key_file is not None:
            return cls.from_key_file(privacy.user_id_key_file)
        return cls()

    @property
    def pseudonymises(self) -> bool:
        return self._key is not None

    @property
    def name(self) -> str:
        """ "plain", or "hmac-sha256:" and a fingerprint of the key (stored with the data)."""
        if self._key is None:
            return PLAIN
        fingerprint = hmac.new(self._key, _FINGERPRINT_MESSAGE, hashlib.sha256).hexdigest()[:16]
        return f"hmac-sha256:{fingerprint}"

    def stored_id(self, user_id: str) -> str:
        """The id the stores use for `user_id`: 128 bits of the keyed hash in hex (34 characters)."""
        if self._key is None:
            return user_id
        digest = hmac.new(self._key, user_id.encode(), hashlib.sha256).hexdigest()
        return _PREFIX + digest[:32]

    def check_scheme(self, recorded: str | None) -> None:
        """Refuse data written under another scheme or key; `recorded` None means a new store."""
        if recorded is None or recorded == self.name:
            return
        raise SchemeMismatchError(
            f"the data directory was written with user ids {_describe(recorded)}, but the settings "
            f"ask for {_describe(self.name)}: the same users would be stored twice. Use the setting "
            "(privacy.pseudonymise_user_ids and privacy.user_id_key_file) the data was written with."
        )


class SchemeMismatchError(StartupError):
    pass


def _describe(scheme: str) -> str:
    if scheme == PLAIN:
        return "stored as sent"
    return f"pseudonymised with the key of fingerprint {scheme.split(':', 1)[-1]}"
