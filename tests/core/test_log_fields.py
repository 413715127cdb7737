"""Library log records carry their fields: a user's JSON or stdlib handler gets the
event's key/values as record attributes (not only flattened into the message), with
secrets redacted."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from rxconnector.config import Secret
from rxconnector.log import get_logger


class Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def kept() -> Iterator[Keep]:
    handler = Keep()
    logger = logging.getLogger("rxconnector.test_fields")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def test_fields_are_record_attributes(kept: Keep) -> None:
    log = get_logger("rxconnector.test_fields", exchange="binance", component="rest")
    log.warning("rest.retry", attempt=2, delay=0.5, path="/api/v3/depth")
    (record,) = kept.records
    assert record.levelno == logging.WARNING
    assert (record.exchange, record.component) == ("binance", "rest")  # type: ignore[attr-defined]
    assert (record.attempt, record.delay, record.path) == (2, 0.5, "/api/v3/depth")  # type: ignore[attr-defined]
    assert record.event == "rest.retry"  # type: ignore[attr-defined]
    assert record.level == "warning"  # type: ignore[attr-defined]
    # the message still reads well on a plain handler
    assert record.getMessage().startswith("event='rest.retry'")
    assert "attempt=2" in record.getMessage()


def test_a_field_named_like_a_record_attribute_does_not_break_logging(kept: Keep) -> None:
    log = get_logger("rxconnector.test_fields")
    log.info("odd names", name="mine", module="m", msg="x", message="y", args=(1,))
    (record,) = kept.records
    assert record.name == "rxconnector.test_fields"  # the record's own attribute wins
    assert record.field_name == "mine"  # type: ignore[attr-defined]
    assert record.field_module == "m"  # type: ignore[attr-defined]


def test_secrets_are_redacted_in_fields_and_message(kept: Keep) -> None:
    log = get_logger("rxconnector.test_fields")
    log.info("signed", api_secret="TOPSECRET", signature="abc123", key=Secret("TOPSECRET"))
    (record,) = kept.records
    text = record.getMessage() + repr(vars(record))
    assert "TOPSECRET" not in text and "abc123" not in text
    assert record.api_secret == "***"  # type: ignore[attr-defined]
    assert record.signature == "***"  # type: ignore[attr-defined]


def test_json_logs_with_structlogs_processor_formatter() -> None:
    """The README's recipe: stdlib handler + structlog's ProcessorFormatter → JSON lines."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.JSONRenderer(),
            ],
            foreign_pre_chain=[structlog.stdlib.ExtraAdder()],
        )
    )
    logger = logging.getLogger("rxconnector.test_json")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        get_logger("rxconnector.test_json", exchange="bybit").info("connector started", n=3)
    finally:
        logger.removeHandler(handler)
    line = json.loads(out.getvalue())
    assert (line["exchange"], line["n"], line["level"]) == ("bybit", 3, "info")
