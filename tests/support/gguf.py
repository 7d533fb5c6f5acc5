"""Writing small GGUF headers for tests, and patching a value in a real file."""

from __future__ import annotations

import struct
from pathlib import Path

_U32, _STRING, _ARRAY, _U64, _F32 = 4, 8, 9, 10, 6


def _string(text: str) -> bytes:
    data = text.encode("utf-8")
    return struct.pack("<Q", len(data)) + data


def _value(value: object) -> bytes:
    if isinstance(value, str):
        return struct.pack("<I", _STRING) + _string(value)
    if isinstance(value, bool):
        return struct.pack("<I?", 7, value)
    if isinstance(value, int):
        return struct.pack("<II", _U32, value)
    if isinstance(value, float):
        return struct.pack("<If", _F32, value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return struct.pack("<IIQ", _ARRAY, _STRING, len(value)) + b"".join(
            _string(v) for v in value
        )
    if isinstance(value, list):
        return struct.pack("<IIQ", _ARRAY, _U32, len(value)) + b"".join(
            struct.pack("<I", v) for v in value
        )
    raise TypeError(value)


def write_gguf(path: Path, metadata: dict[str, object], version: int = 3) -> Path:
    """A GGUF file with ``metadata`` and no tensors (enough for the header reader)."""
    body = b"".join(_string(k) + _value(v) for k, v in metadata.items())
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", version, 0, len(metadata)) + body)
    return path


def patch_u32(path: Path, key: str, value: int) -> None:
    """Set a uint32 metadata value of a real GGUF file in place."""
    data = bytearray(path.read_bytes()[: 64 * 1024 * 1024])
    needle = _string(key) + struct.pack("<I", _U32)
    at = data.find(needle)
    if at < 0:
        raise KeyError(key)
    at += len(needle)
    with path.open("r+b") as f:
        f.seek(at)
        f.write(struct.pack("<I", value))
