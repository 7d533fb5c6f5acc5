"""Quality per second of the embedders that run offline on this machine.

    .venv/bin/python -m bench.embedders [--facts 200]

It writes ``facts`` short passages, each one stating one made-up fact among
filler sentences, and for each a question that asks for it in other words
(synonyms, a different order), then ranks every passage for every question
by cosine. Prints recall@1 and @5 and passages embedded per second (256-token
passages, batches of 16). The figures in docs/documents.md come from here.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time

import numpy as np

from worker.documents.embed import Embedder, HashEmbedder, LocalEmbedder

PEOPLE = ["Ana", "Bilal", "Chen", "Dagny", "Emeka", "Farah", "Goran", "Hana", "Ivo", "Jun"]
THINGS = [
    ("bicycle", "bike"),
    ("violin", "fiddle"),
    ("car", "automobile"),
    ("boat", "vessel"),
    ("sofa", "couch"),
    ("lawyer", "attorney"),
    ("doctor", "physician"),
    ("shop", "store"),
    ("film", "movie"),
    ("garden", "yard"),
]
PLACES = ["Lisbon", "Oslo", "Nairobi", "Lima", "Hanoi", "Quito", "Tbilisi", "Perth", "Riga"]
COLOURS = ["red", "green", "blue", "yellow", "purple", "orange", "black", "white", "grey", "pink"]
FILLER = (
    "The committee met on a Tuesday and discussed the budget for the coming year. "
    "Several members asked for more detail on travel costs and the new printer. "
    "Minutes were taken and circulated afterwards to everyone who attended. "
)


def make_set(n: int, seed: int = 7) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    seen: set[tuple[str, int, str, str]] = set()
    passages: list[str] = []
    questions: list[str] = []
    while len(passages) < n:
        person = rng.choice(PEOPLE)
        thing = rng.randrange(len(THINGS))
        place = rng.choice(PLACES)
        colour = rng.choice(COLOURS)
        key = (person, thing, place, colour)
        if key in seen:
            continue
        seen.add(key)
        word, synonym = THINGS[thing]
        fact = f"{person} keeps a {colour} {word} in {place}."
        passages.append(FILLER * 3 + fact + " " + FILLER * 2)
        questions.append(f"Which colour is the {synonym} that {person} has in {place}?")
    return passages, questions


async def measure(embedder: Embedder, passages: list[str], questions: list[str]) -> None:
    start = time.perf_counter()
    vecs = np.concatenate(
        [await embedder.embed(passages[i : i + 16]) for i in range(0, len(passages), 16)]
    )
    per_s = len(passages) / (time.perf_counter() - start)
    q = await embedder.embed(questions)
    ranks = np.argsort(-(q @ vecs.T), axis=1)
    at1 = float(np.mean(ranks[:, 0] == np.arange(len(questions))))
    at5 = float(np.mean([i in ranks[i, :5] for i in range(len(questions))]))
    print(
        f"{embedder.name:20s} dim {embedder.dim:4d}  recall@1 {at1:.2f}  recall@5 {at5:.2f}  "
        f"{per_s:7.1f} passages/s"
    )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--facts", type=int, default=200)
    args = parser.parse_args()
    passages, questions = make_set(args.facts)
    print(f"{len(passages)} passages of ~{len(passages[0].split())} words, one question each")
    for embedder in (HashEmbedder(384), LocalEmbedder()):
        await measure(embedder, passages, questions)


if __name__ == "__main__":
    asyncio.run(main())
