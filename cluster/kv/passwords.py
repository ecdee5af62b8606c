"""Salted, slow password hashes: what the log and snapshots hold instead of
passwords (cluster/kv/auth.py says who hashes and who checks).

etcd stores bcrypt hashes; jangada uses PBKDF2-HMAC-SHA256 from the standard
library (no native dependency) in a self-describing text form:

    pbkdf2-sha256$<iterations>$<salt, base64>$<hash, base64>

The iteration count travels inside the hash, so a cluster may raise
`AuthSpec.password_iterations` without invalidating the hashes it already
holds. Both functions are slow by design (that is the point of the hash): the
node runs them off its actor thread.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os

SCHEME = "pbkdf2-sha256"
SALT_BYTES = 16
#: OWASP's 2023 recommendation for PBKDF2-HMAC-SHA256.
DEFAULT_ITERATIONS = 600_000
#: A stored hash claiming more work than this is refused rather than run (a
#: corrupt or hostile hash must not stall the password worker).
MAX_ITERATIONS = 10_000_000


def hash_password(password: str, iterations: int = DEFAULT_ITERATIONS) -> str:
    """The hash of `password` with a fresh random salt."""
    if not 1 <= iterations <= MAX_ITERATIONS:
        raise ValueError(f"iterations must be in 1..{MAX_ITERATIONS}, got {iterations}")
    salt = os.urandom(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return f"{SCHEME}${iterations}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, hashed: str) -> bool:
    """Whether `password` is the one `hashed` was made from. Compares in
    constant time; a malformed `hashed` is simply no match (never raises)."""
    try:
        scheme, rounds, salt_text, digest_text = hashed.split("$")
        iterations = int(rounds)
        salt = base64.b64decode(salt_text, validate=True)
        expected = base64.b64decode(digest_text, validate=True)
        secret = password.encode()
    except (ValueError, binascii.Error, AttributeError):
        return False
    if scheme != SCHEME or not 1 <= iterations <= MAX_ITERATIONS or not rounds.isdigit() or not expected:
        return False
    digest = hashlib.pbkdf2_hmac("sha256", secret, salt, iterations)
    return hmac.compare_digest(digest, expected)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
