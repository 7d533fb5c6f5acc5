"""The storage benchmark's text (``bench/storage.py``): Zipf-like words
from a fixed vocabulary with 1/rank weights, and conversations of it."""

from __future__ import annotations

import random
import time
from typing import Any

_WORDS = """tide moon harbor sail anchor keel reef current wave shore pilot lagoon coral
estuary buoy compass lantern channel dune kelp drift mast gull heron pebble inlet river cove
hull pearl delta beacon rudder storm breeze salt foam ebb flood spring neap gravity orbit ocean
sea bay cliff rock sand island lighthouse fisher net boat ship crew deck cabin chart map route
star night day morning evening weather cloud rain wind fog north south east west port starboard
bow stern ballast cargo trade"""
VOCAB = _WORDS.split()
WEIGHTS = [1 / (i + 1) for i in range(len(VOCAB))]


def text(rng: random.Random, chars: int) -> str:
    out: list[str] = []
    size = 0
    while size < chars:
        word = rng.choices(VOCAB, WEIGHTS)[0]
        out.append(word)
        size += len(word) + 1
    return " ".join(out)[:chars]


def chain(n: int, chars: int, seed: int = 1) -> dict[str, Any]:
    rng = random.Random(seed)
    t = time.time() - n
    messages: dict[str, Any] = {}
    parent = None
    for i in range(n):
        mid = f"m{i}"
        user = i % 2 == 0
        messages[mid] = {
            "id": mid,
            "parent_id": parent,
            "role": "user" if user else "assistant",
            "content": text(rng, chars),
            "finish_reason": None if user else "stop",
            "created_at": t + i,
        }
        parent = mid
    return {"title": f"{n} messages", "messages": messages, "current_id": parent}
