"""The redacting log filter: secrets out, the rest of the line kept."""

from __future__ import annotations

import logging

import pytest

from shared.log_redact import RedactingFilter, redact


@pytest.mark.parametrize(
    ("line", "kept", "gone"),
    [
        ("< authorization: Bearer abcDEF123_-.~+/=", "authorization: Bearer", "abcDEF123"),
        ("< cookie: tc_session=s3cr3t; theme=dark", "theme=dark", "s3cr3t"),
        ('"GET /ws?session=tab-12345678&x=1" 101', "GET /ws?session=", "tab-12345678"),
        ("/api/thing?token=abc&q=cats", "q=cats", "abc&"),
        ("< sec-websocket-protocol: tidechat, tidechat.session.tab-9999", "tidechat,", "tab-9999"),
        ("""> TEXT '{"type":"hello","session":"tab-1"}' [40 bytes]""", "[40 bytes]", "tab-1"),
    ],
)
def test_secrets_are_masked(line: str, kept: str, gone: str) -> None:
    out = redact(line)
    assert kept in out and gone not in out and "[redacted]" in out


def test_uvicorn_paths_lose_their_query_string() -> None:
    record = logging.LogRecord(
        "uvicorn.error",
        logging.INFO,
        __file__,
        1,
        '%s - "WebSocket %s" [accepted]',
        ("127.0.0.1:5000", "/ws?session=tab-12345678"),
        None,
    )
    assert RedactingFilter().filter(record)
    assert record.getMessage() == '127.0.0.1:5000 - "WebSocket /ws" [accepted]'


def test_ordinary_lines_are_untouched() -> None:
    record = logging.LogRecord(
        "worker", logging.INFO, __file__, 1, "turn %s: reply not stored (%s)", ("t1", "gone"), None
    )
    RedactingFilter().filter(record)
    assert record.getMessage() == "turn t1: reply not stored (gone)"
