"""The node's token table (node/auth_tokens.py): etcd's simple tokens from the
applied log's events, kept by the node's own clock, and JWTs."""
from __future__ import annotations

from pathlib import Path

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from cluster.kv.errors import InvalidAuthToken
from cluster.spec import AuthSpec
from node.auth_tokens import JwtKeys, TokenTable

T0 = 1_700_000_000.0  # a wall-clock time, seconds
TTL = 300


def issued(table: TokenTable, token: str, user: str, at: float = T0) -> None:
    table.apply([("issue", token, user, int(at * 1000))])


def test_a_simple_token_lives_its_ttl_from_issue_by_this_nodes_clock() -> None:
    table = TokenTable(TTL)
    issued(table, "abc.1", "alice")
    assert table.resolve("abc.1", T0 + TTL - 1) == "alice"
    with pytest.raises(InvalidAuthToken):
        table.resolve("abc.1", T0 + 2 * TTL)  # idle past its ttl (from its last use)
    with pytest.raises(InvalidAuthToken):
        table.resolve("abc.1", T0)  # and it is gone for good
    assert len(table) == 0


def test_use_refreshes_a_simple_token() -> None:
    table = TokenTable(TTL)
    issued(table, "t.1", "alice")
    for step in range(1, 6):  # used every 200 s: alive well past issue + ttl
        assert table.resolve("t.1", T0 + 200 * step) == "alice"
    with pytest.raises(InvalidAuthToken):
        table.resolve("t.1", T0 + 1000 + TTL)


def test_an_old_issue_entry_replayed_gives_an_expired_token() -> None:
    table = TokenTable(TTL)
    issued(table, "old.1", "alice", at=T0 - 3600)
    with pytest.raises(InvalidAuthToken):
        table.resolve("old.1", T0)


def test_unknown_and_empty_tokens_are_invalid() -> None:
    table = TokenTable(TTL)
    issued(table, "t.1", "alice")
    for token in ("nope", "", "t.2", "T.1"):
        with pytest.raises(InvalidAuthToken):
            table.resolve(token, T0)


def test_a_changed_user_loses_its_tokens_and_only_its_own() -> None:
    table = TokenTable(TTL)
    issued(table, "a.1", "alice")
    issued(table, "a.2", "alice")
    issued(table, "b.1", "bob")
    table.apply([("user-changed", "alice")])
    for token in ("a.1", "a.2"):
        with pytest.raises(InvalidAuthToken):
            table.resolve(token, T0 + 1)
    assert table.resolve("b.1", T0 + 1) == "bob"


@pytest.mark.parametrize("event", [("disabled",), ("enabled",)])
def test_auth_turned_off_or_on_drops_every_token(event: tuple[str]) -> None:
    table = TokenTable(TTL)
    issued(table, "a.1", "alice")
    issued(table, "b.1", "bob")
    table.apply([event])
    assert len(table) == 0
    with pytest.raises(InvalidAuthToken):
        table.resolve("a.1", T0 + 1)


def test_expire_forgets_only_dead_tokens() -> None:
    table = TokenTable(TTL)
    issued(table, "a.1", "alice", at=T0)
    issued(table, "b.1", "bob", at=T0 + 200)
    assert table.expire(T0 + TTL + 1) == 1
    assert table.resolve("b.1", T0 + TTL + 1) == "bob"


def test_new_simple_tokens_are_etcds_shape_and_unique() -> None:
    table = TokenTable(TTL)
    tokens = {table.new_simple_token() for _ in range(200)}
    assert len(tokens) == 200
    for token in tokens:
        prefix, _, counter = token.partition(".")
        assert len(prefix) == 16 and prefix.isalpha() and counter.isdigit()


# --- JWT -------------------------------------------------------------------------------


def rsa_pem(path: Path) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return path


def jwt_table(tmp_path: Path, name: str = "jwt.pem", method: str = "RS256") -> TokenTable:
    key = tmp_path / name
    if not key.exists():
        if method.startswith("RS"):
            rsa_pem(key)
        elif method.startswith("ES"):
            private = ec.generate_private_key(ec.SECP256R1())
            key.write_bytes(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
        else:
            key.write_bytes(b"a shared secret of enough length for hs256\n")
    return TokenTable.from_spec(AuthSpec(token="jwt", token_ttl_s=TTL, jwt_key=str(key), jwt_sign_method=method),
                                key)


@pytest.mark.parametrize("method", ["RS256", "ES256", "HS256"])
def test_a_signed_jwt_carries_etcds_claims_and_resolves_until_exp(tmp_path: Path, method: str) -> None:
    table = jwt_table(tmp_path, method=method)
    token = table.sign("alice", 7, T0)
    claims = pyjwt.decode(token, options={"verify_signature": False})
    assert claims == {"username": "alice", "revision": 7, "exp": int(T0 + TTL)}
    assert table.resolve(token, T0 + TTL - 1) == "alice"
    with pytest.raises(InvalidAuthToken):
        table.resolve(token, T0 + TTL)


def test_a_jwt_from_another_key_is_invalid(tmp_path: Path) -> None:
    ours = jwt_table(tmp_path, "ours.pem")
    theirs = jwt_table(tmp_path, "theirs.pem")
    with pytest.raises(InvalidAuthToken):
        ours.resolve(theirs.sign("root", 1, T0), T0)


def test_a_tampered_or_garbage_jwt_is_invalid(tmp_path: Path) -> None:
    table = jwt_table(tmp_path)
    header, payload, signature = table.sign("alice", 1, T0).split(".")
    forged_payload = pyjwt.utils.base64url_encode(b'{"username":"root","revision":1,"exp":9999999999}').decode()
    unsigned = pyjwt.encode({"username": "root", "exp": int(T0 + TTL)}, key=None, algorithm="none")
    hs_with_public = pyjwt.encode({"username": "root", "exp": int(T0 + TTL)}, "a secret of thirty-two bytes or more!!", algorithm="HS256")
    for token in (f"{header}.{forged_payload}.{signature}", unsigned, hs_with_public, "not.a.jwt", "", "abc.1"):
        with pytest.raises(InvalidAuthToken):
            table.resolve(token, T0)


def test_a_jwt_without_a_username_is_invalid(tmp_path: Path) -> None:
    table = jwt_table(tmp_path, method="HS256")
    keys = table.jwt
    assert isinstance(keys, JwtKeys)
    for claims in ({"exp": int(T0 + TTL)}, {"username": "", "exp": int(T0 + TTL)}, {"username": "alice"}):
        token = pyjwt.encode(claims, keys.sign_key, algorithm="HS256")
        with pytest.raises(InvalidAuthToken):
            table.resolve(token, T0)


def test_simple_token_events_do_not_make_jwts_valid(tmp_path: Path) -> None:
    table = jwt_table(tmp_path)
    issued(table, "abc.1", "alice")
    with pytest.raises(InvalidAuthToken):
        table.resolve("abc.1", T0)
