"""Settings an admin changes while the server runs (sign-up mode), kept in
Redis so every gateway applies a change at once; the environment gives the
starting value."""

from __future__ import annotations

from typing import get_args

from redis.asyncio import Redis

from gateway.config import SignupMode
from shared.keys import Keys

SIGNUP_MODES: tuple[SignupMode, ...] = get_args(SignupMode)


class RuntimeSettings:
    def __init__(self, redis: Redis, keys: Keys, default_signup_mode: SignupMode) -> None:
        self.redis = redis
        self.keys = keys
        self.default_signup_mode = default_signup_mode

    async def signup_mode(self) -> SignupMode:
        stored = await self.redis.hget(self.keys.runtime_settings(), "signup_mode")
        for mode in SIGNUP_MODES:
            if stored == mode:
                return mode
        return self.default_signup_mode

    async def set_signup_mode(self, mode: SignupMode) -> None:
        await self.redis.hset(self.keys.runtime_settings(), "signup_mode", mode)
