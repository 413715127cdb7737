"""Bybit v5 request signatures (HMAC-SHA256, lowercase hex).

REST (PROTOCOL.md §C3 "Signing"): sign ``timestamp + api_key + recv_window + payload``
where ``payload`` is the query string for GET and the exact JSON body for POST. The
signature covers the bytes as sent, so the caller must sign the very string it puts on
the wire (re-serializing a dict after signing changes key order or spacing and yields
``10004 error sign``).

Private WebSocket auth (§C2): sign ``"GET/realtime" + expires`` (``expires`` in ms,
in the future) and send ``{"op":"auth","args":[api_key, expires, signature]}``.

Secrets: functions accept the config's :class:`~rxconnector.config.Secret` (or a
plain ``str``) and reveal it only to feed ``hmac``; it never reaches a message,
an exception or a log line.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Final

import orjson

from rxconnector.config import Secret

__all__ = [
    "DEFAULT_RECV_WINDOW_MS",
    "WS_AUTH_PREFIX",
    "rest_headers",
    "sign",
    "sign_rest",
    "ws_auth_message",
    "ws_auth_signature",
]

#: §C3: ``X-BAPI-RECV-WINDOW`` defaults to 5000 ms.
DEFAULT_RECV_WINDOW_MS: Final = 5000
#: §C2: the WS auth string is ``"GET/realtime" + expires``.
WS_AUTH_PREFIX: Final = "GET/realtime"


def _key_bytes(secret: Secret | str) -> bytes:
    value = secret.reveal() if isinstance(secret, Secret) else secret
    if not value:
        raise ValueError("an API secret is required to sign Bybit requests")
    return value.encode()


def sign(secret: Secret | str, message: str) -> str:
    """Lowercase hex HMAC-SHA256 of ``message`` under ``secret``."""
    return hmac.new(_key_bytes(secret), message.encode(), hashlib.sha256).hexdigest()


def sign_rest(
    secret: Secret | str,
    timestamp: int,
    api_key: str,
    payload: str,
    recv_window: int = DEFAULT_RECV_WINDOW_MS,
) -> str:
    """``X-BAPI-SIGN`` for a REST call; ``payload`` = query string (GET) or JSON body (POST)."""
    return sign(secret, f"{timestamp}{api_key}{recv_window}{payload}")


def rest_headers(
    api_key: str,
    secret: Secret | str,
    timestamp: int,
    payload: str,
    recv_window: int = DEFAULT_RECV_WINDOW_MS,
) -> dict[str, str]:
    """The four authentication headers of a signed Bybit REST request."""
    return {
        "X-BAPI-API-KEY": api_key,
        "X-BAPI-TIMESTAMP": str(timestamp),
        "X-BAPI-RECV-WINDOW": str(recv_window),
        "X-BAPI-SIGN": sign_rest(secret, timestamp, api_key, payload, recv_window),
    }


def ws_auth_signature(secret: Secret | str, expires: int) -> str:
    """Signature for the private WebSocket ``auth`` op: HMAC of ``"GET/realtime{expires}"``."""
    return sign(secret, f"{WS_AUTH_PREFIX}{expires}")


def ws_auth_message(
    api_key: str, secret: Secret | str, expires: int, req_id: str | None = None
) -> str:
    """The ``{"req_id":..,"op":"auth","args":[api_key, expires, signature]}`` text frame.

    ``expires`` (epoch ms) must be later than Bybit's clock when the frame arrives;
    the docs' sample uses now + 1 s (take "now" from the clock-synced ``conn.now()``).
    """
    frame: dict[str, object] = {}
    if req_id is not None:
        frame["req_id"] = req_id
    frame["op"] = "auth"
    frame["args"] = [api_key, expires, ws_auth_signature(secret, expires)]
    return orjson.dumps(frame).decode()
