"""Logging set-up for the command line: readable lines for people, JSON lines for collectors.

Library modules only call ``logging.getLogger(__name__)``; this module decides where the
lines go. Nothing logged anywhere in the project carries a secret: messages name ZVMs by
their configured name and URLs without credentials.
"""

from __future__ import annotations

import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

__all__ = [
    "HTTP_LOGGERS",
    "JsonFormatter",
    "RedactHttpSecrets",
    "configure_logging",
    "redact",
    "redact_http_logs",
]

HTTP_LOGGERS = (
    "httpx",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
    "hpack.hpack",
)
"""The loggers of the HTTP stack, whose DEBUG lines show raw headers (httpcore logs every
response's, ``x-zerto-session`` included): :class:`RedactHttpSecrets` filters each."""

SECRET_HEADERS = ("authorization", "proxy-authorization", "x-zerto-session", "cookie", "set-cookie")
_NAMES = "|".join(re.escape(name) for name in SECRET_HEADERS)
_HEADER_PAIR = re.compile(
    # ('x-zerto-session', 'value') or (b'Authorization', b'value'), as httpcore writes them
    rf"""(\(\s*b?(['"])(?:{_NAMES})\2\s*,\s*)b?(['"])(?:\\.|(?!\3).)*\3""",
    re.IGNORECASE,
)
_CREDENTIALS = re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{6,}", re.IGNORECASE)
REDACTED = "[redacted]"


def redact(text: str) -> str:
    """``text`` with the values of secret headers and ``Bearer``/``Basic`` credentials
    replaced by ``[redacted]``."""
    text = _HEADER_PAIR.sub(lambda m: f"{m.group(1)}'{REDACTED}'", text)
    return _CREDENTIALS.sub(lambda m: f"{m.group(1)} {REDACTED}", text)


class RedactHttpSecrets(logging.Filter):
    """Rewrites a record whose message holds a session id, a token or a password (see
    :func:`redact`); the record is kept, only the secret goes."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


_REDACT = RedactHttpSecrets()


def redact_http_logs() -> None:
    """Put the redacting filter on every logger of :data:`HTTP_LOGGERS` (once): whatever
    handlers an application installs, and at any level, their lines carry no secret."""
    for name in HTTP_LOGGERS:
        logger = logging.getLogger(name)
        if _REDACT not in logger.filters:
            logger.addFilter(_REDACT)


_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, plus any ``extra={...}`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure_logging(
    *, level: str = "INFO", fmt: Literal["text", "json"] = "text", stream: Any = None
) -> None:
    """Send the project's log lines to stderr (or ``stream``) in the chosen format."""
    handler = logging.StreamHandler(stream or sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(message)s", datefmt="%H:%M:%S")
        )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    redact_http_logs()
    # httpx logs every request at INFO; ours are enough.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    # Alembic narrates every schema check; `zvm-etl db` commands say what happened instead.
    logging.getLogger("alembic").setLevel(logging.WARNING)
