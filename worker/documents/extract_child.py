"""Reading one file's text, in a child process of its own.

    python -m worker.documents.extract_child KIND MAX_PAGES MAX_CHARS < file

Run by ``extract.py`` under memory and CPU limits (``setrlimit``) and a wall
clock timeout, because the parsers meet hostile input: a DOCX that inflates
to gigabytes, a PDF with 10,000 pages or a loop in its object graph. Whatever
happens here, the worker survives: the worst case is this process killed.

Prints one JSON object: ``{"pages": [...], "truncated": bool}`` or
``{"error": "why, in words for the user"}``.
"""

from __future__ import annotations

import io
import json
import sys
import zipfile
from html.parser import HTMLParser

#: A DOCX whose parts would unpack past this is refused before parsing (the
#: central directory's sizes; a lying directory is caught by zipfile, which
#: stops at the declared size, and by the memory limit).
DOCX_MAX_UNPACKED = 200 * 1024 * 1024
DOCX_MAX_RATIO = 200


class Refused(Exception):
    pass


class _Text(HTMLParser):
    SKIP = frozenset({"script", "style", "head", "template"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag in self.SKIP:
            self._skip += 1
        elif tag in ("p", "br", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6"):
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def _text(data: bytes, html: bool) -> list[str]:
    text = data.decode("utf-8", errors="replace")
    if html:
        parser = _Text()
        parser.feed(text)
        text = "".join(parser.parts)
    return [text]


def _pdf(data: bytes, max_pages: int) -> list[str]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            # Many PDFs are "encrypted" with an empty password (print or copy
            # restrictions only): those read fine.
            try:
                ok = reader.decrypt("")
            except Exception as exc:  # pypdf raises several kinds here
                raise Refused("the PDF is encrypted and needs a password") from exc
            if not ok:
                raise Refused("the PDF is encrypted and needs a password")
        count = len(reader.pages)
    except PdfReadError as exc:
        raise Refused(f"the PDF could not be read ({exc})") from exc
    if count > max_pages:
        raise Refused(f"the PDF has {count:,} pages; the limit is {max_pages:,}")
    return [page.extract_text() or "" for page in reader.pages]


def _docx(data: bytes) -> list[str]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            infos = z.infolist()
    except zipfile.BadZipFile as exc:
        raise Refused("the DOCX is not a valid ZIP archive") from exc
    unpacked = sum(i.file_size for i in infos)
    packed = max(sum(i.compress_size for i in infos), 1)
    if unpacked > DOCX_MAX_UNPACKED or unpacked / packed > DOCX_MAX_RATIO:
        raise Refused(
            f"the DOCX would unpack to {unpacked / 1e6:,.0f} MB from {packed / 1e6:,.1f} MB "
            "(a decompression bomb?)"
        )
    import docx

    document = docx.Document(io.BytesIO(data))
    parts = [p.text for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            parts.append(" | ".join(cell.text for cell in row.cells))
    return ["\n".join(parts)]


def extract(kind: str, mime: str, data: bytes, max_pages: int) -> list[str]:
    if kind == "pdf":
        return _pdf(data, max_pages)
    if kind == "docx":
        return _docx(data)
    if kind == "text":
        return _text(data, html=mime == "text/html")
    raise Refused(f"files of kind {kind!r} have no text to read")


def main() -> None:
    kind, mime, max_pages, max_chars = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    data = sys.stdin.buffer.read()
    try:
        pages = extract(kind, mime, data, max_pages)
    except Refused as exc:
        print(json.dumps({"error": str(exc)}))
        return
    except MemoryError:
        print(json.dumps({"error": "reading the file needed more memory than allowed"}))
        return
    except Exception as exc:  # a parser's own failure on a malformed file
        print(json.dumps({"error": f"the file could not be read ({type(exc).__name__})"}))
        return
    out: list[str] = []
    total = 0
    truncated = False
    for page in pages:
        if total + len(page) > max_chars:
            out.append(page[: max(max_chars - total, 0)])
            truncated = True
            break
        out.append(page)
        total += len(page)
    print(json.dumps({"pages": out, "truncated": truncated}))


if __name__ == "__main__":
    main()
