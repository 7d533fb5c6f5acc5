"""Keeping secrets out of log lines.

tidechat's own messages never include a token, cookie, password or session
id; this filter is the belt to those braces, for lines other libraries
write. uvicorn logs every WebSocket as ``"WebSocket /ws?session=..."
[accepted]`` (and, if the access log is turned on, every request with its
query string), so query strings are cut from request paths, and anything
shaped like a bearer token, a session cookie or a ``session=`` /
``token=`` / ``password=`` parameter is masked wherever it appears. At
DEBUG, websockets dumps the frames it sends and receives: their content is
masked too.
"""

from __future__ import annotations

import logging
import re

_SECRETS = [
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1[redacted]"),
    (re.compile(r"(?i)(tc_session=)[^;,\s\"']+"), r"\1[redacted]"),
    (
        re.compile(r"(?i)([?&](?:session|token|access_token|password|cookie)=)[^&\s\"']*"),
        r"\1[redacted]",
    ),
    (re.compile(r"(?i)(tidechat\.session\.)[A-Za-z0-9_-]+"), r"\1[redacted]"),
    # websockets at DEBUG dumps frames (``> TEXT '{"type":"hello","session":...'``):
    # their text holds session ids and what people wrote; the size is enough.
    (re.compile(r"^([<>] (?:TEXT|BINARY)) .*?( \[\d+ bytes\])$", re.S), r"\1 [redacted]\2"),
]
#: A request target as uvicorn passes it: a path with a query string.
_PATH_WITH_QUERY = re.compile(r"^(/[^?\s]*)\?\S*$")


def redact(text: str) -> str:
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites each record's message before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and args:
            record.args = tuple(
                _PATH_WITH_QUERY.sub(r"\1", a) if isinstance(a, str) else a for a in args
            )
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, ()
        return True


def install(*logger_names: str) -> None:
    """Add the filter to every handler of the root logger and of the named
    loggers (uvicorn's have handlers of their own and do not propagate)."""
    redacting = RedactingFilter()
    for name in ("", *logger_names):
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(redacting)
