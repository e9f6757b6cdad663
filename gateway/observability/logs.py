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
import codecs
import io
import logging
import os
import re
import sys
import time
from collections.abc import Callable
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


# The request line's fields after time, level, logger and message, in order (RequestLog.write's arguments).
REQUEST_FIELDS = ("request_id", "org", "operation", "outcome", "status", "cost", "duration_ms", "db_ms", "wait_ms")
# A formatter's request line for (created, *the fields' values): UTF-8 bytes, ending with a newline.
RequestLine = Callable[[float, str | None, int | None, str | None, str, int, int, float, float, float], bytes]

# The milliseconds part of a timestamp, ".000Z" to ".999Z", looked up instead of formatted (a fifth of the cost);
# 1000 too, which a float just under the next second could round up to.
_MILLISECONDS = tuple(f".{ms:03d}Z" for ms in range(1001))


class _Clock:
    """ISO 8601 UTC timestamps with milliseconds; the seconds part is formatted once per second."""

    def __init__(self, separator: str) -> None:
        self._separator = separator
        # The second formatted last: its start, the next one's (floats, compared without conversion) and its text,
        # replaced as one (a thread formatting another second never pairs one's start with the other's text).
        self._second = (-1.0, -1.0, "")

    def stamp(self, created: float) -> str:
        start, end, prefix = self._second
        if created >= end or created < start:
            start = float(int(created))
            prefix = time.strftime(f"%Y-%m-%d{self._separator}%H:%M:%S", time.gmtime(start))
            self._second = (start, start + 1.0, prefix)
        return prefix + _MILLISECONDS[int((created - start) * 1000.0)]


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and the request's fields for request lines."""

    def __init__(self) -> None:
        super().__init__()
        # A bound method: cheaper to call than an object's __call__.
        self._clock = _Clock("T").stamp

    def format_request(self, created: float, fields: dict[str, Any]) -> str:
        entry = {
            "time": self._clock(created),
            "level": "info",
            "logger": REQUEST_LOGGER,
            "message": "request",
            **fields,
        }
        return orjson.dumps(entry).decode()

    def request_lines(self) -> RequestLine:
        """A function giving format_request's line for a request's fields, as UTF-8 with its newline (the short
        path's). It refills a dict of its own rather than building one per line: for one caller at a time."""
        entry: dict[str, Any] = {"time": "", "level": "info", "logger": REQUEST_LOGGER, "message": "request"}
        entry.update(dict.fromkeys(REQUEST_FIELDS))
        clock = self._clock

        def line(
            created: float,
            request_id: str | None,
            org: int | None,
            operation: str | None,
            outcome: str,
            status: int,
            cost: int,
            duration_ms: float,
            db_ms: float,
            wait_ms: float,
        ) -> bytes:
            entry["time"] = clock(created)
            entry["request_id"] = request_id
            entry["org"] = org
            entry["operation"] = operation
            entry["outcome"] = outcome
            entry["status"] = status
            entry["cost"] = cost
            entry["duration_ms"] = duration_ms
            entry["db_ms"] = db_ms
            entry["wait_ms"] = wait_ms
            return orjson.dumps(entry, None, orjson.OPT_APPEND_NEWLINE)

        return line

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
        self._clock = _Clock(" ").stamp

    def format_request(self, created: float, fields: dict[str, Any]) -> str:
        return self.request_line(
            created, fields["request_id"], fields["org"], fields["operation"], fields["outcome"], fields["status"],
            fields.get("cost", 0), fields["duration_ms"], fields["db_ms"], fields.get("wait_ms", 0.0),
        ).decode()[:-1]  # fmt: skip

    def request_lines(self) -> RequestLine:
        """A function giving format_request's line for a request's fields, as UTF-8 with its newline."""
        return self.request_line

    def request_line(
        self,
        created: float,
        request_id: str | None,
        org: int | None,
        operation: str | None,
        outcome: str,
        status: int,
        cost: int,
        duration_ms: float,
        db_ms: float,
        wait_ms: float,
    ) -> bytes:
        """format_request's line for these fields, as UTF-8 with its newline (cost and wait are not shown)."""
        operation = "-" if operation is None else operation or "(anonymous)"
        return (
            f"{self._clock(created)} INFO {REQUEST_LOGGER}: {status} {outcome} {operation} "
            f"org {org or '-'} {duration_ms:.1f} ms (db {db_ms:.1f} ms) id {request_id}\n"
        ).encode()

    def format(self, record: logging.LogRecord) -> str:
        request = record.__dict__.get("request")
        if request is not None and record.name == REQUEST_LOGGER:
            return self.format_request(record.created, request)
        text = f"{self._clock(record.created)} {record.levelname} {record.name}: {scrub(record.getMessage())}"
        if record.exc_info:
            text += "\n" + scrub(self.formatException(record.exc_info))
        return text


# --- the request line's short path ----------------------------------------------------------------------------------


# How long a request line may wait to be written with others, and how many may wait.
LINES_WAIT = 0.05
MOST_LINES_KEPT = 500


