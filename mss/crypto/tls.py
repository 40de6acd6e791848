"""TLS contexts for the hub's listeners and outbound connections, and the peer's certificate.

Servers present the hub's certificate (``settings.server_cert_file``, leaf
then chain) with TLS 1.2 as the minimum. When client certificates are asked
for, OpenSSL checks the chain to the TrustStore's anchors during the
handshake; revocation and the extended key usage are then checked by the
caller with ``verify_peer`` (the TrustStore's CRLs, with a sentence for each
refusal), because a foreign CA listed in certs/trust/ may publish no CRL we
hold and OpenSSL's CRL flags would then refuse every one of its clients.

A listener holds a ``RotatingServerContext``, not a context: OpenSSL makes a
context's session-ticket keys when the context is made and never changes them,
so the keys rotate by making a new context every ``[tls] ticket_key_hours``.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from cryptography import x509

from mss.config import Settings
from mss.crypto.keys import cert_pem
from mss.crypto.openssl_verify import let_application_verify
from mss.crypto.trust import ChainCheck, TrustStore, Usage
from mss.errors import ConfigError

log = logging.getLogger("mss.tls")

# "application": a certificate is asked for and any chain accepted at the handshake, so that the
# application answers with the reason (mss.crypto.openssl_verify); it must call verify_peer.
ClientCertMode = Literal["none", "optional", "required", "application"]
_VERIFY_MODES = {
    "none": ssl.CERT_NONE,
    "optional": ssl.CERT_OPTIONAL,
    "required": ssl.CERT_REQUIRED,
    "application": ssl.CERT_OPTIONAL,
}
# TLS 1.2 suites with forward secrecy and AEAD only; TLS 1.3 suites are OpenSSL's defaults.
_TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20"


def _anchors_pem(trust: TrustStore) -> str:
    certs = [*trust.anchors, *trust.intermediates]
    if not certs:
        raise ConfigError(
            "no trust anchor is configured: run 'mss pki init' or put a CA "
            "certificate in certs/trust/ or tls.trust_dir"
        )
    return cert_pem(*certs).decode()


def _load_chain(ctx: ssl.SSLContext, cert: Path, key: Path | None, what: str) -> None:
    try:
        ctx.load_cert_chain(str(cert), str(key) if key is not None else None)
    except FileNotFoundError:
        raise ConfigError(
            f"{what} {cert} or its key {key} is missing: run 'mss pki init' "
            "or set tls.cert_file and tls.key_file"
        ) from None
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(f"{what} {cert} with key {key} cannot be used: {exc}") from None


def _harden(ctx: ssl.SSLContext) -> None:
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(_TLS12_CIPHERS)
    ctx.options |= ssl.OP_NO_COMPRESSION


def server_context(
    settings: Settings, *, client_cert: ClientCertMode = "none", trust: TrustStore | None = None
) -> ssl.SSLContext:
    """A server context with the hub's certificate; client certificates checked when asked."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _harden(ctx)
    ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    _load_chain(
        ctx, settings.server_cert_file, settings.server_key_file, "the hub's TLS certificate"
    )
    if client_cert != "none":
        store = trust if trust is not None else TrustStore.from_settings(settings)
        ctx.load_verify_locations(cadata=_anchors_pem(store))
    ctx.verify_mode = _VERIFY_MODES[client_cert]
    if client_cert == "application":
        let_application_verify(ctx)
    return ctx


