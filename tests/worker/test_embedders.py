"""The embedders: the bundled model ranks by meaning; remote ones are asked
the way their servers expect and their answers checked."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest

from worker.documents.embed import EmbedderError, HashEmbedder, LocalEmbedder, OpenAIEmbedder


async def test_the_local_model_ranks_a_paraphrase_above_unrelated_text() -> None:
    e = LocalEmbedder()
    docs = await e.embed(
        [
            "The invoice must be paid within thirty days of delivery.",
            "Penguins live in the southern hemisphere.",
            "Our office closes at six in the evening.",
        ]
    )
    q = await e.embed(["When is the bill due?"])
    assert docs.shape == (3, 384) and docs.dtype == np.float32
    assert np.allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-4)
    scores = (q @ docs.T)[0]
    assert int(np.argmax(scores)) == 0
    # The known similarity of this pair for all-MiniLM-L6-v2 (sentence-transformers: 0.755).
    pair = await e.embed(["A man is eating food.", "A man is eating a piece of bread."])
    assert float(pair[0] @ pair[1]) == pytest.approx(0.755, abs=0.01)


async def test_the_hash_embedder_is_deterministic_and_unit_length() -> None:
    e = HashEmbedder(64)
    a = await e.embed(["red bicycle in Oslo", "red bicycle in Oslo", ""])
    assert np.array_equal(a[0], a[1])
    assert np.linalg.norm(a[0]) == pytest.approx(1.0, abs=1e-5)
    assert np.linalg.norm(a[2]) == 0.0  # nothing to hash: no direction


async def test_an_openai_compatible_endpoint_is_asked_for_all_texts_at_once() -> None:
    seen: list[dict[str, object]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append({"body": body, "auth": request.headers.get("authorization")})
        data = [
            {"index": i, "embedding": [float(i + 1), 0.0, 0.0]} for i in range(len(body["input"]))
        ]
        return httpx.Response(200, json={"data": list(reversed(data))})

    e = OpenAIEmbedder("http://emb/v1", "bge", 3, "sk-x", transport=httpx.MockTransport(handler))
    out = await e.embed(["a", "b"])
    assert seen == [{"body": {"model": "bge", "input": ["a", "b"]}, "auth": "Bearer sk-x"}]
    assert out.shape == (2, 3) and np.allclose(out[:, 0], 1.0)


async def test_a_wrong_shape_or_status_is_an_embedder_error() -> None:
    def wrong(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"data": [{"index": 0, "embedding": [1.0, 2.0]}]})

    with pytest.raises(EmbedderError, match="shape"):
        await OpenAIEmbedder("http://e/v1", "m", 3, transport=httpx.MockTransport(wrong)).embed(
            ["a"]
        )

    def down(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, text="loading")

    with pytest.raises(EmbedderError, match="503"):
        await OpenAIEmbedder("http://e/v1", "m", 3, transport=httpx.MockTransport(down)).embed(
            ["a"]
        )


async def test_an_echoed_key_never_reaches_the_error() -> None:
    def echo(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, text=f"bad key {request.headers['authorization']}")

    with pytest.raises(EmbedderError) as caught:
        await OpenAIEmbedder(
            "http://e/v1", "m", 3, "sk-secret", transport=httpx.MockTransport(echo)
        ).embed(["a"])
    assert "sk-secret" not in str(caught.value) and "[token]" in str(caught.value)
