"""Pseudonymised user ids (driftwise.privacy)."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from driftwise.privacy import SchemeMismatchError, UserIdScheme
from driftwise.settings import PrivacySettings

KEY = b"k" * 32


def test_plain_scheme_stores_ids_as_sent() -> None:
    plain = UserIdScheme()
    assert not plain.pseudonymises
    assert plain.stored_id("alice") == "alice"
    assert plain.name == "plain"


def test_pseudonyms_are_stable_keyed_and_hide_the_id() -> None:
    scheme = UserIdScheme(KEY)
    pseudonym = scheme.stored_id("alice")
    assert pseudonym == UserIdScheme(KEY).stored_id("alice")  # same user, same rows, every process
    assert pseudonym.startswith("p-") and len(pseudonym) == 34
    assert "alice" not in pseudonym
    assert scheme.stored_id("bob") != pseudonym
    assert UserIdScheme(b"z" * 32).stored_id("alice") != pseudonym  # without the key: unlinkable
    assert scheme.stored_id("李雷") != scheme.stored_id("李")  # any script, fits an id field
    assert pseudonym.isascii()


def test_the_scheme_name_fingerprints_the_key_without_revealing_it() -> None:
    name = UserIdScheme(KEY).name
    assert name.startswith("hmac-sha256:") and KEY.decode() not in name
    assert name == UserIdScheme(KEY).name != UserIdScheme(b"z" * 32).name


def test_data_written_under_another_scheme_is_refused() -> None:
    keyed = UserIdScheme(KEY)
    keyed.check_scheme(None)  # a new data directory
    keyed.check_scheme(keyed.name)
    with pytest.raises(SchemeMismatchError, match="stored as sent"):
        keyed.check_scheme("plain")
    with pytest.raises(SchemeMismatchError, match="pseudonymised"):
        UserIdScheme().check_scheme(keyed.name)
    with pytest.raises(SchemeMismatchError):
        UserIdScheme(b"z" * 32).check_scheme(keyed.name)  # a rotated key splits users too


def test_short_or_missing_keys_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        UserIdScheme(b"short")
    key_file = tmp_path / "key"
    key_file.write_text("  " + "a" * 32 + "\n")  # surrounding whitespace is not part of the key
    assert UserIdScheme.from_key_file(key_file).name == UserIdScheme(b"a" * 32).name
    key_file.write_text("tooshort\n")
    with pytest.raises(ValueError, match="key"):
        UserIdScheme.from_key_file(key_file)
    with pytest.raises(ValueError, match="cannot read"):
        UserIdScheme.from_key_file(tmp_path / "missing")


def test_settings_need_a_key_file_to_pseudonymise(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="user_id_key_file"):
        PrivacySettings(pseudonymise_user_ids=True)
    on = PrivacySettings(pseudonymise_user_ids=True, user_id_key_file=tmp_path / "key")
    assert on.user_id_key_file == tmp_path / "key"
    assert not PrivacySettings().pseudonymise_user_ids  # off by default
