"""What the account stream needs for derivatives: positions compared after a gap, and a
socket URL obtained per connection attempt (Binance USD-M's listenKey).

Positions. After a re-subscription :class:`~rxconnector.streams.account.AccountStreams`
fetches the positions over REST and emits what changed while nothing was subscribed:

.. marble::
    :alt: position reconciliation

    seen:   BTC long 1 @100, ETH short 2 @10
    REST:   BTC long 3 @101                        (ETH is gone: closed in the gap)
    emit:   BTC long 3 @101 (reconciled), ETH flat 0 (reconciled)

A position a live event touched since the reconnect is left alone (the event is
newer than the REST answer); one never seen and flat is not news.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Final

import attrs
from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, SerialDisposable, SingleAssignmentDisposable

from rxconnector.errors import RxConnectorError
from rxconnector.models import Position
from rxconnector.transport.ws import ConnectFn, OwnedTasks, SessionFactory, SocketSpec, WsItem

if TYPE_CHECKING:
    from rxconnector.streams.account import PrivateProtocol

__all__ = ["position_changes", "with_url"]

_ZERO: Final = Decimal(0)

PositionKey = tuple[str, str]


def position_changes(
    known: Mapping[PositionKey, Position],
    touched: set[PositionKey],
    listed: Iterable[Position],
    received_at: float,
) -> list[Position]:
    """The positions to emit (``reconciled=True``) after REST listed ``listed``: each
    that differs from ``known`` in side, size or entry price, and each known open one
    REST no longer lists, flat with size 0."""
    seen: set[PositionKey] = set()
    changed: list[Position] = []
    for position in listed:
        key = position.key
        seen.add(key)
        if key in touched:
            continue  # a live event already said something newer
        before = known.get(key)
        if before is None:
            if position.size == _ZERO:
                continue
        elif (
            before.size == position.size
            and before.side == position.side
            and before.entry_price == position.entry_price
        ):
            continue
        changed.append(attrs.evolve(position, received_at=received_at, reconciled=True))
    for key, before in known.items():
        if key not in seen and key not in touched and before.size != _ZERO:
            changed.append(
                attrs.evolve(
                    before,
                    side="flat",
                    size=_ZERO,
                    entry_price=_ZERO,
                    unrealised_pnl=_ZERO,
                    received_at=received_at,
                    reconciled=True,
                )
            )
    return changed


def with_url(
    protocol: PrivateProtocol,
    connect: ConnectFn,
    spec: SocketSpec,
    session: SessionFactory,
    tasks: OwnedTasks,
) -> Observable[WsItem]:
    """One connection attempt at the protocol's URL of the moment (its ``open_url()``,
    e.g. a listenKey lease) or at ``spec.url``. The URL subscription is held while the
    socket lives (the lease keeps the key alive); its error ends the attempt."""
    open_url: Callable[[], Observable[str]] | None = getattr(protocol, "open_url", None)
    if open_url is None:
        return connect(spec, session, tasks)

    def subscribe(
        observer: abc.ObserverBase[WsItem], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        lease = SingleAssignmentDisposable()
        socket = SerialDisposable()
        started = False

        def on_url(url: str) -> None:
            nonlocal started
            if started:
                return
            started = True
            # the URL may carry a credential (a listenKey): events, logs and errors
            # show the one the owner configured instead
            attempt = connect(
                attrs.evolve(spec, url=url, shown_url=spec.public_url), session, tasks
            )
            socket.disposable = attempt.subscribe(
                observer.on_next, observer.on_error, observer.on_completed, scheduler=scheduler
            )

        def on_completed() -> None:
            if not started:
                observer.on_error(RxConnectorError(f"{spec.connection_id}: no socket URL given"))

        lease.disposable = open_url().subscribe(
            on_url, observer.on_error, on_completed, scheduler=scheduler
        )
        return CompositeDisposable(socket, lease)

    return Observable(subscribe)
