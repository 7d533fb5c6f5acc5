"""Reading a validated TOML configuration file (the models file, the tools
file): one error type per file, naming the file, its setting and what is
wrong, never a value from it (a header or URL may hold a secret)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def read_toml_file(
    file: Path, schema: type[M], what: str, setting: str, error: type[Exception]
) -> M:
    """``file`` parsed and validated as ``schema``; ``error`` (``what``: "models
    file", ``setting``: its environment variable) when it is missing, not
    TOML, or invalid (each problem by where and what, without the input)."""
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise error(f"{what} {file} does not exist ({setting})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{what} {file} is not valid TOML: {exc}") from exc
    try:
        return schema.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise error(f"{what} {file} is invalid: {problems}") from exc
