"""Keep the Discord token out of every log line, whatever library writes it.

A filter on a logger only sees records logged to that very logger, not those propagated
from children such as `discord.http`, so the filter goes on the root logger *and* on each
of its handlers: every record that reaches an output passes through it.

The filter never raises: it runs inside the caller's `log.info(...)`, so an exception
here would turn a harmless logging mistake (arguments that do not match the format, an
object whose `str()` fails) into a crash at the call site. Such a record is still logged,
with its raw format and arguments, redacted like any other.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

REDACTED = "[REDACTED]"
UNPRINTABLE = "<unprintable log record>"


def _safe_str(value: object) -> str:
    try:
        return str(value)
    except Exception:
        try:
            return repr(value)
        except Exception:
            return f"<{type(value).__name__} that cannot be printed>"


class SecretRedactingFilter(logging.Filter):
    def __init__(self, *secrets: str) -> None:
        super().__init__()
        self._secrets = tuple(s for s in secrets if s)

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            self._fold(record)
        except Exception:  # a last resort: nothing of the record is trusted any more
            record.msg, record.args = UNPRINTABLE, None
            record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True

    def _fold(self, record: logging.LogRecord) -> None:
        message = _message(record)
        # Tracebacks are folded into the message, redacted: some formatters (discord.py's
        # colour one) re-render `exc_info` themselves and would bypass a redacted exc_text.
        if record.exc_info:
            try:
                trace = logging.Formatter().formatException(record.exc_info)
            except Exception:
                trace = f"(the traceback could not be formatted: {_safe_str(record.exc_info)})"
            message = f"{message}\n{trace}"
            record.exc_info = None
        elif record.exc_text:
            message = f"{message}\n{_safe_str(record.exc_text)}"
        record.exc_text = None
        if record.stack_info:
            record.stack_info = self._redact(_safe_str(record.stack_info))
        record.msg, record.args = self._redact(message), None


def _message(record: logging.LogRecord) -> str:
    """The record's message as logging would render it, or, when its arguments do not
    fit its format, the format and the arguments side by side."""
    try:
        return record.getMessage()
    except Exception as error:
        # str(), not repr(): repr escapes characters, and an escaped secret is not found.
        args = record.args
        if isinstance(args, Mapping):
            arguments = ", ".join(f"{_safe_str(k)}={_safe_str(v)}" for k, v in args.items())
        elif isinstance(args, tuple):
            arguments = ", ".join(_safe_str(a) for a in args)
        else:
            arguments = _safe_str(args)
        return (
            f"{_safe_str(record.msg)} [log arguments do not match the format "
            f"({type(error).__name__}): {arguments}]"
        )


def install_secret_redaction(*secrets: str) -> SecretRedactingFilter:
    """Attach one redacting filter to the root logger and every handler it has now."""
    root = logging.getLogger()
    redactor = SecretRedactingFilter(*secrets)
    root.addFilter(redactor)
    for handler in root.handlers:
        handler.addFilter(redactor)
    return redactor
