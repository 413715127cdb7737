"""Structured logging through structlog, delivered to the stdlib ``rxconnector`` logger.

A library must not print: events are rendered by structlog (key=value, with the bound
context such as the exchange) and handed to ``logging.getLogger("rxconnector")``, so the
application decides level and destination with ordinary ``logging`` configuration.
Nothing here ever receives a secret: configs are logged through their redacted ``repr``,
and the hot path never logs per message.
"""

from __future__ import annotations

import logging
from typing import Any

import structlog

__all__ = ["get_logger"]

_PROCESSORS: list[Any] = [
    structlog.stdlib.add_log_level,
    structlog.processors.format_exc_info,
    structlog.processors.KeyValueRenderer(key_order=["event"], sort_keys=True),
]


def get_logger(name: str = "rxconnector", **bound: Any) -> Any:
    """A structlog logger writing to stdlib logger ``name`` with ``bound`` on every event."""
    return structlog.wrap_logger(
        logging.getLogger(name),
        processors=_PROCESSORS,
        wrapper_class=structlog.stdlib.BoundLogger,
    ).bind(**bound)
