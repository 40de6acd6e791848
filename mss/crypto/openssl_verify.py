"""Ask for a client certificate at the TLS layer and let the application judge it.

With ``CERT_OPTIONAL`` OpenSSL aborts the handshake as soon as a client
presents a certificate it cannot verify: the client sees an empty reply
(curl's ``(52) Empty reply from server``) and the server logs nothing the
operator can act on. The document API would rather answer ``401`` with the
reason (unknown CA, expired, revoked, wrong usage), which ``verify_peer``
already computes from the TrustStore, CRLs included.

Python's ``ssl`` module has no verify callback, so this module installs one
through OpenSSL's own ``SSL_CTX_set_verify`` (found in the ``_ssl`` extension's
libssl): it keeps ``SSL_VERIFY_PEER`` (the certificate is asked for and its
possession proved by the handshake) and accepts the chain whatever OpenSSL's
verdict. Such a context MUST only serve code that calls ``verify_peer`` on
every connection that presents a certificate (``dmp_bridge.api_auth`` does),
since ``getpeercert()`` then returns unverified certificates too.

The ``SSL_CTX`` pointer is read from the ``SSLContext`` object (the first
field after the object header in CPython) and checked against two values
Python also knows (the options and the verify mode) before it is used; if
anything does not match, nothing is changed and the caller keeps OpenSSL's
own verification.
"""

from __future__ import annotations

import ctypes
import logging
import ssl
from typing import Any

log = logging.getLogger(__name__)

_VERIFY_PEER = 0x01  # SSL_VERIFY_PEER (openssl/ssl.h)
_CALLBACK_TYPE = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_void_p)


def _accept_whatever_openssl_says(preverify_ok: int, store_ctx: int | None) -> int:
    return 1  # the application checks the chain (verify_peer) and answers with the reason


_CALLBACK = _CALLBACK_TYPE(_accept_whatever_openssl_says)  # kept alive for the process
_libssl: Any = None


def _library() -> Any:
    global _libssl
    if _libssl is None:
        import _ssl

        lib = ctypes.CDLL(_ssl.__file__)  # dlsym searches its libssl dependency too
        lib.SSL_CTX_set_verify.argtypes = [ctypes.c_void_p, ctypes.c_int, _CALLBACK_TYPE]
        lib.SSL_CTX_set_verify.restype = None
        lib.SSL_CTX_get_verify_mode.argtypes = [ctypes.c_void_p]
        lib.SSL_CTX_get_verify_mode.restype = ctypes.c_int
        lib.SSL_CTX_get_options.argtypes = [ctypes.c_void_p]
        lib.SSL_CTX_get_options.restype = ctypes.c_uint64
        _libssl = lib
    return _libssl


def let_application_verify(ctx: ssl.SSLContext) -> bool:
    """Ask for a client certificate, accept any chain; True if installed, False if not.

    On False the context is unchanged (OpenSSL keeps refusing unverifiable chains
    at the handshake) and the reason is logged.
    """
    ctx.verify_mode = ssl.CERT_OPTIONAL
    try:
        lib = _library()
        pointer = ctypes.c_void_p.from_address(id(ctx) + object.__basicsize__).value
        if (
            not pointer
            or lib.SSL_CTX_get_options(pointer) != int(ctx.options)
            or lib.SSL_CTX_get_verify_mode(pointer) != _VERIFY_PEER
        ):
            log.warning(
                "client certificates: this Python's SSLContext layout is not the expected one; "
                "OpenSSL keeps refusing unverifiable client certificates at the handshake"
            )
            return False
        lib.SSL_CTX_set_verify(pointer, _VERIFY_PEER, _CALLBACK)
    except (OSError, AttributeError, ValueError) as exc:
        log.warning(
            "client certificates: cannot install the verify callback (%s); OpenSSL keeps "
            "refusing unverifiable client certificates at the handshake",
            exc,
        )
        return False
    return True
