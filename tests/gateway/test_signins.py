"""Session owners, sign-in records and revocation on real Redis: what every
gateway shares."""

from __future__ import annotations

import asyncio
import json
from typing import Literal

import pytest
from argon2 import PasswordHasher
from redis.asyncio import Redis

from gateway.admin import build_parts
from gateway.auth import AuthService, PasswordChange, SignupRequest
from gateway.config import GatewaySettings
from gateway.errors import ApiError
from gateway.security.revocation import Revocations
from gateway.security.sessions import SessionOwners
from gateway.security.signins import SignIns, token_hash
from gateway.security.throttle import SignInThrottle
from shared.keys import SESSION_OWNER_GRACE_S, Keys
from shared.protocol import UserInfo


async def test_a_session_belongs_to_whoever_used_it_first(redis: Redis, keys: Keys) -> None:
    owners = SessionOwners(redis, keys, session_ttl=900)
    assert await owners.claim("tab-0001", "alice")
    assert await owners.claim("tab-0001", "alice")
    assert not await owners.claim("tab-0001", "bob")
    assert await owners.claim("tab-0002", "bob")
    ttl = await redis.ttl(keys.session_owner("tab-0001"))
    assert 900 < ttl <= 900 + SESSION_OWNER_GRACE_S


async def test_a_stream_without_an_owner_is_nobodys_to_read(redis: Redis, keys: Keys) -> None:
    """Events written before owners were recorded (or whose owner record is
    lost) are dropped when the id is first claimed, not handed over."""
    await redis.xadd(keys.session("legacy-01"), {"t": "user_message", "d": "{}"})
    owners = SessionOwners(redis, keys, session_ttl=900)
    assert await owners.claim("legacy-01", "mallory")
    assert not await redis.exists(keys.session("legacy-01"))
    # An owned stream is left alone, of course.
    await redis.xadd(keys.session("legacy-01"), {"t": "user_message", "d": "{}"})
    assert await owners.claim("legacy-01", "mallory")
    assert await redis.xlen(keys.session("legacy-01")) == 1


def auth_service(redis: Redis, keys: Keys) -> AuthService:
    parts = build_parts(redis, keys, GatewaySettings())
    return AuthService(redis, keys, parts, SignInThrottle(redis, keys))


async def test_sign_ins_are_listed_touched_and_revoked(redis: Redis, keys: Keys) -> None:
    auth = auth_service(redis, keys)
    first = await auth.signup(
        SignupRequest(username="alice", password="long enough"), address="192.0.2.1", user_agent="A"
    )
    second = await auth.login(
        SignupRequest(username="ALICE", password="long enough"), address="192.0.2.2", user_agent="B"
    )
    uid = first.user.id
    records = await auth.parts.signins.records(uid)
    assert {r.user_agent for r in records.values()} == {"A", "B"}
    assert set(records) == {token_hash(first.token), token_hash(second.token)}
    # The token itself is stored nowhere.
    dump = json.dumps({k: await redis.dump(k) is not None for k in await redis.keys("*")})
    for key in await redis.keys("*"):
        kind = await redis.type(key)
        if kind == "hash":
            dump += json.dumps(await redis.hgetall(key))
        elif kind == "string":
            dump += str(await redis.get(key))
    assert first.token not in dump and second.token not in dump
    # Revoked by its public id: that sign-in only.
    public = records[token_hash(first.token)].id
    assert await auth.parts.signins.revoke_public_id(uid, public) == token_hash(first.token)
    assert await auth.user_for_token(first.token) is None
    assert (await auth.user_for_token(second.token)) == first.user
    assert await auth.parts.signins.revoke_public_id(uid, public) is None
    assert (
        await auth.parts.signins.revoke_public_id(uid, "\U0001f7fb\u00d7") is None
    )  # found by the fuzzer
    assert (
        await auth.parts.signins.revoke_public_id(
            "someone-else", records[token_hash(second.token)].id
        )
        is None
    )


async def test_a_password_change_ends_every_other_sign_in(redis: Redis, keys: Keys) -> None:
    auth = auth_service(redis, keys)
    creds = SignupRequest(username="bob", password="first password")
    kept = await auth.signup(creds, address="192.0.2.1")
    others = [await auth.login(creds, address="192.0.2.1") for _ in range(3)]
    user = kept.user
    with pytest.raises(ApiError, match="current password is wrong"):
        await auth.change_password(
            user,
            kept.token,
            PasswordChange(current_password="nope", new_password="x" * 10),
            address="192.0.2.1",
        )
    ended = await auth.change_password(
        user,
        kept.token,
        PasswordChange(current_password="first password", new_password="second password"),
        address="192.0.2.1",
    )
    assert ended == 3
    assert await auth.user_for_token(kept.token) == user
    for other in others:
        assert await auth.user_for_token(other.token) is None


