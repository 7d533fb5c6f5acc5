"""A file is what its bytes say, whatever its name."""

from __future__ import annotations

import pytest

from shared.filetypes import sniff
from tests.support.documents import make_docx, make_pdf

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.mark.parametrize(
    ("data", "name", "kind", "mime"),
    [
        (make_pdf([["hi"]]), "notes.txt", "pdf", "application/pdf"),
        (PNG, "report.pdf", "image", "image/png"),
        (make_docx(["x"]), "x.bin", "docx", None),
        (b"# Title\n\ntext", "readme.md", "text", "text/markdown"),
        (b"a,b\n1,2\n", "t.csv", "text", "text/csv"),
        (b"<html><p>x</p></html>", "page.html", "text", "text/html"),
        ("día".encode(), "", "text", "text/plain"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "a", "image", "image/webp"),
    ],
)
def test_the_bytes_decide_the_kind(data: bytes, name: str, kind: str, mime: str | None) -> None:
    got = sniff(data, name)
    assert got is not None and got.kind == kind
    if mime:
        assert got.mime == mime


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (b"\x7fELF\x02\x01\x01" + b"\x00" * 100, "innocent.pdf"),  # a program called a PDF
        (b"PK\x03\x04" + b"\x00" * 100, "doc.docx"),  # a zip that is not a DOCX
        (b"\xff\xfe\x00\x00binary", "a.txt"),
        (b"", "empty.txt"),
    ],
)
def test_bytes_that_are_no_accepted_kind_are_refused(data: bytes, name: str) -> None:
    assert sniff(data, name) is None
