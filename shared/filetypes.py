"""What an uploaded file is, decided from its bytes, never from its name.

The name only chooses the flavour of a text file (Markdown, CSV, code...),
which changes nothing but the label; whether a file is accepted, and how it
is read, depends on what its first bytes are. A ``.pdf`` holding a PNG is an
image; a ``.txt`` holding a PDF is a PDF; bytes that are none of the accepted
kinds are refused (415) whatever they are called.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from typing import Literal

FileKind = Literal["text", "pdf", "docx", "image"]

#: What users are told a refused file could have been.
ACCEPTED = (
    "text, Markdown, source code, CSV, JSON, HTML, PDF, DOCX, and PNG, JPEG, WebP or GIF images"
)

_TEXT_MIME = {
    "md": "text/markdown",
    "markdown": "text/markdown",
    "csv": "text/csv",
    "json": "application/json",
    "html": "text/html",
    "htm": "text/html",
}
#: How much of a file decides whether it is text: enough to see binary.
_TEXT_SNIFF_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class Sniffed:
    kind: FileKind
    mime: str


def _is_text(data: bytes) -> bool:
    head = data[:_TEXT_SNIFF_BYTES]
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the sniff boundary is still text.
        return exc.start >= len(head) - 3 and len(data) > len(head)
    return True


def _is_docx(data: bytes) -> bool:
    """A ZIP whose directory names ``word/document.xml``: reading the
    directory decompresses nothing (a zip bomb is met later, by the
    extraction's limits)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            return "word/document.xml" in z.namelist()
    except (zipfile.BadZipFile, ValueError, OSError):
        return False


def sniff(data: bytes, name: str = "") -> Sniffed | None:
    """The file's kind and MIME type, or None if it is not one tidechat reads."""
    if data.startswith(b"%PDF-"):
        return Sniffed("pdf", "application/pdf")
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return Sniffed("image", "image/png")
    if data.startswith(b"\xff\xd8\xff"):
        return Sniffed("image", "image/jpeg")
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return Sniffed("image", "image/gif")
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return Sniffed("image", "image/webp")
    if data.startswith(b"PK\x03\x04"):
        if _is_docx(data):
            return Sniffed(
                "docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
            )
        return None
    if data and _is_text(data):
        ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
        return Sniffed("text", _TEXT_MIME.get(ext, "text/plain"))
    return None