class RequestLog:
    """Writes the per-request line.

    Through `logging` it would cost about 9 µs (a LogRecord, the caller's
    frame looked up, the handler chain); when the only destination is the
    handler `configure_logging` installed, the line is formatted by that
    handler's formatter and kept for at most LINES_WAIT seconds (or until
    MOST_LINES_KEPT are waiting): then the lines kept are written to the
    handler's stream in one write (under load, one system call for hundreds
    of requests instead of one each). `flush` writes them at once (the app
    calls it as it stops). Otherwise — other handlers added, pytest
    capturing, logging configured by someone else, no event loop — it goes
    through `logging`.
    Lines are kept as UTF-8 bytes: a UTF-8 text stream over a binary buffer
    (stderr, a file opened in text mode) is written through that buffer, any
    other stream as text.
    """

    def __init__(self) -> None:
        self._logger = logging.getLogger(REQUEST_LOGGER)
        self._root = logging.getLogger()
        # The lines kept, one after the other, and how many. Copied into one buffer: orjson's output kept alive
        # line by line made each dumps cost ten times as much (its buffer could no longer be reused).
        self._pending = bytearray()
        self._kept = 0
        # The event loop whose timer writes the pending lines (set whenever some are pending), and the handler.
        self._flushed_by: Any = None
        self._handler: logging.StreamHandler[Any] | None = None
        # The logger caches its answer per level (setLevel and logging.disable clear the cache, `disabled` is
        # checked first): its own method, called without a wrapper, is the cheapest check that stays right.
        self.is_enabled_for = self._logger.isEnabledFor
        # The formatter last used, and its function giving request lines (one of this log's own).
        self._formatter: JsonFormatter | TextFormatter | None = None
        self._line: Any = None  # a RequestLine once there is a formatter
        # The stream last written to, and its binary buffer (None: written as text).
        self._stream: Any = None
        self._binary: Any = None

    def write(
        self,
        request_id: str | None,
        org: int | None,
        operation: str | None,
        outcome: str,
        status: int,
        cost: int,
        duration_ms: float,
        db_ms: float,
        wait_ms: float,
    ) -> None:
        handler = _installed
        handlers = self._root.handlers
        if handler is not None and len(handlers) == 1 and handlers[0] is handler and not self._logger.handlers:
            formatter: JsonFormatter | TextFormatter = handler.formatter  # type: ignore[assignment]
            if formatter is not self._formatter:
                self._formatter, self._line = formatter, formatter.request_lines()
            line = self._line(
                time.time(), request_id, org, operation, outcome, status, cost, duration_ms, db_ms, wait_ms
            )
            self._pending += line
            kept = self._kept = self._kept + 1
            # Lines already kept wait for their loop's timer, unless that loop closed first (they would wait for
            # ever): then these lines go with this one.
            if kept == 1 or self._flushed_by.is_closed():
                try:
                    loop = asyncio.get_running_loop()
                except RuntimeError:  # no event loop: written now
                    self._flush(handler)
                else:
                    self._flushed_by, self._handler = loop, handler
                    loop.call_later(LINES_WAIT, self._flush, handler)
            elif kept >= MOST_LINES_KEPT:
                self._flush(handler)
        else:
            fields = {
                "request_id": request_id, "org": org, "operation": operation, "outcome": outcome,
                "status": status, "cost": cost, "duration_ms": duration_ms, "db_ms": db_ms, "wait_ms": wait_ms,
            }  # fmt: skip
            self._logger.info("request", extra={"request": fields})

    def flush(self) -> None:
        """Write the lines kept now."""
        if self._pending and self._handler is not None:
            self._flush(self._handler)

    def _flush(self, handler: logging.StreamHandler[Any]) -> None:
        data = self._pending
        if not data:  # written already (MOST_LINES_KEPT, or flush)
            return
        self._pending, self._kept = bytearray(), 0
        lock: Any = handler.lock
        lock.acquire()  # not `with`: twice the cost
        try:
            stream = handler.stream
            if stream is not self._stream:
                self._stream, self._binary = stream, _utf8_buffer(stream)
            binary = self._binary
            if binary is None:
                stream.write(data.decode())
                stream.flush()
            else:
                stream.flush()  # text someone else left in the stream's own buffer goes first
                binary.write(data)
                binary.flush()
        finally:
            lock.release()


def _utf8_buffer(stream: Any) -> io.BufferedIOBase | None:
    """The buffer under a UTF-8 text stream, which takes the lines' bytes as they are; else None (written as text)."""
    buffer = getattr(stream, "buffer", None)
    encoding = getattr(stream, "encoding", None)
    # Where text mode turns "\n" into os.linesep, the bytes would differ from the text.
    if not isinstance(buffer, io.BufferedIOBase) or not isinstance(encoding, str) or os.linesep != "\n":
        return None
    try:
        return buffer if codecs.lookup(encoding).name == "utf-8" else None
    except LookupError:
        return None


_installed: logging.StreamHandler[Any] | None = None
