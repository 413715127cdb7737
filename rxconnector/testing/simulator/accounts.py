"""API keys and the balances behind them.

Minimal on purpose: the signed endpoints only need to know a key's secret and report
its balances. A matching engine added later will keep orders here and move balances;
REST handlers already go through :class:`Accounts`, so they will not change shape.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal

import attrs

from rxconnector.testing.simulator.config import SymbolSpec

__all__ = ["Account", "Accounts"]


@attrs.define
class Account:
    """One API key's account: its secret and ``asset -> (free, locked)``."""

    api_key: str
    secret: str = attrs.field(repr=False)
    balances: dict[str, tuple[Decimal, Decimal]] = attrs.field(factory=dict)
    uid: int = 0
    update_time: int = 0


class Accounts:
    """All accounts of a simulator, keyed by API key."""

    def __init__(self, keys: Mapping[str, str], specs: Iterable[SymbolSpec]) -> None:
        assets: dict[str, Decimal] = {}
        for spec in specs:
            assets.setdefault(spec.base_asset, Decimal(1))
            assets[spec.quote_asset] = Decimal(10_000)
        self._accounts = {
            key: Account(
                key,
                secret,
                {a: (amount, Decimal(0)) for a, amount in sorted(assets.items())},
                uid=100_000 + i,
            )
            for i, (key, secret) in enumerate(keys.items())
        }

    def get(self, api_key: str) -> Account | None:
        return self._accounts.get(api_key)

    def __getitem__(self, api_key: str) -> Account:
        return self._accounts[api_key]

    def __contains__(self, api_key: object) -> bool:
        return api_key in self._accounts

    def add(self, api_key: str, secret: str) -> Account:
        """Create (or replace) an account with no balances."""
        account = Account(api_key, secret, uid=100_000 + len(self._accounts))
        self._accounts[api_key] = account
        return account
