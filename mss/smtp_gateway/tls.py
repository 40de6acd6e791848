"""TLS for the SMTP listeners and the outbound relay: TLS 1.2 minimum, client certificates.

``mss.crypto.tls`` builds the contexts; this module picks the modes each
listener needs and turns a client certificate into policy facts.
"""

from __future__ import annotations

import hashlib
import ssl
from typing import Any

from cryptography import x509

from mss.config import Settings
from mss.crypto import tls as crypto_tls
from mss.policy import PeerCertificateFacts


def server_context(settings: Settings, trust: Any, *, client_cert: bool) -> ssl.SSLContext:
    """A server context; with ``client_cert`` it asks for a certificate chaining to the anchors.

    The certificate is optional at the TLS layer so that a client without one
    gets an SMTP reply with a sentence rather than a bare handshake alert.
    """
    return crypto_tls.server_context(
        settings, client_cert="optional" if client_cert else "none", trust=trust
    )


def rotating_server_context(
    settings: Settings, trust: Any, *, client_cert: bool
) -> crypto_tls.RotatingServerContext:
    """``server_context`` made again every ``[tls] ticket_key_hours`` (new session-ticket keys)."""
    return crypto_tls.RotatingServerContext(
        lambda: server_context(settings, trust, client_cert=client_cert),
        settings.tls.ticket_key_hours * 3600.0,
    )


def client_context(settings: Settings, trust: Any) -> ssl.SSLContext:
    """Our outbound relay's context: verify the peer against the anchors, show our operator cert."""
    return crypto_tls.client_context(
        settings,
        cert=settings.pki_dir / "operator.pem",
        key=settings.pki_dir / "operator.key",
        trust=trust,
    )


def peer_certificate(
    ssl_object: ssl.SSLObject | ssl.SSLSocket | None, trust: Any
) -> PeerCertificateFacts | None:
    """The client's certificate as facts (DN, SHA-256, DNS names, full chain/CRL check), or None."""
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    if not der:
        return None
    cert = x509.load_der_x509_certificate(der)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        domains = tuple(name.lower() for name in san.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        domains = ()
    check = crypto_tls.verify_peer(ssl_object, trust, usage="tls_client")
    status, reason = (check.status, check.reason) if check is not None else ("unknown_ca", "")
    return PeerCertificateFacts(
        cert.subject.rfc4514_string(),
        hashlib.sha256(der).hexdigest(),
        domains,
        chain_status=status,
        chain_reason=reason,
    )


def describe_tls(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> str:
    """``TLSv1.3 TLS_AES_256_GCM_SHA384`` for the Received header."""
    if ssl_object is None:
        return ""
    cipher = ssl_object.cipher()
    return f"{ssl_object.version()} {cipher[0] if cipher else ''}".strip()
