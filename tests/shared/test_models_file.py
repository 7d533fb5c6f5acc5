from __future__ import annotations

from pathlib import Path

import pytest

from shared.models_file import (
    DEFAULT_LOCAL_MODEL_ID,
    HFModel,
    ModelsFileError,
    ScriptedModel,
    load_models,
)

EXAMPLE = """
[[models]]
id = "gemma-3-270m"
label = "Gemma 3 270M (local)"
backend = "llamacpp"
context_window = 8192
pool = "local"

[[models]]
id = "llama-3.1-8b"
backend = "hf"
model = "meta-llama/Llama-3.1-8B-Instruct"
context_window = 131072

[[models]]
id = "scripted"
backend = "scripted"
reply_tokens = 64
tokens_per_second = 0
"""


def test_the_design_example_loads(tmp_path: Path) -> None:
    path = tmp_path / "models.toml"
    path.write_text(EXAMPLE)
    catalog = load_models(path)
    assert [m.id for m in catalog.models] == ["gemma-3-270m", "llama-3.1-8b", "scripted"]
    assert catalog.default.id == "gemma-3-270m"
    assert catalog.pools() == ["default", "local"]
    assert isinstance(catalog.get("llama-3.1-8b"), HFModel)
    assert isinstance(catalog.get("scripted"), ScriptedModel)
    assert catalog.get("missing") is None


def test_without_a_file_the_local_model_is_the_default() -> None:
    assert [m.id for m in load_models(None).models] == [DEFAULT_LOCAL_MODEL_ID]
    with_token = load_models(None, hf_token_set=True)
    assert [m.backend for m in with_token.models] == ["llamacpp", "hf"]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[[models]]\nid = 'x'\nbackend = 'hf'\n", "needs `model`"),
        ("[[models]]\nid = 'x'\nbackend = 'magic'\n", "models.0"),
        (
            "[[models]]\nid = 'x'\nbackend = 'scripted'\n[[models]]\nid = 'x'\nbackend = 'scripted'\n",
            "twice",
        ),
        ("models = [", "not valid TOML"),
        ("[[models]]\nid = 'x'\nbackend = 'scripted'\ncolour = 'red'\n", "colour"),
    ],
)
def test_bad_files_say_what_is_wrong(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "models.toml"
    path.write_text(text)
    with pytest.raises(ModelsFileError, match=needle):
        load_models(path)


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(ModelsFileError, match="does not exist"):
        load_models(tmp_path / "nope.toml")
