"""Who may send as whom: MAIL FROM and the From header belong to the authenticated mailbox."""

from __future__ import annotations

from collections.abc import Iterable

from mss.policy.decision import OK, Decision, refuse
from mss.policy.facts import MailboxFacts, domain_of, normalize_address
from mss.policy.vocabulary import MailboxState


def decide_submission_sender(authenticated: MailboxFacts | None, mail_from: str) -> Decision:
    """MAIL FROM on the submission ports: only the authenticated, active mailbox's own address."""
    if authenticated is None:
        return refuse(
            530,
            "5.7.0",
            "Authentication required before MAIL",
            "Authentification requise avant MAIL",
        )
    if authenticated.state is not MailboxState.ACTIVE:
        return refuse(
            550,
            "5.7.1",
            f"Mailbox {authenticated.address} is {authenticated.state.value} and cannot send",
            f"La boîte {authenticated.address} est "
            f"{_state_fr(authenticated.state)} et ne peut pas envoyer",
        )
    if normalize_address(mail_from) != normalize_address(authenticated.address):
        return refuse(
            553,
            "5.7.1",
            f"Sender address <{mail_from}> is not owned by the authenticated "
            f"mailbox {authenticated.address}",
            f"L'adresse d'expéditeur <{mail_from}> n'appartient pas à la boîte "
            f"authentifiée {authenticated.address}",
        )
    return OK


def decide_from_header(authenticated: MailboxFacts, from_addresses: Iterable[str]) -> Decision:
    """The From header names exactly one address, the authenticated mailbox's own."""
    addresses = [normalize_address(a) for a in from_addresses if a.strip()]
    if len(addresses) != 1:
        return refuse(
            550,
            "5.7.1",
            "The From header must name exactly one address, the sender's",
            "L'en-tête From doit contenir exactement une adresse, celle de l'expéditeur",
        )
    if addresses[0] != normalize_address(authenticated.address):
        return refuse(
            550,
            "5.7.1",
            f"From header <{addresses[0]}> is not owned by the authenticated "
            f"mailbox {authenticated.address}",
            f"L'en-tête From <{addresses[0]}> n'appartient pas à la boîte authentifiée "
            f"{authenticated.address}",
        )
    return OK


def decide_relay_sender(
    operator_domains: Iterable[str], mail_from: str, local_domains: Iterable[str]
) -> Decision:
    """MAIL FROM on the relay port: an address of the connected operator, never one of ours."""
    domain = domain_of(mail_from)
    if not mail_from:
        return OK  # a bounce (null reverse-path) from another operator
    if domain in {d.lower() for d in local_domains}:
        return refuse(
            550,
            "5.7.1",
            f"Sender <{mail_from}> claims a domain of this hub on the relay port",
            f"L'expéditeur <{mail_from}> revendique un domaine de ce hub sur le port relais",
        )
    if domain not in {d.lower() for d in operator_domains}:
        return refuse(
            550,
            "5.7.1",
            f"Sender domain {domain} does not belong to the connected operator",
            f"Le domaine d'expéditeur {domain} n'appartient pas à l'opérateur connecté",
        )
    return OK


def decide_relay_from_header(mail_from: str, from_addresses: Iterable[str]) -> Decision:
    """On the relay port the From header's domain must be the envelope sender's."""
    addresses = [normalize_address(a) for a in from_addresses if a.strip()]
    if len(addresses) != 1 or (mail_from and domain_of(addresses[0]) != domain_of(mail_from)):
        return refuse(
            550,
            "5.7.1",
            "The From header must name one address of the sending operator",
            "L'en-tête From doit contenir une adresse de l'opérateur expéditeur",
        )
    return OK


def _state_fr(state: MailboxState) -> str:
    return {MailboxState.SUSPENDED: "suspendue", MailboxState.CLOSED: "fermée"}.get(
        state, "inactive"
    )
