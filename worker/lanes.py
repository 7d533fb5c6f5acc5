"""Which streams a consumer loop serves, by pool: the prompt streams (turns)
or the ingestion stream (documents). Both get the same claims
(``claims.py``), heartbeat, trimming and hand-back (``upkeep.py``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from shared.keys import INGEST_GROUP, WORKER_GROUP, Keys


@dataclass(frozen=True, slots=True)
class Lanes:
    stream: Callable[[str], str]
    group: str
    workers: Callable[[str], str]
    metrics: Callable[[str], str]

    @classmethod
    def turns(cls, keys: Keys) -> Lanes:
        return cls(keys.prompts, WORKER_GROUP, keys.workers, keys.metrics)

    @classmethod
    def documents(cls, keys: Keys) -> Lanes:
        return cls(
            keys.ingest,
            INGEST_GROUP,
            keys.ingest_workers,
            lambda pool: keys.metrics("ingest:" + pool),
        )
