"""Binance request signatures: HMAC-SHA256, Ed25519 and RSA (PROTOCOL.md §A3).

REST signs the query string exactly as sent (already percent-encoded) and appends
``signature``; the WebSocket API signs its ``params`` sorted by name, joined as
``k=v`` with ``&``, *without* percent-encoding. HMAC signatures are hex; Ed25519 and
RSA signatures are base64 and must be percent-encoded when placed in a URL.

The key type is detected from the secret: a PEM private key (``-----BEGIN``) is
Ed25519 or RSA, anything else is an HMAC secret. :class:`BinanceSigner` is the only
object that ever holds the revealed secret; its ``repr`` shows neither key, it refuses
to be pickled, and no error it raises quotes the secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any, Literal, NoReturn
from urllib.parse import quote

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from rxconnector.config import Config, Secret
from rxconnector.errors import ConfigError
from rxconnector.exchanges.query import encode_query, format_param
from rxconnector.exchanges.rest_spec import Endpoint, SignedRequest

__all__ = ["BinanceRestSigner", "BinanceSigner", "KeyType", "rest_signer", "ws_signature_payload"]

KeyType = Literal["hmac", "ed25519", "rsa"]

_PEM_MARK = "-----BEGIN"


def ws_signature_payload(params: Mapping[str, Any]) -> str:
    """The WebSocket-API string to sign: every param but ``signature``, sorted by name,
    ``k=v`` joined with ``&``, UTF-8, no percent-encoding (PROTOCOL.md §A3)."""
    return "&".join(
        f"{k}={format_param(params[k])}"
        for k in sorted(params)
        if k != "signature" and params[k] is not None
    )


class BinanceSigner:
    """Signs Binance payloads with one API key pair.

    >>> signer = BinanceSigner("my-key", Secret("my-hmac-secret"))
    >>> signer.key_type
    'hmac'
    """

    __slots__ = ("_api_key", "_hmac_key", "_key_type", "_private_key")

    def __init__(self, api_key: str, api_secret: Secret) -> None:
        if not api_key or not api_secret:
            raise ConfigError("api_key", "and api_secret are required for signed requests", "")
        self._api_key = api_key
        self._hmac_key: bytes | None = None
        self._private_key: ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey | None = None
        revealed = api_secret.reveal()
        if revealed.lstrip().startswith(_PEM_MARK):
            self._private_key = _load_private_key(revealed)
            self._key_type: KeyType = (
                "ed25519" if isinstance(self._private_key, ed25519.Ed25519PrivateKey) else "rsa"
            )
        else:
            self._hmac_key = revealed.encode()
            self._key_type = "hmac"

    @property
    def api_key(self) -> str:
        """The API key (sent in the clear as ``X-MBX-APIKEY``; not a secret)."""
        return self._api_key

    @property
    def key_type(self) -> KeyType:
        return self._key_type

    def sign(self, payload: str) -> str:
        """The signature of ``payload``: hex for HMAC, base64 for Ed25519/RSA."""
        data = payload.encode()
        if self._hmac_key is not None:
            return hmac.new(self._hmac_key, data, hashlib.sha256).hexdigest()
        key = self._private_key
        if isinstance(key, ed25519.Ed25519PrivateKey):
            raw = key.sign(data)
        else:
            assert key is not None
            raw = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        return base64.b64encode(raw).decode()

    def sign_query(self, query: str, body: str = "") -> str:
        """``signature=...`` for a REST request whose query string is ``query`` and whose
        form body is ``body``, percent-encoded for a URL or form (base64 has ``+/=``)."""
        return f"signature={quote(self.sign(query + body), safe='')}"

    def sign_ws_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of WebSocket-API ``params`` with ``signature`` added."""
        signed = {k: v for k, v in params.items() if k != "signature"}
        signed["signature"] = self.sign(ws_signature_payload(signed))
        return signed

    def __repr__(self) -> str:
        shown = f"{self._api_key[:4]}…" if self._api_key else ""
        return f"BinanceSigner(api_key={shown!r}, key_type={self._key_type!r})"

    def __reduce__(self) -> NoReturn:
        raise TypeError("BinanceSigner holds a secret and cannot be pickled")


class BinanceRestSigner:
    """How Binance REST requests are signed (PROTOCOL.md §A3), as the engine calls it
    when a request leaves (a :class:`~rxconnector.exchanges.rest_plan.PlanSigner`).

    SIGNED: ``recvWindow`` and ``timestamp`` appended, the exact query string signed,
    the key in ``X-MBX-APIKEY``. USER_STREAM (listenKey): the key header only. The
    :class:`BinanceSigner` holding the secret is made on the first signed request.
    """

    __slots__ = ("_api_key", "_api_secret", "_recv_window", "_signer")

    def __init__(self, api_key: str, api_secret: Secret, recv_window: int) -> None:
        self._api_key = api_key
        self._api_secret = api_secret
        self._recv_window = recv_window
        self._signer: BinanceSigner | None = None

    def sign(self, endpoint: Endpoint, params: Mapping[str, Any], timestamp: int) -> SignedRequest:
        signer = self._signer
        if signer is None:
            signer = self._signer = BinanceSigner(self._api_key, self._api_secret)
        pairs = [*params.items(), ("recvWindow", self._recv_window), ("timestamp", timestamp)]
        query = encode_query(pairs)
        return SignedRequest(
            query=f"{query}&{signer.sign_query(query)}",
            headers={"X-MBX-APIKEY": signer.api_key},
        )

    def key_only(self, endpoint: Endpoint, params: Mapping[str, Any]) -> SignedRequest:
        return SignedRequest(
            query=encode_query(list(params.items())), headers={"X-MBX-APIKEY": self._api_key}
        )

    def __repr__(self) -> str:
        shown = f"{self._api_key[:4]}…" if self._api_key else ""
        return f"BinanceRestSigner(api_key={shown!r})"

    def __reduce__(self) -> NoReturn:
        raise TypeError("BinanceRestSigner holds a secret and cannot be pickled")


def _load_private_key(pem: str) -> ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):
        # The cause may quote parts of the key: drop it (`from None`).
        raise ConfigError(
            "api_secret",
            "looks like a PEM key but is not an unencrypted PKCS#8 Ed25519/RSA private key",
            "<redacted>",
        ) from None
    if isinstance(key, ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey):
        return key
    raise ConfigError(
        "api_secret", "must be an Ed25519 or RSA private key for Binance", type(key).__name__
    )


def rest_signer(config: Config) -> BinanceRestSigner:
    """The REST signer of ``config``'s keys (Spot and USD-M sign alike)."""
    return BinanceRestSigner(config.api_key, config.api_secret, config.recv_window)
