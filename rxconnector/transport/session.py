"""Who owns the aiohttp ``ClientSession`` a connector's sockets and requests go through.

A connector either borrows a session its user created (and leaves it open: the user
closes it) or owns one it creates when it starts and closes when it stops. That
decision, and aiohttp itself, stay here in the transport layer: the connector holds a
:class:`SessionOwner` and hands its :meth:`~SessionOwner.get` to the hubs, the account
streams and the HTTP transport, which ask for the session whenever they connect, so a
stopped connector's session is never reused.
"""

from __future__ import annotations

from typing import TypeAlias

import aiohttp

from rxconnector.errors import RxConnectorError
from rxconnector.transport.http import HttpTransport

__all__ = ["ClientSession", "SessionOwner"]

#: The session type a user may hand to a connector (``Connector(cfg, session=...)``).
ClientSession: TypeAlias = aiohttp.ClientSession


class SessionOwner:
    """Creates, lends and closes one connector's HTTP session.

    Args:
        session: a session to borrow (never closed here); ``None``: :meth:`open`
            creates one and :meth:`close` closes it.
    """

    def __init__(self, session: ClientSession | None = None) -> None:
        self._session = session
        self._owned = session is None
        self._closed = False

    @property
    def is_open(self) -> bool:
        """True between :meth:`open` (or borrowing) and :meth:`close`."""
        return self._session is not None and not self._closed

    def open(self) -> None:
        """Create the owned session if there is none yet (needs a running event loop)."""
        if self._session is None and not self._closed:
            self._session = aiohttp.ClientSession()

    def get(self) -> ClientSession:
        """The session, for a socket or request about to be made.

        Raises:
            RxConnectorError: the connector was stopped (or never started).
        """
        if self._session is None or self._closed:
            raise RxConnectorError("the Connector is stopped")
        return self._session

    def http(self, timeout: float) -> HttpTransport:
        """An HTTP transport over the current session, each request limited to ``timeout`` s."""
        return HttpTransport(self.get(), timeout=timeout)

    async def close(self) -> None:
        """Close the session if this owner created it; forget it either way."""
        session, self._session = self._session, None
        self._closed = True
        if self._owned and session is not None:
            await session.close()
