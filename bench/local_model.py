"""Local model benchmark: the bundled Gemma 3 270M through tidechat (WebSocket
client -> gateway -> Redis -> worker -> llama.cpp) against raw
llama-cpp-python ``create_chat_completion(stream=True)`` on the same prompt,
settings and thread count, in the same run, alternating so both see the same
machine.

    python -m bench.local_model                 # 5 rounds of 128 tokens
    python -m bench.local_model --rounds 7 --max-tokens 256 --threads 2

Prints, for each side: time to first token (p50) and delivered tokens/s
(completion tokens over the time from the first token to the last), then
their ratio and the time to first token tidechat adds. The model rarely ends
a reply on its own, so both sides generate exactly ``--max-tokens`` tokens.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import websockets

from bench.harness import clean_env, spawn, stop, wait_http
from shared.local_model import bundled_model_path
from tidechat.local_redis import LocalRedis, free_port
from worker.backends.llama_templates import chat_handler, chat_template, normalize_messages

PROMPT = "Write a short story about a lighthouse keeper and a storm."
REPEAT_PENALTY = 1.15
TEMPERATURE = 0.7


def raw_round(llm: Any, messages: list[dict[str, str]], max_tokens: int) -> tuple[float, float]:
    """(time to first token, tokens/s after it) of one raw streamed reply."""
    start = time.perf_counter()
    first = last = 0.0
    finish = None
    pieces = 0
    for chunk in llm.create_chat_completion(
        messages=messages,
        stream=True,
        max_tokens=max_tokens,
        temperature=TEMPERATURE,
        repeat_penalty=REPEAT_PENALTY,
        seed=int(time.time()),
    ):
        choice = chunk["choices"][0]
        finish = choice.get("finish_reason") or finish
        if choice["delta"].get("content"):
            now = time.perf_counter()
            if not first:
                first = now
            last = now
            pieces += 1
    if finish != "length":
        print(f"raw: the model stopped early ({finish})", file=sys.stderr)
    # A streamed chunk is one token (llama-cpp-python yields per token).
    tokens = max_tokens if finish == "length" else pieces
    return first - start, (tokens - 1) / (last - first)


async def tidechat_round(url: str, token: str) -> tuple[float, float, int, str]:
    """(time to first token, tokens/s after it, completion tokens, finish) at a WS client."""
    async with websockets.connect(
        url.replace("http", "ws") + "/ws",
        additional_headers={"Authorization": f"Bearer {token}"},
        compression=None,
    ) as ws:
        await ws.recv()  # hello
        start = time.perf_counter()
        await ws.send(json.dumps({"type": "message", "content": PROMPT}))
        first = 0.0
        while True:
            raw = await ws.recv()
            # The client shares the cores with the model: it parses only the
            # frames it needs (a chunk is known by its type, after event_id).
            if '"type":"stream_chunk"' in raw[:80]:
                if not first:
                    first = time.perf_counter()
                continue
            frame = json.loads(raw)
            if frame["type"] == "stream_end":
                end = time.perf_counter()
                message = frame["message"]
                tokens = int(message["usage"]["completion_tokens"])
                return first - start, (tokens - 1) / (end - first), tokens, message["finish_reason"]
            elif frame["type"] == "error":
                raise RuntimeError(frame["message"])


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    args = parser.parse_args()

    from llama_cpp import Llama

    workdir = Path(tempfile.mkdtemp(prefix="tidechat-local-bench-"))
    model = bundled_model_path(workdir / "data", progress=True)
    models = workdir / "models.toml"
    models.write_text(
        "[[models]]\n"
        'id = "gemma"\nbackend = "llamacpp"\n'
        f'path = "{model}"\ncontext_window = 8192\nmax_tokens = {args.max_tokens}\n'
        f"temperature = {TEMPERATURE}\nrepeat_penalty = {REPEAT_PENALTY}\n"
        f"threads = {args.threads}\nauto_title = false\n"
        # The raw side's chat template, not the dialogue a base model gets by
        # default: both sides must write the same 128 tokens.
        'prompt_format = "chat"\n'
    )

    # The raw side: the same GGUF, context, threads and chat template as the worker.
    llm = Llama(
        model_path=str(model),
        n_ctx=8192,
        n_threads=args.threads,
        n_threads_batch=args.threads,
        verbose=False,
    )
    template = chat_template(llm)
    llm.chat_handler = chat_handler(template.formatter)
    messages = normalize_messages(
        [{"role": "user", "content": PROMPT}], fold_system=template.folds_system
    )

    redis = LocalRedis(workdir / "redis", persistence=False)
    redis.start()
    env = clean_env(
        REDIS_URL=redis.url,
        TIDECHAT_MODELS=str(models),
        TIDECHAT_LOG_LEVEL="warning",
        TIDECHAT_DATA_DIR=str(workdir / "data"),
    )
    port = free_port()
    procs = [
        spawn(["-m", "tidechat.cli", "gateway", "--port", str(port)], env, workdir / "gateway.log"),
        spawn(["-m", "tidechat.cli", "worker", "--concurrency", "1"], env, workdir / "worker.log"),
    ]
    url = f"http://127.0.0.1:{port}"
    raw: list[tuple[float, float]] = []
    through: list[tuple[float, float]] = []
    try:
        wait_http(url + "/ready", timeout=120)  # the worker loads the model first
        token = httpx.post(
            url + "/api/auth/signup", json={"username": "bench", "password": "benchmark pw"}
        ).json()["token"]
        asyncio.run(tidechat_round(url, token))  # warm both sides up once
        raw_round(llm, messages, args.max_tokens)
        for i in range(args.rounds):
            ttft, tps = raw_round(llm, messages, args.max_tokens)
            raw.append((ttft, tps))
            t_ttft, t_tps, tokens, finish = asyncio.run(tidechat_round(url, token))
            if tokens != args.max_tokens or finish != "length":
                print(
                    f"round {i}: the model stopped early ({tokens} tokens, {finish})",
                    file=sys.stderr,
                )
            through.append((t_ttft, t_tps))
            print(
                f"round {i + 1}/{args.rounds}: raw {tps:5.1f} tok/s, ttft {ttft * 1000:6.1f} ms | "
                f"tidechat {t_tps:5.1f} tok/s, ttft {t_ttft * 1000:6.1f} ms",
                file=sys.stderr,
                flush=True,
            )
    finally:
        stop(procs)
        redis.stop()

    raw_ttft = statistics.median(t for t, _ in raw) * 1000
    raw_tps = statistics.median(s for _, s in raw)
    tc_ttft = statistics.median(t for t, _ in through) * 1000
    tc_tps = statistics.median(s for _, s in through)
    print(
        f"Gemma 3 270M Q4_K_M, {args.max_tokens} tokens, {args.threads} threads, "
        f"{args.rounds} rounds (medians)"
    )
    print(f"{'':<10} {'tokens/s':>9} {'ttft':>9}")
    print(f"{'raw':<10} {raw_tps:>9.1f} {raw_ttft:>7.1f}ms")
    print(f"{'tidechat':<10} {tc_tps:>9.1f} {tc_ttft:>7.1f}ms")
    print(f"tokens/s ratio tidechat/raw: {tc_tps / raw_tps:.3f} (target >= 0.95)")
    print(f"added time to first token: {tc_ttft - raw_ttft:+.1f} ms (target <= 20 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
