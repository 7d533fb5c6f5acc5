"""Reading a GGUF file's header without an inference library."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.gguf import GGUFError, context_length, looks_instruct, read_metadata
from tests.support.gguf import write_gguf

BASE = {
    "general.architecture": "llama",
    "general.name": "Tiny Llama",
    "llama.context_length": 2048,
    # The vocabulary: a large array of strings, skipped.
    "tokenizer.ggml.tokens": ["<s>", "</s>", *[f"tok{i}" for i in range(5000)]],
    "tokenizer.ggml.token_type": [1, 2, 3],
    "tokenizer.ggml.add_bos_token": True,
    "general.quantization_version": 2,
}


def test_scalars_and_strings_are_read_and_arrays_skipped(tmp_path: Path) -> None:
    metadata = read_metadata(write_gguf(tmp_path / "m.gguf", BASE))

    assert metadata["general.name"] == "Tiny Llama"
    assert metadata["llama.context_length"] == 2048
    assert metadata["tokenizer.ggml.add_bos_token"] is True
    assert metadata["general.quantization_version"] == 2, "keys after the arrays are read"
    assert "tokenizer.ggml.tokens" not in metadata
    assert context_length(metadata) == 2048


def test_the_context_length_is_the_architectures() -> None:
    assert context_length({"general.architecture": "gemma3", "gemma3.context_length": 32768}) == (
        32768
    )
    assert context_length({"general.architecture": "gemma3", "llama.context_length": 4096}) is None
    assert context_length({}) is None


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not a gguf file at all",
        b"GGUF\x03\x00\x00\x00\x00",
        b"GGUF\x09\x00\x00\x00" + b"\0" * 16,
    ],
)
def test_what_is_not_a_gguf_file_is_an_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.gguf"
    path.write_bytes(content)
    with pytest.raises(GGUFError):
        read_metadata(path)


def test_a_file_cut_short_is_an_error(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "m.gguf", BASE)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(GGUFError):
        read_metadata(path)


@pytest.mark.parametrize(
    ("metadata", "file_name", "instruct"),
    [
        # The bundled Gemma 3 270M: a base model, no template.
        (
            {"general.name": "Gemma 3 270m", "general.basename": "gemma-3"},
            "gemma-3-270m-q4_k_m.gguf",
            False,
        ),
        (
            {"general.name": "Gemma 3 270m", "tokenizer.chat_template": "{{ messages }}"},
            "x.gguf",
            True,
        ),
        ({"general.name": "Qwen2.5 0.5B Instruct"}, "model.gguf", True),
        ({"general.name": "Gemma 3 270m", "general.finetune": "it"}, "model.gguf", True),
        ({}, "TinyLlama-1.1B-Chat-v1.0.Q4_K_M.gguf", True),
        ({}, "gemma-3-270m-it-Q4_K_M.gguf", True),
        ({"general.name": "Mistral 7B v0.1"}, "mistral-7b-v0.1.Q4_K_M.gguf", False),
        ({"general.name": "Llama 3.2 1B", "tokenizer.chat_template": "  "}, "llama.gguf", False),
        # "it" must be a word of its own, not part of one.
        ({"general.name": "Reddit Digits"}, "digit-model.gguf", False),
    ],
)
def test_instruct_models_are_told_from_base_models(
    metadata: dict[str, object], file_name: str, instruct: bool
) -> None:
    assert looks_instruct(metadata, file_name) is instruct
