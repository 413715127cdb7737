"""What the command line accepts: venue names, feed requests, lists, dates, numbers.

Shared by the ``rxconnector`` commands (:mod:`rxconnector.cli`) and the ``publish``
command of :mod:`rxconnector.bus`, so the bus needs nothing from the CLI package. Every
check here is the one the connector applies (venue, feed, symbol spelling, kline
interval, depth), so a typo fails before anything connects, with a :class:`UsageError`
that lists what is valid.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Final

import attrs
from reactivex import Observable

from rxconnector.config import Config
from rxconnector.errors import ConfigError, NotSupportedError
from rxconnector.venues import cli_venues

__all__ = [
    "FEEDS",
    "VENUES",
    "FeedRequest",
    "UsageError",
    "check_feed",
    "make_config",
    "parse_feed",
    "parse_list",
    "parse_time",
    "port",
    "positive_float",
]

#: CLI venue name -> Config factory, from the venue registry. ``bybit`` is Bybit spot.
VENUES: Final[dict[str, Callable[..., Config]]] = cli_venues()

#: Feed name (a Connector method) -> its extra arguments: (name, type, required).
FEEDS: Final[dict[str, tuple[tuple[str, type, bool], ...]]] = {
    "ticker": (),
    "mini_ticker": (),
    "book_ticker": (),
    "trades": (),
    "agg_trades": (),
    "klines": (("interval", str, True),),
    "depth": (("levels", int, False),),
    "order_book": (("depth", int, False),),
    "diff_depth": (),
    "avg_price": (),
    "mark_price": (),
    "liquidations": (),
}


class UsageError(Exception):
    """A bad command-line argument: printed with the command's usage, exit status 2."""


@attrs.frozen
class FeedRequest:
    """A feed named on the command line: ``klines:1m`` is ``FeedRequest("klines", ("1m",))``."""

    name: str
    args: tuple[Any, ...] = ()

    @property
    def label(self) -> str:
        return ":".join([self.name, *(str(a) for a in self.args)])

    def open(self, connector: Any, symbol: str) -> Observable[Any]:
        """``connector.<name>(symbol, *args)``."""
        feed: Observable[Any] = getattr(connector, self.name)(symbol, *self.args)
        return feed


def parse_feed(text: str, extra: Sequence[str] = ()) -> FeedRequest:
    """``"klines:1m"`` (or ``"klines"`` + ``extra=["1m"]``) -> FeedRequest; UsageError if bad."""
    name, *inline = text.strip().split(":")
    name = name.strip().lower().replace("-", "_")
    if name not in FEEDS:
        raise UsageError(f"unknown feed {text!r}; choose from: {', '.join(FEEDS)}")
    raw = [*inline, *extra]
    spec = FEEDS[name]
    if len(raw) > len(spec):
        wanted = " ".join(f"[{n}]" for n, _t, _r in spec) or "no arguments"
        raise UsageError(f"feed {name!r} takes {wanted}, got {' '.join(raw)!r}")
    args: list[Any] = []
    for (arg_name, kind, required), value in zip(spec, [*raw, *[None] * len(spec)], strict=False):
        if value is None:
            if required:
                example = " e.g. klines:1m" if name == "klines" else ""
                raise UsageError(f"feed {name!r} needs its {arg_name}{example}")
            break
        if kind is int:
            try:
                args.append(int(value))
            except ValueError:
                raise UsageError(
                    f"{name} {arg_name} must be a whole number, got {value!r}"
                ) from None
        else:
            args.append(value)
    return FeedRequest(name, tuple(args))


def parse_list(text: str, what: str) -> tuple[str, ...]:
    """``"a,b , c"`` -> ``("a", "b", "c")``; empty items are an error."""
    items = tuple(part.strip() for part in text.split(","))
    if not items or any(not part for part in items):
        raise UsageError(f"{what} must be a comma-separated list without empty items, got {text!r}")
    return items


def make_config(
    venue: str, rest_url: str | None = None, ws_url: str | None = None, **extra: Any
) -> Config:
    """The Config of a CLI venue name with optional URL overrides (UsageError if invalid)."""
    factory = VENUES.get(venue.strip().lower())
    if factory is None:
        raise UsageError(f"unknown venue {venue!r}; choose from: {', '.join(VENUES)}")
    overrides = dict(extra)
    if rest_url:
        overrides["rest_url"] = rest_url
    if ws_url:
        overrides["ws_url"] = ws_url
    try:
        return factory(**overrides)
    except ConfigError as exc:
        raise UsageError(f"--{exc.field.replace('_', '-')}: {exc}") from None


def check_feed(config: Config, feed: FeedRequest, symbol: str) -> str:
    """Validate ``feed`` for ``symbol`` exactly as the connector would; returns the symbol
    normalized. Building a feed is lazy and offline, so this connects nowhere."""
    from rxconnector.connector import Connector

    connector = Connector(config)
    try:
        feed.open(connector, symbol)
    except NotSupportedError as exc:
        raise UsageError(f"{exc}; feeds of {config.exchange}: {_supported(connector)}") from None
    except (ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from None
    return symbol.strip().upper()


def _supported(connector: Any) -> str:
    names = set(connector.venue.supported_feeds)
    if "diff_depth" in names:
        names.add("order_book")
    return ", ".join(n for n in FEEDS if n in names)


def parse_time(text: str, option: str) -> int:
    """An ISO 8601 date or date-time (UTC unless it says otherwise) -> epoch ms."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"{option}: invalid date {text!r}; use ISO 8601 like 2024-01-31 or 2024-01-31T12:00"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be > 0, got {text!r}")
    return value


def port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0..65535, got {value}")
    return value
