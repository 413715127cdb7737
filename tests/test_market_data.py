"""One declaration of the feed surface (``rxconnector.market_data``), satisfied by every
connector: checked statically by mypy and here, at run time, signature by signature, so
a feed added to or changed in one connector but not the others fails loudly."""

from __future__ import annotations

import inspect
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from rxconnector.bus.remote import RemoteConnector
from rxconnector.connector import Connector
from rxconnector.market_data import (
    FEED_METHODS,
    TRADING_METHODS,
    AccountFeeds,
    ConnectorFeeds,
    MarketData,
    Trading,
    feed_methods,
)
from rxconnector.replay import ReplayConnector
from rxconnector.sync import SyncConnector
from rxconnector.testing import FEEDS, FakeConnector

_HEALTH = ("errors", "connection_state")

#: protocol -> the classes that must satisfy it
_SATISFIERS: list[tuple[type, type]] = [
    (protocol, cls)
    for protocol, classes in (
        (MarketData, (Connector, FakeConnector, ReplayConnector, RemoteConnector)),
        (ConnectorFeeds, (Connector, FakeConnector, ReplayConnector)),
    )
    for cls in classes
]


def _declared_methods(protocol: type) -> list[str]:
    """The feed methods ``protocol`` declares, its own and inherited ones."""
    declarations = (MarketData, AccountFeeds, ConnectorFeeds)
    return [
        name for base in protocol.__mro__ if base in declarations for name in feed_methods(base)
    ]


def _shape(function: Any) -> list[tuple[str, Any, Any, Any]]:
    """Parameters (name, kind, default, annotation) and the return annotation."""
    signature = inspect.signature(function, eval_str=False)
    params = [(p.name, p.kind, p.default, p.annotation) for p in signature.parameters.values()]
    return [*params, ("return", None, None, signature.return_annotation)]


@pytest.mark.parametrize(("protocol", "cls"), _SATISFIERS, ids=lambda x: x.__name__)
def test_every_declared_feed_has_the_declared_signature(protocol: type, cls: type) -> None:
    for name in _declared_methods(protocol):
        method = getattr(cls, name, None)
        assert method is not None, f"{cls.__name__} has no {name}"
        assert _shape(method) == _shape(getattr(protocol, name)), f"{cls.__name__}.{name}"


@pytest.mark.parametrize(
    "cls", [Connector, FakeConnector, ReplayConnector], ids=lambda x: x.__name__
)
def test_every_declared_rest_call_has_the_declared_signature(cls: type) -> None:
    """The REST/trading half of the surface (``Trading``): same names, parameters,
    defaults and annotations on every connector that trades."""
    for name in feed_methods(Trading):
        method = getattr(cls, name, None)
        assert method is not None, f"{cls.__name__} has no {name}"
        assert _shape(method) == _shape(getattr(Trading, name)), f"{cls.__name__}.{name}"


def test_the_rest_call_list_is_derived_from_the_declaration() -> None:
    from rxconnector.testing import REST_METHODS

    assert REST_METHODS == TRADING_METHODS == tuple(feed_methods(Trading))
    assert "place_order" in TRADING_METHODS and "open_positions" in TRADING_METHODS


@pytest.mark.parametrize(("protocol", "cls"), _SATISFIERS, ids=lambda x: x.__name__)
def test_health_streams_are_declared_properties(protocol: type, cls: type) -> None:
    for name in _HEALTH:
        member = inspect.getattr_static(cls, name)
        assert isinstance(member, property), f"{cls.__name__}.{name}"
        declared = inspect.getattr_static(protocol, name)
        assert _shape(member.fget) == _shape(declared.fget), f"{cls.__name__}.{name}"


def test_the_feed_lists_are_derived_from_the_declaration() -> None:
    assert FEEDS == FEED_METHODS
    assert set(FEED_METHODS) == set(_declared_methods(ConnectorFeeds))
    assert FEED_METHODS[:11] == tuple(feed_methods(MarketData))
    for name in FEED_METHODS:  # SyncConnector wraps each one, with the Connector's doc
        wrapper = inspect.getattr_static(SyncConnector, name)
        assert type(wrapper).__name__ == "_Feed", name
        assert wrapper.__doc__ == getattr(Connector, name).__doc__, name


def test_a_protocol_method_called_directly_says_what_it_is() -> None:
    with pytest.raises(TypeError, match="ticker is declared by a protocol"):
        MarketData.ticker(FakeConnector(), "BTCUSDT")  # type: ignore[arg-type]


def test_the_signature_check_catches_a_drift() -> None:
    """The comparison above is not vacuous: a parameter renamed, a default changed or
    a model swapped is a different shape."""

    class Drifted:
        def depth(self, symbol: str, levels: int = 10) -> Any: ...

    assert _shape(Drifted.depth) != _shape(MarketData.depth)


_MYPY_PROBE = """
from typing import Any
from reactivex import Observable
from rxconnector.market_data import ConnectorFeeds, MarketData
from rxconnector.connector import Connector
from rxconnector.testing import FakeConnector
from rxconnector.replay import ReplayConnector
from rxconnector.bus.remote import RemoteConnector
from rxconnector.sync import SyncConnector
from rxconnector.models import Ticker

def local(conn: ConnectorFeeds) -> None: ...
def market(conn: MarketData) -> None: ...

def check(c: Connector, f: FakeConnector, r: ReplayConnector, rc: RemoteConnector) -> None:
    local(c); local(f); local(r); market(rc)

def sync_types(s: SyncConnector) -> Observable[Ticker]:
    return s.ticker("BTCUSDT")

class Drifted:  # a klines without interval: must NOT satisfy MarketData
    def __getattr__(self, name: str) -> Any: ...
    def klines(self, symbol: str) -> Observable[Any]:
        raise NotImplementedError

market(Drifted())  # the one expected error
"""


@pytest.mark.slow
def test_mypy_checks_the_connectors_against_the_protocols(tmp_path: Path) -> None:
    """mypy --strict accepts every connector where its protocol is expected, types the
    SyncConnector's derived feeds, and rejects a class whose feed differs."""
    probe = tmp_path / "probe.py"
    source = textwrap.dedent(_MYPY_PROBE)
    probe.write_text(source)
    drifted_line = source.splitlines().index("market(Drifted())  # the one expected error") + 1
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", str(probe)],
        capture_output=True,
        text=True,
        cwd=root,
        check=False,
    )
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 1, result.stdout + result.stderr
    assert f"probe.py:{drifted_line}:" in errors[0] and '"MarketData"' in errors[0], errors[0]
