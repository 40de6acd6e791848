"""Who may read the hub's operational endpoints: ``/metrics`` is for operators, not the public.

The metrics say nothing of a patient, but they tell an outsider how busy the hub
is, which listeners refuse what and when logins fail: by default only the hub's
own machine reads them (``[metrics] allow``, loopback).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from mss.policy.decision import OK, Decision, refuse_http


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
) -> Decision:
    """Allowed when the client's address is in one of the ``allowed`` networks (none: nobody)."""
    try:
        address = ipaddress.ip_address(peer or "")
    except ValueError:
        address = None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 on a dual-stack socket
    if address is not None and any(address in network for network in allowed):
        return OK
    return refuse_http(
        403,
        "not_an_operator",
        "The metrics are for the hub's operators: this address is not in [metrics] allow",
        "Les métriques sont réservées aux exploitants du service : cette adresse n'est pas dans "
        "[metrics] allow",
    )
