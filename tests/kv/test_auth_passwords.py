"""cluster/kv/passwords.py: salted PBKDF2 hashes, verified in constant time,
never raising on a malformed stored hash."""
from __future__ import annotations

import pytest

from cluster.kv.passwords import SCHEME, hash_password, verify_password


def test_a_hash_verifies_its_password_only() -> None:
    hashed = hash_password("s3cret", 1000)
    assert verify_password("s3cret", hashed)
    assert not verify_password("s3cret ", hashed)
    assert not verify_password("", hashed)


def test_the_form_carries_scheme_iterations_salt_and_hash() -> None:
    scheme, iterations, salt, digest = hash_password("pw", 1234).split("$")
    assert (scheme, iterations) == (SCHEME, "1234")
    assert len(salt) == 24 and len(digest) == 44  # 16 and 32 bytes, base64


def test_every_hash_has_its_own_salt() -> None:
    assert hash_password("pw", 1000) != hash_password("pw", 1000)


def test_the_iterations_come_from_the_stored_hash() -> None:
    old = hash_password("pw", 1000)
    assert verify_password("pw", old)  # verified with 1000 whatever the current setting
    assert verify_password("pw", hash_password("pw", 2000))


def test_an_empty_password_can_be_hashed() -> None:
    assert verify_password("", hash_password("", 1000))


def test_non_ascii_passwords() -> None:
    assert verify_password("pässwörd✓", hash_password("pässwörd✓", 1000))
    assert not verify_password("\ud800", hash_password("x", 1000))  # unencodable: no match, no raise


@pytest.mark.parametrize("stored", [
    "", "pbkdf2-sha256", "pbkdf2-sha256$1000$", "pbkdf2-sha256$x$c2FsdA==$aGFzaA==",
    "pbkdf2-sha256$0$c2FsdA==$aGFzaA==", "pbkdf2-sha256$-5$c2FsdA==$aGFzaA==",
    "pbkdf2-sha256$99999999999$c2FsdA==$aGFzaA==", "bcrypt$1000$c2FsdA==$aGFzaA==",
    "pbkdf2-sha256$1000$not base64!$aGFzaA==", "pbkdf2-sha256$1000$c2FsdA==$", "a$b$c$d$e",
    "pbkdf2-sha256$+1000$c2FsdA==$aGFzaA==",
])
def test_a_malformed_stored_hash_is_no_match(stored: str) -> None:
    assert verify_password("pw", stored) is False


def test_a_non_string_stored_hash_is_no_match() -> None:
    assert verify_password("pw", None) is False  # type: ignore[arg-type]


def test_bad_iterations_are_refused_when_hashing() -> None:
    with pytest.raises(ValueError):
        hash_password("pw", 0)
