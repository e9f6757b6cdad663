"""Logging: one structured line per request, JSON or text, and nothing secret or personal in clear.

`configure_logging` sends every logger (the gateway's, uvicorn's, asyncpg's)
through one handler on stderr, formatted as JSON (one object per line, for
log shippers) or as readable text (for a terminal). The per-request line is
built from fields that are safe by construction (ids, codes, timings). Every
other line — messages and tracebacks of unexpected errors included, whose
text may quote a driver message with a query argument in it — is scrubbed on
its way out: API keys keep only their public prefix, bearer tokens and JWTs
are dropped, emails and phone-number-like digit runs are masked.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
import time
from typing import IO, Any

import orjson

from gateway.config import Settings

REQUEST_LOGGER = "gateway.request"
LOG_FORMATS = ("json", "text")


def log_format(settings: Settings) -> str:
    """As configured; else JSON in production, text in development (and `serve --demo`), where a person reads it."""
    return settings.log_format or ("text" if settings.development else "json")


def configure_logging(level: str, log_format: str, stream: IO[str] | None = None) -> logging.StreamHandler[Any]:
    """Route all logging through one handler on stream (stderr); returns the handler."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"the log format must be json or text, not {log_format!r}")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "loyalty_gateway", False)]:
        root.removeHandler(old)
    handler.loyalty_gateway = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    global _installed
    _installed = handler
    root.setLevel(level.upper())
    # uvicorn is run without a log config of its own: its loggers reach this handler through the root.
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    return handler


# --- masking --------------------------------------------------------------------------------------------------------


def mask_email(value: str) -> str:
    """`tom@example.com` -> `t***@e***.com`."""
    local, _, domain = value.strip().rpartition("@")
    name, dot, tld = domain.rpartition(".")
    if not local or not name:
        return "***"
    return f"{local[0]}***@{name[0]}***{dot}{tld}"


def mask_mobile(value: str) -> str:
    """`+44 7700 900123` -> `+44******123`: the country code and the last three digits."""
    digits = "".join(ch for ch in value if ch.isdigit())
    if len(digits) < 7:
        return "***"
    return f"{'+' if value.lstrip().startswith('+') else ''}{digits[:2]}******{digits[-3:]}"


def mask_identifier(type_: str, value: str) -> str:
    """An identifier value as it may appear in a log: masked whatever its type."""
    if type_ == "EMAIL":
        return mask_email(value)
    if type_ == "MOBILE":
        return mask_mobile(value)
    if len(value) <= 6:
        return "***"
    return f"{value[0]}***{value[-2:]}"


_API_KEY = re.compile(r"\blgw_([0-9a-f]{12})_[^\s\"',;]*")
_MALFORMED_KEY = re.compile(r"\blgw_(?![0-9a-f]{12}_\*\*\*)[^\s\"',;]+")
_BEARER = re.compile(r"(?i)\b(bearer\s+)[^\s\"',;]+")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
# Seven digits or more, possibly spaced or dashed: a phone number in any notation (or a long id; masked too).
_PHONE = re.compile(r"\+?(?<![\w.])\d(?:[\s\-()]*\d){6,}(?![\w.])")


def scrub(text: str) -> str:
    """text with API keys, tokens, emails and phone numbers masked."""
    if "lgw_" in text:
        text = _API_KEY.sub(r"lgw_\1_***", text)
        text = _MALFORMED_KEY.sub("lgw_***", text)
    text = _BEARER.sub(r"\1***", text)
    text = _JWT.sub("eyJ***", text)
    if "@" in text:
        text = _EMAIL.sub(lambda match: mask_email(match[0]), text)
    return _PHONE.sub(lambda match: mask_mobile(match[0]), text)


_GENERATED_ID = re.compile(r"[0-9a-f]{32}")


def safe_request_id(value: str) -> str:
    """A request id fit for the log: ours as is, a client's scrubbed (it could be anything printable)."""
    return value if _GENERATED_ID.fullmatch(value) else scrub(value)


# --- formatters -----------------------------------------------------------------------------------------------------


