"""The web client's protocol types are generated from shared/: they must not go stale."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import get_args

import pytest

from shared import protocol

ROOT = Path(__file__).resolve().parents[2]
GENERATED = ROOT / "web" / "src" / "protocol.gen.ts"
JSON2TS = ROOT / "web" / "node_modules" / "json-schema-to-typescript"


def _literal_types(union: object) -> list[str]:
    """The ``type`` tags of every model in a tagged union."""
    models = union.__args__[0].__args__  # type: ignore[attr-defined]  # Annotated[Union[...], Field]
    return [m.model_fields["type"].annotation.__args__[0] for m in models]


def test_every_frame_type_is_in_the_generated_file() -> None:
    text = GENERATED.read_text(encoding="utf-8")
    for tag in _literal_types(protocol.ClientFrame) + _literal_types(protocol.ServerEvent):
        assert f'type: "{tag}";' in text, f"{tag} frame missing from {GENERATED.name}"


def _generated_list(text: str, name: str) -> list[str]:
    start = text.index(f"export const {name} = [")
    body = text[start : text.index("] as const", start)]
    return re.findall(r'"([a-z_]+)"', body)


def test_run_time_lists_match_the_models() -> None:
    """The lists the client uses as values (the reducer's server event types) are the models' tags."""
    text = GENERATED.read_text(encoding="utf-8")
    assert _generated_list(text, "SERVER_EVENT_TYPES") == _literal_types(protocol.ServerEvent)
    assert _generated_list(text, "CLIENT_FRAME_TYPES") == _literal_types(protocol.ClientFrame)
    assert _generated_list(text, "ERROR_CODES") == list(get_args(protocol.ErrorCode))


def _need_node() -> None:
    if shutil.which("node") is None or not JSON2TS.exists():
        if os.environ.get("CI"):
            pytest.fail("node and web/node_modules are needed: run `npm ci` in web/ first")
        pytest.skip("node or web/node_modules missing (run `npm ci` in web/)")


def test_generated_types_are_current() -> None:
    """`python scripts/gen_types.py --check` passes: the committed file matches the models."""
    _need_node()
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_types.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_check_mode_fails_on_a_stale_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _need_node()
    spec = importlib.util.spec_from_file_location("gen_types", ROOT / "scripts" / "gen_types.py")
    assert spec and spec.loader
    gen_types = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen_types)
    stale = tmp_path / "protocol.gen.ts"
    stale.write_text(GENERATED.read_text(encoding="utf-8").replace('"stream_restart"', '"gone"'))
    monkeypatch.setattr(gen_types, "OUTPUT", stale)
    monkeypatch.setattr(gen_types, "ROOT", tmp_path)
    assert gen_types.main(["--check"]) == 1
    assert "is stale" in capsys.readouterr().err
    assert gen_types.main([]) == 0
    assert gen_types.main(["--check"]) == 0
