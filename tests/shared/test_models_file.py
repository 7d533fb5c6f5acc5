from __future__ import annotations

from pathlib import Path

import pytest

from shared.keys import LOCAL_CONTEXT_CAP
from shared.models_file import (
    DEFAULT_LOCAL_MODEL_ID,
    HFModel,
    LlamaCppModel,
    ModelsFileError,
    ScriptedModel,
    UnknownModelError,
    load_models,
)
from shared.suggestions import LOCAL, Suggestion
from tests.support.gguf import write_gguf

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
        ("[[models]]\nid = 'x'\nbackend = 'llamacpp'\nprompt_format = 'poem'\n", "prompt_format"),
        ("[[models]]\nid = 'x'\nbackend = 'scripted'\nsuggestions = ['Hi']\n", "suggestions"),
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


def _gguf(path: Path, name: str = "Tiny Llama", context: int = 2048, **extra: object) -> Path:
    metadata: dict[str, object] = {
        "general.architecture": "llama",
        "general.name": name,
        "llama.context_length": context,
        **extra,
    }
    return write_gguf(path, metadata)


def test_prompt_format_and_suggestions_are_read(tmp_path: Path) -> None:
    path = tmp_path / "models.toml"
    path.write_text(
        "[[models]]\nid = 'base'\nbackend = 'llamacpp'\nprompt_format = 'dialogue'\n"
        "suggestions = [{ title = 'A fact', prompt = 'What is the capital of Peru?' }]\n"
        "[[models]]\nid = 'plain'\nbackend = 'llamacpp'\n"
    )
    base, plain = load_models(path).models
    assert isinstance(base, LlamaCppModel) and isinstance(plain, LlamaCppModel)
    assert base.prompt_format == "dialogue"
    assert base.suggestions == [Suggestion(title="A fact", prompt="What is the capital of Peru?")]
    assert plain.prompt_format is None, "decided from the GGUF"
    assert plain.suggestions is None, "the backend's defaults"


def test_a_gguf_file_becomes_the_local_model(tmp_path: Path) -> None:
    gguf = _gguf(tmp_path / "My Tiny-Llama.Q4_K_M.gguf")

    (model,) = load_models(None, model_path=gguf).models

    assert isinstance(model, LlamaCppModel)
    assert model.id == "my-tiny-llama.q4_k_m"
    assert model.label == "Tiny Llama (local)"
    assert model.path == str(gguf.resolve())
    assert model.context_window == 2048, "the context length of the file"
    assert model.pool == "local"
    assert not model.auto_title, "a base model answers instead of titling"
    with_token = load_models(None, hf_token_set=True, model_path=gguf)
    assert [m.backend for m in with_token.models] == ["llamacpp", "hf"]


def test_a_long_context_from_the_file_is_capped(tmp_path: Path) -> None:
    gguf = _gguf(tmp_path / "big-instruct.gguf", context=131072)
    (model,) = load_models(None, model_path=gguf).models
    assert model.context_window == LOCAL_CONTEXT_CAP
    assert model.auto_title, "an instruct model writes titles"


def test_a_missing_or_bogus_model_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ModelsFileError, match="nope.gguf does not exist"):
        load_models(None, model_path=tmp_path / "nope.gguf")
    bogus = tmp_path / "bogus.gguf"
    bogus.write_text("hello")
    with pytest.raises(ModelsFileError, match="not a GGUF model file"):
        load_models(None, model_path=bogus)


def test_a_model_file_and_a_models_file_together_are_refused(tmp_path: Path) -> None:
    models = tmp_path / "models.toml"
    models.write_text(EXAMPLE)
    with pytest.raises(ModelsFileError, match="both set"):
        load_models(models, model_path=_gguf(tmp_path / "m.gguf"))


def test_a_models_file_entry_without_a_context_window_takes_the_files(tmp_path: Path) -> None:
    gguf = _gguf(tmp_path / "m.gguf", context=4096)
    path = tmp_path / "models.toml"
    path.write_text(
        f"[[models]]\nid = 'a'\nbackend = 'llamacpp'\npath = '{gguf}'\n"
        f"[[models]]\nid = 'b'\nbackend = 'llamacpp'\npath = '{gguf}'\ncontext_window = 1024\n"
        "[[models]]\nid = 'c'\nbackend = 'llamacpp'\npath = '/elsewhere/m.gguf'\n"
    )
    a, b, c = load_models(path).models
    assert a.context_window == 4096
    assert b.context_window == 1024, "the models file's own value wins"
    assert c.context_window == 8192, "a file on another machine: the default"


def test_the_bundled_model_suggests_short_questions() -> None:
    from shared.suggestions import GENERAL, default_suggestions

    assert default_suggestions("llamacpp") == list(LOCAL)
    assert default_suggestions("hf") == list(GENERAL)
    assert all(len(s.prompt) < 40 for s in LOCAL)


def test_require_names_an_unknown_model_short_and_lists_the_offered(tmp_path: Path) -> None:
    path = tmp_path / "models.toml"
    path.write_text(EXAMPLE)
    catalog = load_models(str(path), hf_token_set=False)
    assert catalog.require("llama-3.1-8b").id == "llama-3.1-8b"
    with pytest.raises(UnknownModelError) as caught:
        catalog.require("x" * 10_000)
    message = caught.value.message
    assert len(message) < 200 and "gemma-3-270m, llama-3.1-8b" in message
