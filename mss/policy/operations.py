"""Who may read the hub's operational endpoints: ``/metrics`` is for operators, not the public.

The metrics say nothing of a patient, but they tell an outsider how busy the hub
is, which listeners refuse what and when logins fail: by default only the hub's
own machine reads them (``[metrics] allow``, loopback).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class OperatorAccess:
    """May this client read ``/metrics``; the HTTP status and sentence when not."""

    allowed: bool
    status: int = 200
    sentence: str = ""

    def __bool__(self) -> bool:
        return self.allowed


def parse_networks(
    allow: Sequence[str],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """``[metrics] allow``: addresses or CIDR networks; raises ValueError naming a wrong one."""
    networks = []
    for text in allow:
        try:
            networks.append(ipaddress.ip_network(text.strip(), strict=False))
        except ValueError:
            raise ValueError(
                f"{text!r} is not an IP address or network (for example 127.0.0.1/32)"
            ) from None
    return tuple(networks)


def decide_metrics_access(
    peer: str | None, allowed: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]
) -> OperatorAccess:
    """Allowed when the client's address is in one of the ``allowed`` networks (none: nobody)."""
    try:
        address = ipaddress.ip_address(peer or "")
    except ValueError:
        address = None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 on a dual-stack socket
    if address is not None and any(address in network for network in allowed):
        return OperatorAccess(True)
    return OperatorAccess(
        False,
        403,
        "The metrics are for the hub's operators: this address is not in [metrics] allow",
    )
