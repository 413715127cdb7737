"""Make-before-break for private streams: a replacement socket for the 24 h limit.

Venues close a connection after 24 hours (Binance Spot WS API and USD-M streams, PROTOCOL
.md §A5.1 / §B). Letting that happen means a gap that reconciliation has to paper over,
so before ``ConnectionConfig.connection_lifetime`` (23.5 h by default) the account
stream opens a :class:`Replacement`: a second socket that logs in and subscribes like
the first (for USD-M, with the same listenKey - a POST returns the active key). The
moment it is subscribed, it becomes the primary and the old socket is closed with a
normal close handshake:

.. marble::
    :alt: private rotation

    old:  ==events==e1==e2==e3=|                 (closed once the new one is subscribed)
    new:            --login--ok==e2'==e3'==e4==  (e2', e3': the same events, dropped)
    out:  ==events==e1==e2==e3========e4==

Both sockets carry the account's events while they overlap, so frames the new socket
repeats are dropped: during a rotation the primary remembers a fingerprint of every
frame it handled (the decoded JSON, keys sorted, without ``subscriptionId``, which
differs per connection), and for :data:`OVERLAP_SECONDS` after the switch the new
primary skips a frame whose fingerprint it remembers. A replacement that cannot log in
(refused, dropped, ended by the venue) is abandoned and tried again after
:data:`RETRY_SECONDS`; the old socket keeps serving, and should it die first the normal
reconnect and REST reconciliation take over.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, Protocol

import attrs
import orjson
from reactivex import Observable, abc
from reactivex.disposable import Disposable, SerialDisposable

from rxconnector.errors import ParseError
from rxconnector.models import ConnectionEvent, ConnectionState
from rxconnector.streams.accounts.attempts import AttemptSlot
from rxconnector.transport.ws_types import Connected, ControlSender, SocketSpec, WsItem

if TYPE_CHECKING:
    from rxconnector.exchanges.account_protocol import PrivateSession

__all__ = [
    "OVERLAP_SECONDS",
    "RETRY_SECONDS",
    "FrameMemory",
    "Replacement",
    "Rotation",
    "RotationHost",
    "fingerprint",
]

#: How long after a switch frames the old socket already delivered are dropped.
OVERLAP_SECONDS: Final = 10.0
#: Wait before trying again when a replacement could not log in.
RETRY_SECONDS: Final = 60.0
_MEMORY: Final = 4096


def fingerprint(message: Any) -> bytes:
    """What identifies a frame's content on any connection of the account."""
    if isinstance(message, dict) and "subscriptionId" in message:
        message = {k: v for k, v in message.items() if k != "subscriptionId"}
    return orjson.dumps(message, option=orjson.OPT_SORT_KEYS)


class FrameMemory:
    """Fingerprints of the frames the old socket handled during a rotation."""

    def __init__(self) -> None:
        self._seen: OrderedDict[bytes, None] = OrderedDict()
        #: scheduler time until which repeats are dropped; ``None``: recording
        self.until: float | None = None

    def remember(self, message: Any) -> None:
        seen = self._seen
        seen[fingerprint(message)] = None
        while len(seen) > _MEMORY:
            seen.popitem(last=False)

    def repeated(self, message: Any) -> bool:
        """True (and forgotten) when the old socket already handled this frame."""
        key = fingerprint(message)
        if key in self._seen:
            del self._seen[key]
            return True
        return False


