"""API keys, the balances behind them, signature checks, and account-change listeners.

Venue-agnostic: Binance and Bybit dialects of one simulator share these accounts (the
same key works on both, with one set of balances), which keeps the model small and lets
a test watch one balance move whichever venue traded. Amounts are exact ``Decimal``
values: the simulator never rounds a balance, so a client that sums fills and fees must
arrive at exactly what ``/account`` reports.

Every change of a balance goes through :meth:`Account.move`, which refuses to make an
amount negative: a matching-engine bug then fails loudly instead of teaching clients
that negative balances happen. Whoever changes balances announces it with
:meth:`Accounts.emit` (a :class:`BalanceChange` snapshot); the private-stream dialects
listen (:meth:`Accounts.listen`) and turn it into ``outboundAccountPosition`` /
``balanceUpdate`` (Binance) or ``wallet`` (Bybit) frames. Delivery is synchronous, in
the order the changes happened.

A key's secret is either an HMAC secret or a PEM private key (Ed25519 or RSA, as the
client's signer accepts): :meth:`Account.verify` checks hex HMAC-SHA256 signatures for
the former and base64 signatures with the derived public key for the latter.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

import attrs
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from rxconnector.log import get_logger
from rxconnector.testing.simulator.config import SymbolSpec

__all__ = [
    "DEFAULT_BASE_BALANCE",
    "DEFAULT_QUOTE_BALANCE",
    "Account",
    "AccountListener",
    "Accounts",
    "BalanceChange",
]

#: What a new account holds of every listed base asset and of every quote asset.
DEFAULT_BASE_BALANCE = Decimal(1)
DEFAULT_QUOTE_BALANCE = Decimal(10_000)
_ZERO = Decimal(0)
_log = get_logger("rxconnector.testing.simulator")
_PEM_MARK = "-----BEGIN"

#: Anything the engine or the accounts announce (``BalanceChange``, ``OrderEvent``).
AccountListener = Callable[[Any], None]


def _public_key(secret: str) -> ed25519.Ed25519PublicKey | rsa.RSAPublicKey | None:
    """The public key of a PEM private-key secret; ``None`` for an HMAC secret."""
    if not secret.lstrip().startswith(_PEM_MARK):
        return None
    key = serialization.load_pem_private_key(secret.encode(), password=None)
    if isinstance(key, ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey):
        return key.public_key()
    raise ValueError("a PEM secret must be an Ed25519 or RSA private key")


@attrs.define(eq=False)
class Account:
    """One API key's account: its secret and ``asset -> (free, locked)``."""

    api_key: str
    secret: str = attrs.field(repr=False)
    balances: dict[str, tuple[Decimal, Decimal]] = attrs.field(factory=dict)
    uid: int = 0
    #: server time (ms) of the last balance change
    update_time: int = 0
    #: ``asset -> amount`` borrowed (a unified-account loan; the borrowed coins sit in
    #: ``balances``, so what the account owns is the balance minus this)
    borrowed: dict[str, Decimal] = attrs.field(factory=dict)
    _public: ed25519.Ed25519PublicKey | rsa.RSAPublicKey | None = attrs.field(
        init=False, default=None, repr=False
    )

    def __attrs_post_init__(self) -> None:
        self._public = _public_key(self.secret)

    @property
    def key_type(self) -> str:
        """``"hmac"``, ``"ed25519"`` or ``"rsa"`` (from the secret's form)."""
        if self._public is None:
            return "hmac"
        return "ed25519" if isinstance(self._public, ed25519.Ed25519PublicKey) else "rsa"

    def free(self, asset: str) -> Decimal:
        return self.balances.get(asset, (_ZERO, _ZERO))[0]

    def locked(self, asset: str) -> Decimal:
        return self.balances.get(asset, (_ZERO, _ZERO))[1]

    def move(self, asset: str, free: Decimal = _ZERO, locked: Decimal = _ZERO) -> None:
        """Add ``free`` and ``locked`` (either may be negative) to ``asset``.

        Raises ``ValueError`` (and changes nothing) if either amount would go negative.
        """
        old_free, old_locked = self.balances.get(asset, (_ZERO, _ZERO))
        new_free, new_locked = old_free + free, old_locked + locked
        if new_free < 0 or new_locked < 0:
            raise ValueError(
                f"{asset} would go negative: free {old_free}{free:+}, locked {old_locked}{locked:+}"
            )
        self.balances[asset] = (new_free, new_locked)

    def snapshot(self, assets: Iterable[str]) -> tuple[tuple[str, Decimal, Decimal], ...]:
        """``(asset, free, locked)`` of each of ``assets``, in the order given."""
        return tuple((a, self.free(a), self.locked(a)) for a in dict.fromkeys(assets))

    def verify(self, payload: str, signature: str) -> bool:
        """Whether ``signature`` signs ``payload`` with this key.

        HMAC secrets: hex HMAC-SHA256, case-insensitive (PROTOCOL.md §A3, §C3).
        PEM secrets: base64 Ed25519 or RSASSA-PKCS1-v1_5/SHA-256 signature.
        """
        data = payload.encode()
        key = self._public
        if key is None:
            expected = hmac.new(self.secret.encode(), data, hashlib.sha256).hexdigest()
            return hmac.compare_digest(expected, signature.lower())
        try:
            raw = base64.b64decode(signature, validate=True)
            if isinstance(key, ed25519.Ed25519PublicKey):
                key.verify(raw, data)
            else:
                key.verify(raw, data, padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, binascii.Error, ValueError):
            return False
        return True


