"""A GGUF file's metadata, read without an inference library.

The gateway and ``tidechat up`` need a few facts about a local model (its
name, the context length it was trained for) but must not load
llama-cpp-python, so this reads the header directly: the magic, the version,
then ``key: typed value`` pairs. Scalars and strings are kept; arrays (the
tokenizer's vocabulary, hundreds of thousands of strings) are skipped.
Only little-endian GGUF versions 2 and 3 exist in practice; anything else is
a ``GGUFError``.
"""

from __future__ import annotations

import mmap
import re
import struct
from collections.abc import Mapping
from pathlib import Path

Value = str | int | float | bool

_MAGIC = b"GGUF"
_STRING = 8
_ARRAY = 9
#: Fixed-size value types: struct format by GGUF type id.
_SCALARS = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}


class GGUFError(Exception):
    """The file is not a GGUF this reader understands (or is cut short)."""


class _Reader:
    def __init__(self, buf: mmap.mmap) -> None:
        self.buf = buf
        self.pos = 0

    def scalar(self, fmt: str) -> int | float | bool:
        value: int | float | bool = struct.unpack_from(fmt, self.buf, self.pos)[0]
        self.pos += struct.calcsize(fmt)
        return value

    def string(self) -> str:
        length = int(self.scalar("<Q"))
        end = self.pos + length
        if end > len(self.buf):
            raise GGUFError("a string runs past the end of the file")
        text = self.buf[self.pos : end].decode("utf-8", errors="replace")
        self.pos = end
        return text

    def skip_string(self) -> None:
        self.pos += 8 + int(struct.unpack_from("<Q", self.buf, self.pos)[0])

    def value(self, kind: int) -> Value | None:
        """The value of type ``kind``; None for an array (skipped)."""
        if kind == _STRING:
            return self.string()
        if kind == _ARRAY:
            item = int(self.scalar("<I"))
            count = int(self.scalar("<Q"))
            if item == _STRING:
                for _ in range(count):
                    self.skip_string()
            elif item in _SCALARS:
                self.pos += count * struct.calcsize(_SCALARS[item])
            else:  # arrays of arrays: rare, and never needed here
                for _ in range(count):
                    self.value(item)
            return None
        fmt = _SCALARS.get(kind)
        if fmt is None:
            raise GGUFError(f"unknown value type {kind}")
        return self.scalar(fmt)


def read_metadata(path: Path) -> dict[str, Value]:
    """Every scalar and string of a GGUF file's header, by key."""
    try:
        with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            if buf[:4] != _MAGIC:
                raise GGUFError(f"{path} is not a GGUF file")
            r = _Reader(buf)
            r.pos = 4
            version = r.scalar("<I")
            if version not in (2, 3):
                raise GGUFError(f"{path}: GGUF version {version} is not supported")
            r.scalar("<Q")  # tensor count
            count = int(r.scalar("<Q"))
            metadata: dict[str, Value] = {}
            for _ in range(count):
                key = r.string()
                value = r.value(int(r.scalar("<I")))
                if value is not None:
                    metadata[key] = value
            return metadata
    except (struct.error, ValueError) as exc:  # cut short; mmap of an empty file
        raise GGUFError(f"{path} is not a complete GGUF file ({exc})") from exc


def context_length(metadata: dict[str, Value]) -> int | None:
    """The context length the model was trained for, if the file says."""
    arch = metadata.get("general.architecture")
    value = metadata.get(f"{arch}.context_length")
    return int(value) if isinstance(value, int) and value > 0 else None


#: Words in a model's name that mark it as tuned to follow instructions
#: ("Qwen2.5-0.5B-Instruct", "gemma-3-270m-it", "TinyLlama-1.1B-Chat").
_INSTRUCT_WORDS = frozenset({"instruct", "chat", "it", "sft", "dpo", "rlhf", "assistant"})


def looks_instruct(metadata: Mapping[str, object], file_name: str = "") -> bool:
    """Whether a GGUF holds an instruct (chat-tuned) model rather than a base one.

    A chat template in the file says so; failing that, the fine-tune and name
    fields, or the file name, naming an instruct tuning. A base model (the
    bundled Gemma 3 270M has neither) gets the dialogue prompt.
    """
    if str(metadata.get("tokenizer.chat_template") or "").strip():
        return True
    names = [
        str(metadata.get(key) or "")
        for key in ("general.finetune", "general.name", "general.basename")
    ]
    names.append(file_name.removesuffix(".gguf"))
    found = {w for name in names for w in re.split(r"[^a-z0-9]+", name.lower())}
    return bool(found & _INSTRUCT_WORDS)
