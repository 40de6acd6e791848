"""Who may read ``/metrics``: the addresses and networks of ``[metrics] allow``, nobody else."""

from __future__ import annotations

import pytest

from mss.policy.operations import decide_metrics_access, parse_networks

LOOPBACK = parse_networks(["127.0.0.1/32", "::1/128"])


@pytest.mark.parametrize("peer", ["127.0.0.1", "::1", "::ffff:127.0.0.1"])
def test_loopback_may_read_the_metrics(peer: str) -> None:
    assert decide_metrics_access(peer, LOOPBACK)


@pytest.mark.parametrize(
    "peer", ["127.0.0.2", "10.0.0.1", "2001:db8::1", "", None, "not an address"]
)
def test_any_other_client_is_refused_with_403(peer: str | None) -> None:
    access = decide_metrics_access(peer, LOOPBACK)
    assert not access and access.status == 403 and "[metrics] allow" in access.sentence


def test_a_network_and_nobody() -> None:
    assert decide_metrics_access("10.1.2.3", parse_networks(["10.0.0.0/8"]))
    assert not decide_metrics_access("127.0.0.1", parse_networks([]))


def test_a_wrong_entry_is_named() -> None:
    with pytest.raises(ValueError, match="'localhost' is not an IP address or network"):
        parse_networks(["localhost"])