class _Clock:
    """ISO 8601 UTC timestamps with milliseconds; the seconds part is formatted once per second."""

    def __init__(self, separator: str) -> None:
        self._separator = separator
        self._second = -1
        self._prefix = ""

    def __call__(self, created: float) -> str:
        second = int(created)
        if second != self._second:
            self._prefix = time.strftime(f"%Y-%m-%d{self._separator}%H:%M:%S", time.gmtime(second))
            self._second = second
        return f"{self._prefix}.{int((created - second) * 1000):03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and the request's fields for request lines."""

    def __init__(self) -> None:
        super().__init__()
        self._clock = _Clock("T")

    def format_request(self, created: float, fields: dict[str, Any]) -> str:
        entry = {"time": self._clock(created), "level": "info", "logger": REQUEST_LOGGER, "message": "request"}
        entry.update(fields)
        return orjson.dumps(entry).decode()

    def format(self, record: logging.LogRecord) -> str:
        request = record.__dict__.get("request")
        if request is not None and record.name == REQUEST_LOGGER:
            return self.format_request(record.created, request)
        entry: dict[str, Any] = {
            "time": self._clock(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": scrub(record.getMessage()),
        }
        if record.exc_info:
            entry["exception"] = scrub(self.formatException(record.exc_info))
        elif record.exc_text:
            entry["exception"] = scrub(record.exc_text)
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    """`2025-01-01 12:00:00.123Z INFO gateway.request: 200 OK CustomerBalance org 100737 3.1 ms (db 1.2 ms) id …`."""

    def __init__(self) -> None:
        super().__init__()
        self._clock = _Clock(" ")

    def format_request(self, created: float, fields: dict[str, Any]) -> str:
        operation = fields["operation"]
        operation = "-" if operation is None else operation or "(anonymous)"
        return (
            f"{self._clock(created)} INFO {REQUEST_LOGGER}: {fields['status']} {fields['outcome']} {operation} "
            f"org {fields['org'] or '-'} {fields['duration_ms']:.1f} ms (db {fields['db_ms']:.1f} ms) "
            f"id {fields['request_id']}"
        )

    def format(self, record: logging.LogRecord) -> str:
        request = record.__dict__.get("request")
        if request is not None and record.name == REQUEST_LOGGER:
            return self.format_request(record.created, request)
        text = f"{self._clock(record.created)} {record.levelname} {record.name}: {scrub(record.getMessage())}"
        if record.exc_info:
            text += "\n" + scrub(self.formatException(record.exc_info))
        return text


# --- the request line's short path ----------------------------------------------------------------------------------


class RequestLog:
    """Writes the per-request line.

    Through `logging` it would cost about 9 µs (a LogRecord, the caller's
    frame looked up, the handler chain); when the only destination is the
    handler `configure_logging` installed, the line is formatted by that
    handler's formatter and kept until the event loop's current turn ends:
    then every line of that turn is written to the handler's stream in one
    write (under load, one system call for many requests instead of one
    each). Otherwise — other handlers added, pytest capturing, logging
    configured by someone else, no event loop — it goes through `logging`.
    """

    def __init__(self) -> None:
        self._logger = logging.getLogger(REQUEST_LOGGER)
        self._root = logging.getLogger()
        self._pending: list[str] = []

    def enabled(self) -> bool:
        return self._logger.isEnabledFor(logging.INFO)

    def write(self, fields: dict[str, Any]) -> None:
        handler = _installed
        if (
            handler is not None
            and len(self._root.handlers) == 1
            and self._root.handlers[0] is handler
            and not self._logger.handlers
        ):
            formatter: JsonFormatter | TextFormatter = handler.formatter  # type: ignore[assignment]
            line = formatter.format_request(time.time(), fields)
            if not self._pending:
                try:
                    asyncio.get_running_loop().call_soon(self._flush, handler)
                except RuntimeError:  # no event loop: written now
                    self._write(handler, line + "\n")
                    return
            self._pending.append(line)
        else:
            self._logger.info("request", extra={"request": fields})

    def _flush(self, handler: logging.StreamHandler[Any]) -> None:
        lines, self._pending = self._pending, []
        lines.append("")
        self._write(handler, "\n".join(lines))

    @staticmethod
    def _write(handler: logging.StreamHandler[Any], text: str) -> None:
        with handler.lock:  # type: ignore[union-attr]
            handler.stream.write(text)
            handler.stream.flush()


_installed: logging.StreamHandler[Any] | None = None