class Replacement:
    """The candidate socket of one rotation (see the module docstring).

    It speaks the login conversation through its own :class:`PrivateSession` and tells
    the owning run (``promote`` / ``abandon``) when it is subscribed or has failed.
    """

    def __init__(
        self,
        spec: SocketSpec,
        new_session: Callable[[], PrivateSession],
        report_state: Callable[[ConnectionEvent], None],
        report: Callable[[Exception], None],
        promote: Callable[[Replacement], None],
        abandon: Callable[[Replacement, str], None],
    ) -> None:
        self.spec = spec
        self._new_session = new_session
        self._report_state = report_state
        self._report = report
        self._promote = promote
        self._abandon = abandon
        self.subscription = SerialDisposable()
        self.link: ControlSender | None = None
        self.session: PrivateSession | None = None
        #: set by the run on promotion: items, errors and the end of the source then go
        #: to the run's own handlers
        self.forward: Callable[[WsItem], None] | None = None
        self.forward_error: Callable[[Exception], None] | None = None
        self.forward_completed: Callable[[], None] | None = None
        self._over = False

    def start(self, source: Observable[WsItem], scheduler: abc.SchedulerBase) -> None:
        self.subscription.disposable = source.subscribe(
            self._on_item, self._on_error, self._on_completed, scheduler=scheduler
        )

    def dispose(self) -> None:
        self._over = True
        self.subscription.dispose()

    # -- its socket ------------------------------------------------------------------------

    def _on_item(self, item: WsItem) -> None:
        forward = self.forward
        if forward is not None:
            forward(item)
            return
        if self._over:
            return
        if type(item) is Connected:
            self._report_state(item.event)
            self.link = item.link
            session = self.session = self._new_session()
            session.on_connected(self)
        elif type(item) is tuple:
            self._on_frame(item[0], item[1])
        elif isinstance(item, ConnectionEvent):
            self._report_state(item)
            if item.state is ConnectionState.RECONNECTING:
                self._give_up(f"dropped before it took over ({item.reason})")

    def _on_error(self, error: Exception) -> None:
        if self.forward_error is not None:
            self.forward_error(error)
        else:
            self._give_up(f"source failed: {error!r}")

    def _on_completed(self) -> None:
        if self.forward_completed is not None:
            self.forward_completed()
        else:
            self._give_up("source ended")

    def _on_frame(self, received_at: float, data: bytes | str) -> None:
        session = self.session
        if session is None:
            return
        try:
            message = orjson.loads(data)
            session.on_message(message, received_at, self)
        except Exception as exc:
            self._report(
                ParseError(f"{self.spec.connection_id}: cannot handle frame ({exc!r})", data)
            )

    def _give_up(self, reason: str) -> None:
        if not self._over and self.forward is None:
            self._over = True
            self._abandon(self, reason)

    # -- SessionOutput (before it takes over) -------------------------------------------

    def send(self, build: Callable[[], str]) -> None:
        link = self.link
        if link is not None and not self._over:
            link.send(build)

    def emit(self, item: object) -> None:
        """Nothing is delivered before the switch: the old socket still serves."""

    def subscribed(self) -> None:
        if not self._over:
            self._promote(self)

    def resubscribing(self, reason: str) -> None:
        self._give_up(f"subscription ended by the venue ({reason})")

    def fail(self, error: Exception, *, fatal: bool, resync_clock: bool = False) -> None:
        self._report(error)
        self._give_up(f"login refused ({error!r})")

    def report(self, error: Exception) -> None:
        self._report(error)


class RotationHost(Protocol):
    """What a :class:`Rotation` needs from the account run that owns the socket."""

    @property
    def spec(self) -> SocketSpec:
        """The primary socket's spec."""
        ...

    @property
    def log(self) -> Any:
        """The run's logger (bound to the primary connection)."""
        ...

    def running(self) -> bool:
        """False once the run has ended."""
        ...

    def is_subscribed(self) -> bool:
        """Whether the primary socket's subscription is live."""
        ...

    def announce(self, state: ConnectionState, reason: str) -> None:
        """Report a connection state of the primary connection."""
        ...

    def replacement(
        self,
        spec: SocketSpec,
        promote: Callable[[Replacement], None],
        abandon: Callable[[Replacement, str], None],
    ) -> Replacement:
        """A new candidate socket at ``spec`` (not started)."""
        ...

    def open_socket(self, spec: SocketSpec, slot: AttemptSlot) -> Observable[WsItem]:
        """The reconnecting socket at ``spec`` whose attempts log in through ``slot``."""
        ...

    def take_over(self, candidate: Replacement, slot: AttemptSlot) -> SocketSpec:
        """Make ``candidate`` the primary (closing the old socket); returns the old spec."""
        ...

    def took_over(self, old: SocketSpec) -> None:
        """The switch is complete (the lifetime re-armed)."""
        ...


