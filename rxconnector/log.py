"""Structured logging through structlog, delivered to the stdlib ``rxconnector`` logger.

A library must not print: events are rendered by structlog and handed to
``logging.getLogger("rxconnector")``, so the application decides level, format and
destination with ordinary ``logging`` configuration. Each stdlib ``LogRecord`` carries
the event twice, because handlers differ in what they read:

* its message is the ``key=value`` rendering (``event='rest.retry' attempt=2 ...``), so a
  plain ``logging.Formatter`` shows every field;
* every field is also a record attribute (``record.event``, ``record.exchange``,
  ``record.attempt`` ...), as ``logging``'s ``extra=`` would set it, so a JSON handler
  (structlog's ``ProcessorFormatter`` with ``ExtraAdder``, python-json-logger, a custom
  ``Formatter``) gets real fields instead of one flattened string. A field named like a
  built-in record attribute (``name``, ``module``, ``msg`` ...) is set as
  ``field_<name>`` (the record's own attribute is never overwritten).

Nothing here ever receives a secret on purpose (configs are logged through their
redacted ``repr``, and the hot path never logs per message); as a second line of
defence, fields named like secrets (``api_secret``, ``signature`` ...) and
:class:`~rxconnector.config.Secret` values are replaced by ``"***"`` before rendering.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any, Final

import structlog

__all__ = ["REDACTED", "get_logger", "redact_secrets"]

#: What a secret field's value is replaced by.
REDACTED: Final = "***"
#: Field names whose values are never logged (compared lower-case).
_SECRET_FIELDS: Final = frozenset(
    {"api_secret", "secret", "signature", "password", "passphrase", "private_key"}
)
#: Attributes every LogRecord has (plus the two formatters add): never overwritten.
_RECORD_ATTRIBUTES: Final = frozenset(
    vars(logging.LogRecord("", logging.INFO, "", 0, "", (), None))
) | {"message", "asctime"}

_render = structlog.processors.KeyValueRenderer(key_order=["event"], sort_keys=True)


def redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: values of secret-named fields and ``Secret`` objects → ``***``."""
    for key, value in event_dict.items():
        if key.lower() in _SECRET_FIELDS or type(value).__name__ == "Secret":
            event_dict[key] = REDACTED
    return event_dict


def _to_stdlib(
    logger: Any, method: str, event_dict: MutableMapping[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Last processor: the stdlib call's ``(args, kwargs)`` - the rendered message plus
    every field as a record attribute (``extra``)."""
    extra = {
        (f"field_{key}" if key in _RECORD_ATTRIBUTES else key): value
        for key, value in event_dict.items()
    }
    return (_render(logger, method, event_dict),), {"extra": extra}


_PROCESSORS: list[Any] = [
    structlog.stdlib.add_log_level,
    structlog.processors.format_exc_info,
    redact_secrets,
    _to_stdlib,
]


def get_logger(name: str = "rxconnector", **bound: Any) -> Any:
    """A structlog logger writing to stdlib logger ``name`` with ``bound`` on every event."""
    return structlog.wrap_logger(
        logging.getLogger(name),
        processors=_PROCESSORS,
        wrapper_class=structlog.stdlib.BoundLogger,
    ).bind(**bound)