class RotatingServerContext:
    """A listener's server context, made again every ``lifetime`` seconds: its ticket keys rotate.

    Python's ``ssl`` has no call to set the session-ticket keys; OpenSSL makes random ones per
    context and decrypts a ticket with the context its connection was made with (an SNI
    callback that swaps the context does not change that). So each connection takes
    ``current()`` (one clock read on the hot path) and, past the lifetime, a new context is
    built. The previous one is not kept: a ticket it issued is not decrypted, and its client
    gets a full handshake. Rebuilding also reads the certificate files again; if they cannot
    be used, the current context stays (with one WARNING line) until the next lifetime.
    """

    def __init__(
        self,
        build: Callable[[], ssl.SSLContext],
        lifetime: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not lifetime > 0:
            raise ValueError(f"the lifetime of a TLS context must be above 0, got {lifetime}")
        self._build = build
        self.lifetime = lifetime
        self._clock = clock
        self._context = build()
        self._expires = clock() + lifetime
        self.rotations = 0

    @classmethod
    def fixed(cls, context: ssl.SSLContext) -> RotatingServerContext:
        """One context for ever (callers that hold a plain ``ssl.SSLContext``)."""
        return cls(lambda: context, math.inf)

    def current(self) -> ssl.SSLContext:
        """The context a new connection uses, made again first if its lifetime is over."""
        if self._clock() >= self._expires:
            self.rotate()
        return self._context

    def rotate(self) -> ssl.SSLContext:
        """A new context now (new ticket keys): sessions of the previous one no longer resume."""
        self._expires = self._clock() + self.lifetime
        try:
            self._context = self._build()
        except ConfigError as exc:
            log.warning("TLS session-ticket keys not rotated, the context is kept: %s", exc)
        else:
            self.rotations += 1
        return self._context


ServerContexts = ssl.SSLContext | RotatingServerContext


def rotating(contexts: ServerContexts) -> RotatingServerContext:
    """``contexts`` as a ``RotatingServerContext`` (a plain context is kept for ever)."""
    if isinstance(contexts, RotatingServerContext):
        return contexts
    return RotatingServerContext.fixed(contexts)


def rotating_server_context(
    settings: Settings, *, client_cert: ClientCertMode = "none", trust: TrustStore | None = None
) -> RotatingServerContext:
    """``server_context`` made again every ``[tls] ticket_key_hours`` (new session-ticket keys)."""
    return RotatingServerContext(
        lambda: server_context(settings, client_cert=client_cert, trust=trust),
        settings.tls.ticket_key_hours * 3600.0,
    )


def client_context(
    settings: Settings,
    *,
    cert: Path | None = None,
    key: Path | None = None,
    trust: TrustStore | None = None,
    check_hostname: bool = True,
) -> ssl.SSLContext:
    """A client context trusting the hub's anchors, optionally presenting ``cert``/``key``."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    _harden(ctx)
    store = trust if trust is not None else TrustStore.from_settings(settings)
    ctx.load_verify_locations(cadata=_anchors_pem(store))
    ctx.check_hostname = check_hostname
    ctx.verify_mode = ssl.CERT_REQUIRED
    if cert is not None:
        _load_chain(
            ctx, Path(cert), Path(key) if key is not None else None, "the client certificate"
        )
    return ctx


def _ssl_object(conn: Any) -> ssl.SSLObject | ssl.SSLSocket | None:
    if isinstance(conn, (ssl.SSLObject, ssl.SSLSocket)):
        return conn
    get_extra_info = getattr(conn, "get_extra_info", None)  # asyncio transport or StreamWriter
    if get_extra_info is not None:
        found = get_extra_info("ssl_object")
        return found if isinstance(found, (ssl.SSLObject, ssl.SSLSocket)) else None
    return None


def peer_certificate(conn: Any) -> x509.Certificate | None:
    """The peer's certificate of an SSLObject, SSLSocket, asyncio transport or StreamWriter."""
    ssl_obj = _ssl_object(conn)
    if ssl_obj is None:
        return None
    der = ssl_obj.getpeercert(binary_form=True)
    return x509.load_der_x509_certificate(der) if der else None


def verify_peer(
    conn: Any, trust: TrustStore, *, usage: Usage = "tls_client", at: dt.datetime | None = None
) -> ChainCheck | None:
    """Full check of the peer's certificate (chain, EKU, dates, CRLs); None if it sent none."""
    cert = peer_certificate(conn)
    if cert is None:
        return None
    ssl_obj = _ssl_object(conn)
    presented: list[x509.Certificate] = []
    unverified = getattr(ssl_obj, "get_unverified_chain", None)  # Python 3.13+
    if unverified is not None:
        presented = [
            x509.load_der_x509_certificate(der)
            for der in (unverified() or [])
            if isinstance(der, bytes)
        ]
    return trust.verify(cert, presented, usage=usage, at=at)
