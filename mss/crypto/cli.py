"""``mss pki``: the development PKI."""

from __future__ import annotations

import click


@click.group()
def pki() -> None:
    """Development PKI: CAs, server, operator and S/MIME certificates, CRL."""
