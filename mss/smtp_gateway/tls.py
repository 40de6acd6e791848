"""TLS for the SMTP listeners and the outbound relay: TLS 1.2 minimum, client certificates.

``mss.crypto.tls`` builds the contexts when it is available; until then
(and as a fallback) the same contexts are built here from the settings:
the server certificate, and the trust anchors for client certificates.
"""

from __future__ import annotations

import hashlib
import ssl
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from mss.config import Settings
from mss.policy import PeerCertificateFacts


def server_context(settings: Settings, trust: Any, *, client_cert: bool) -> ssl.SSLContext:
    """A server context; with ``client_cert`` it asks for a certificate chaining to the anchors."""
    try:
        from mss.crypto import tls as crypto_tls

        return crypto_tls.server_context(settings, client_cert="optional" if client_cert else "none")
    except (ImportError, AttributeError, TypeError):
        pass
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(settings.server_cert_file, settings.server_key_file)
    if client_cert:
        _load_anchors(context, trust)
        context.verify_mode = ssl.CERT_OPTIONAL
    return context


def client_context(settings: Settings, trust: Any, *, cert_file: str | None = None,
                   key_file: str | None = None) -> ssl.SSLContext:
    """The context of our outbound relay: verify the peer against the anchors, show our operator cert."""
    try:
        from mss.crypto import tls as crypto_tls

        return crypto_tls.client_context(settings)
    except (ImportError, AttributeError, TypeError):
        pass
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    _load_anchors(context, trust)
    operator_cert = cert_file or str(settings.pki_dir / "operator.pem")
    operator_key = key_file or str(settings.pki_dir / "operator.key")
    context.load_cert_chain(operator_cert, operator_key)
    return context


def _load_anchors(context: ssl.SSLContext, trust: Any) -> None:
    pem = "".join(cert.public_bytes(Encoding.PEM).decode() for cert in trust.anchors)
    if pem:
        context.load_verify_locations(cadata=pem)


def peer_certificate(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> PeerCertificateFacts | None:
    """The client's verified certificate as facts (subject DN, SHA-256, DNS names), or None."""
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
    return PeerCertificateFacts(cert.subject.rfc4514_string(), hashlib.sha256(der).hexdigest(), domains)


def describe_tls(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> str:
    """``TLSv1.3 TLS_AES_256_GCM_SHA384`` for the Received header."""
    if ssl_object is None:
        return ""
    cipher = ssl_object.cipher()
    return f"{ssl_object.version()} {cipher[0] if cipher else ''}".strip()