@attrs.frozen
class BalanceChange:
    """Balances of one account changed: the new ``(asset, free, locked)`` of each
    changed asset at server time ``time``. ``delta`` is set for a deposit or a
    withdrawal (``sim.set_balance``): ``(asset, signed amount)``; trading leaves it
    ``None``."""

    account: Account
    balances: tuple[tuple[str, Decimal, Decimal], ...]
    time: int
    delta: tuple[str, Decimal] | None = None


class Accounts:
    """All accounts of a simulator, keyed by API key, plus the change listeners.

    A new account holds :data:`DEFAULT_BASE_BALANCE` of each listed base asset and
    :data:`DEFAULT_QUOTE_BALANCE` of each quote asset (``sim.set_balance`` changes it).
    """

    def __init__(self, keys: Mapping[str, str], specs: Iterable[SymbolSpec]) -> None:
        assets: dict[str, Decimal] = {}
        for spec in specs:
            assets.setdefault(spec.base_asset, DEFAULT_BASE_BALANCE)
            assets[spec.quote_asset] = DEFAULT_QUOTE_BALANCE
        self._seed = dict(sorted(assets.items()))
        self._accounts: dict[str, Account] = {}
        self._listeners: list[AccountListener] = []
        for key, secret in keys.items():
            self.add(key, secret)

    def get(self, api_key: str) -> Account | None:
        return self._accounts.get(api_key)

    def __getitem__(self, api_key: str) -> Account:
        return self._accounts[api_key]

    def __contains__(self, api_key: object) -> bool:
        return api_key in self._accounts

    def __iter__(self) -> Any:
        return iter(list(self._accounts.values()))

    def add(self, api_key: str, secret: str) -> Account:
        """Create (or replace) an account holding the default balances."""
        if not api_key or not secret:
            raise ValueError("api_key and secret must be non-empty")
        account = Account(
            api_key,
            secret,
            {asset: (amount, _ZERO) for asset, amount in self._seed.items()},
            uid=100_000 + len(self._accounts),
        )
        self._accounts[api_key] = account
        return account

    def set_balance(
        self, api_key: str, asset: str, free: Decimal | str | int, now_ms: int
    ) -> BalanceChange:
        """Set the FREE amount of ``asset`` (a deposit or withdrawal of the difference;
        locked amounts belong to open orders and stay) and announce it."""
        account = self._accounts[api_key]
        target = Decimal(free)
        if not target.is_finite() or target < 0:
            raise ValueError(f"free must be a finite amount >= 0, got {free!r}")
        delta = target - account.free(asset)
        account.move(asset, free=delta)
        account.update_time = now_ms
        change = BalanceChange(account, account.snapshot([asset]), now_ms, (asset, delta))
        self.emit(change)
        return change

    def borrow(self, api_key: str, asset: str, amount: Decimal | str | int, now_ms: int) -> None:
        """Lend ``amount`` of ``asset`` to the account (a negative amount repays): the
        coins arrive in (or leave) its free balance and the debt is recorded; announced
        as a balance change. Bybit's wallet shows it as ``borrowAmount``."""
        account = self._accounts[api_key]
        value = Decimal(amount)
        debt = account.borrowed.get(asset, _ZERO) + value
        if not value.is_finite() or debt < 0:
            raise ValueError(f"cannot repay more than the {asset} debt")
        account.move(asset, free=value)
        account.borrowed[asset] = debt
        account.update_time = now_ms
        self.emit(BalanceChange(account, account.snapshot([asset]), now_ms))

    # -- listeners ------------------------------------------------------------------------

    def listen(self, listener: AccountListener) -> Callable[[], None]:
        """Call ``listener`` with every announced change; returns the unsubscriber."""
        self._listeners.append(listener)

        def stop() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return stop

    def emit(self, event: Any) -> None:
        """Deliver ``event`` to every listener, synchronously and in registration order.

        A listener that raises is logged and skipped: one broken dialect must not leave
        an order half-processed for the others.
        """
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                _log.exception("account listener failed", announcement=type(event).__name__)
