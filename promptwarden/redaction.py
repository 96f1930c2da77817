"""Keep the Discord token out of every log line, whatever library writes it.

A filter on a logger only sees records logged to that very logger, not those propagated
from children such as `discord.http`, so the filter goes on the root logger *and* on each
of its handlers: every record that reaches an output passes through it.
"""

from __future__ import annotations

import logging

REDACTED = "[REDACTED]"


class SecretRedactingFilter(logging.Filter):
    def __init__(self, *secrets: str) -> None:
        super().__init__()
        self._secrets = tuple(s for s in secrets if s)

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        # Tracebacks are folded into the message, redacted: some formatters (discord.py's
        # colour one) re-render `exc_info` themselves and would bypass a redacted exc_text.
        if record.exc_info:
            message = f"{message}\n{logging.Formatter().formatException(record.exc_info)}"
            record.exc_info = None
        elif record.exc_text:
            message = f"{message}\n{record.exc_text}"
        record.exc_text = None
        if record.stack_info:
            record.stack_info = self._redact(record.stack_info)
        record.msg, record.args = self._redact(message), None
        return True


def install_secret_redaction(*secrets: str) -> SecretRedactingFilter:
    """Attach one redacting filter to the root logger and every handler it has now."""
    root = logging.getLogger()
    redactor = SecretRedactingFilter(*secrets)
    root.addFilter(redactor)
    for handler in root.handlers:
        handler.addFilter(redactor)
    return redactor