async def test_tokens_from_before_sign_in_records_are_adopted_until_a_password_change(
    redis: Redis, keys: Keys
) -> None:
    auth = auth_service(redis, keys)
    session = await auth.signup(
        SignupRequest(username="carol", password="first password"), address="192.0.2.1"
    )
    uid = session.user.id
    # What an older release stored: the token's key only.
    legacy, old = "legacy-token-one", "legacy-token-two"
    for token in (legacy, old):
        await redis.set(keys.auth_token(token_hash(token)), uid)
    assert await auth.user_for_token(legacy, "old browser") == session.user
    records = await auth.parts.signins.records(uid)
    assert records[token_hash(legacy)].user_agent == "old browser"
    await auth.change_password(
        session.user,
        session.token,
        PasswordChange(current_password="first password", new_password="second password"),
        address="192.0.2.1",
    )
    assert await auth.user_for_token(legacy) is None  # adopted, then ended with the others
    assert await auth.user_for_token(old) is None  # never adopted: older than the change
    assert not await redis.exists(keys.auth_token(token_hash(old)))


async def test_an_unknown_name_costs_the_same_password_check(redis: Redis, keys: Keys) -> None:
    auth = auth_service(redis, keys)
    await auth.prepare()
    await auth.signup(
        SignupRequest(username="dave", password="right password"), address="192.0.2.1"
    )
    checked: list[str] = []

    class CountingHasher(PasswordHasher):
        def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
            checked.append(str(hash))
            return super().verify(hash, password)

    auth._hasher = CountingHasher()
    for name in ("dave", "nobody-at-all"):
        with pytest.raises(ApiError) as refused:
            await auth.login(SignupRequest(username=name, password="wrong"), address="192.0.2.9")
        assert (refused.value.code, refused.value.message) == (
            "unauthorized",
            "wrong username or password",
        )
    assert len(checked) == 2
    assert checked[1] == auth._dummy_hash  # the unknown name was checked against the dummy
    assert checked[0] != checked[1]


async def test_a_revocation_reaches_every_gateway_and_nothing_else(
    redis: Redis, keys: Keys
) -> None:
    gateways = [Revocations(redis, keys) for _ in range(2)]
    for g in gateways:
        await g.start()
        await asyncio.wait_for(g.subscribed.wait(), 5)
    signins = SignIns(redis, keys)
    doomed = await signins.create("u1", None)
    spared = await signins.create("u1", None)
    watches = [g.watch(token_hash(t)) for g in gateways for t in (doomed, spared)]
    await signins.revoke("u1", [token_hash(doomed)])
    await asyncio.wait_for(asyncio.gather(watches[0].revoked.wait(), watches[2].revoked.wait()), 5)
    assert not watches[1].revoked.is_set() and not watches[3].revoked.is_set()
    for g in gateways:
        await g.stop()


async def test_a_revocation_published_while_not_listening_is_caught_on_resubscribe(
    redis: Redis, keys: Keys
) -> None:
    signins = SignIns(redis, keys)
    token = await signins.create("u1", None)
    gateway = Revocations(redis, keys)
    watch = gateway.watch(token_hash(token))
    await signins.revoke("u1", [token_hash(token)])  # nobody subscribed yet
    await gateway.start()
    await asyncio.wait_for(watch.revoked.wait(), 5)
    await gateway.stop()


async def test_sign_ins_per_user_are_capped(redis: Redis, keys: Keys) -> None:
    from shared import keys as key_module

    signins = SignIns(redis, keys)
    cap = key_module.MAX_SIGNINS_PER_USER
    tokens = [await signins.create("u1", None) for _ in range(cap + 2)]
    records = await signins.records("u1")
    assert len(records) == cap
    assert token_hash(tokens[0]) not in records and token_hash(tokens[-1]) in records


async def test_the_owner_of_a_user_is_in_the_user_info(redis: Redis, keys: Keys) -> None:
    auth = auth_service(redis, keys)
    s = await auth.signup(SignupRequest(username="erin", password="long enough"), address="x")
    assert s.user == UserInfo(id=s.user.id, username="erin", is_admin=True)


def test_the_session_id_is_read_from_the_subprotocols() -> None:
    from gateway.security.sessions import session_from_subprotocols

    assert session_from_subprotocols(["tidechat", "tidechat.session.tab-1234"]) == (
        "tab-1234",
        "tidechat",
    )
    assert session_from_subprotocols([]) == (None, None)
    # A session without the protocol: nothing to accept (the browser would then fail it).
    assert session_from_subprotocols(["tidechat.session.tab-1234"]) == ("tab-1234", None)