class Rotation:
    """The connection-lifetime timer and the make-before-break switch of one run.

    Args:
        host: The account run.
        scheduler: Timing of the lifetime and the overlap.
        lifetime: ``ConnectionConfig.connection_lifetime`` in seconds.
        base_id: The run's connection id; replacements are ``{base_id}.r{n}``.
    """

    def __init__(
        self, host: RotationHost, scheduler: abc.SchedulerBase, lifetime: float, base_id: str
    ) -> None:
        self._host = host
        self._sched = scheduler
        self._lifetime = lifetime
        self._base_id = base_id
        self._timer = SerialDisposable()
        self._candidate: Replacement | None = None
        self._memory: FrameMemory | None = None
        self._rotations = 0

    def arm(self, seconds: float | None = None) -> None:
        """Rotate after ``seconds`` (default: the connection lifetime)."""

        def due(_s: abc.SchedulerBase, _state: Any = None) -> None:
            self.rotate()

        delay = self._lifetime if seconds is None else seconds
        self._timer.disposable = self._sched.schedule_relative(delay, due)

    def pause(self) -> None:
        """The primary socket is reconnecting: its next connect re-arms the timer (a
        replacement under way carries on)."""
        if self._candidate is None:
            self._timer.disposable = Disposable()

    def dispose(self) -> None:
        self._timer.dispose()
        if self._candidate is not None:
            self._candidate.dispose()
            self._candidate = None

    def rotate(self) -> None:
        """Open a replacement socket (when subscribed and none is under way)."""
        host = self._host
        if not host.running() or self._candidate is not None or not host.is_subscribed():
            return
        self._rotations += 1
        spec = attrs.evolve(host.spec, connection_id=f"{self._base_id}.r{self._rotations}")
        host.announce(
            ConnectionState.ROTATING, f"connection lifetime ({self._lifetime:g} s) reached"
        )
        host.log.info("private stream rotating", replacement=spec.connection_id)
        slot = AttemptSlot()
        candidate = host.replacement(spec, lambda c: self._promote(c, slot), self._abandon)
        self._candidate = candidate
        self._memory = FrameMemory()
        candidate.start(host.open_socket(spec, slot), self._sched)

    def repeated(self, message: Any) -> bool:
        """Record frames while a replacement logs in; after the switch, True for those
        the old socket already handled (for OVERLAP_SECONDS)."""
        memory = self._memory
        if memory is None:
            return False
        until = memory.until
        if until is None:
            memory.remember(message)
            return False
        if self._sched.to_seconds(self._sched.now) > until:
            self._memory = None
            return False
        return memory.repeated(message)

    def _promote(self, candidate: Replacement, slot: AttemptSlot) -> None:
        host = self._host
        if not host.running() or candidate is not self._candidate:
            return
        self._candidate = None
        old = host.take_over(candidate, slot)
        memory = self._memory
        if memory is not None:
            memory.until = self._sched.to_seconds(self._sched.now) + OVERLAP_SECONDS
        self.arm()
        host.took_over(old)

    def _abandon(self, candidate: Replacement, reason: str) -> None:
        if candidate is not self._candidate:
            return
        self._candidate = None
        self._memory = None
        candidate.dispose()
        self._host.log.warning("private stream replacement abandoned", reason=reason)
        if self._host.running() and self._host.is_subscribed():
            self.arm(RETRY_SECONDS)
