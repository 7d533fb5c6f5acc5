"""The bundled model answers simple questions instead of echoing them.

``bench.quality``'s thirty questions, asked through the worker's own prompt
path with greedy decoding (temperature 0, fixed seeds: the same replies every
run), scored as the benchmark scores them. Measured with the same settings
(docs/benchmarks.md): under the chat template the bundled base model echoed
23 of the 30 questions and ran to the token limit on all 30; with the
dialogue prompt it echoes none, stops by itself on all 30 and gives the
expected answer to 21. The floors sit a few questions below that, so a change
that brings the echo back or loses answers fails here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.quality import QUESTIONS, model_spec, run, summarize
from shared.suggestions import LOCAL

pytest.importorskip("llama_cpp")

pytestmark = pytest.mark.slow

#: Reached when tuned: 70% (21 of 30). Three questions of margin.
KEYWORD_FLOOR = 0.60
#: Reached when tuned: 100%.
CLEAN_STOP_FLOOR = 0.90


@pytest.mark.timeout(600)
async def test_the_bundled_model_answers_simple_questions(bundled_gguf: Path) -> None:
    # The bundled model's settings, but greedy, and one thread: steady under
    # the load of other tests.
    data_dir = bundled_gguf.parent.parent
    spec = model_spec(data_dir, path=str(bundled_gguf), temperature=0.0, threads=1)
    outcome = await run(spec, data_dir, seed=17)
    results = outcome.results
    summary = summarize(results)
    table = "\n".join(f"{r.ask!r} -> {r.reply!r} ({r.finish})" for r in results)

    assert outcome.prompt_format.startswith("dialogue"), "a base model gets a dialogue"
    assert [r.ask for r in results if r.echo] == [], table
    assert summary.keyword_rate >= KEYWORD_FLOOR, table
    assert summary.clean_rate >= CLEAN_STOP_FLOOR, table
    # What the empty chat suggests for this model, it answers.
    answered = {r.ask for r in results if r.keyword and r.clean}
    assert {s.prompt for s in LOCAL} <= answered, table
    assert len(results) == len(QUESTIONS)
