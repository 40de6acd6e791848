"""DKIM (RFC 6376): what the hub does with relayed mail whose DKIM does not pass.

Relayed mail is verified against the trust space's key table (``mss.crypto.dkim``); the
result is always recorded in Authentication-Results. ``[relay] dkim_failure`` says whether
a failure is also acted on:

- ``record`` (the default): accepted, the result recorded only;
- ``refuse``: mail whose author (From) domain signs -- the key table holds a record for
  it -- and that carries no passing signature of that domain is refused at DATA with the
  RFC 7372 enhanced codes:

===========================================  ========  ================================
DKIM of the message                          code      RFC 7372
===========================================  ========  ================================
no signature, or one that fails / cannot be  5.7.20    no passing DKIM signature found
checked
a passing signature of another domain only   5.7.22    no valid author-matched signature
===========================================  ========  ================================

Mail from a domain that does not sign is never refused for its DKIM. (5.7.21, "no
acceptable signature", would be a passing author signature refused by local policy, such
as a weak algorithm; the hub has no such policy.)
"""

from __future__ import annotations

from typing import Literal

from mss.policy.decision import OK, Decision, refuse

DkimFailureAction = Literal["record", "refuse"]
DKIM_FAILURE_ACTIONS: tuple[DkimFailureAction, ...] = ("record", "refuse")


def author_aligned(signing_domain: str | None, author_domain: str) -> bool:
    """The signature's d= is the author's domain or a parent of it (relaxed alignment)."""
    if not signing_domain:
        return False
    d, author = signing_domain.lower().rstrip("."), author_domain.lower().rstrip(".")
    return author == d or author.endswith("." + d)


def decide_dkim(
    status: str,
    signing_domain: str | None,
    author_domain: str,
    *,
    domain_signs: bool,
    action: str,
) -> Decision:
    """May a relayed message with this DKIM result (pass/fail/none/permerror, d=) be taken?"""
    if action != "refuse" or not domain_signs:
        return OK
    if status == "pass" and author_aligned(signing_domain, author_domain):
        return OK
    if status == "pass":
        return refuse(
            550,
            "5.7.22",
            f"No valid author-matched DKIM signature found: {author_domain} signs its mail, "
            f"but this message is signed by {signing_domain} only",
            f"Aucune signature DKIM valide du domaine de l'auteur : {author_domain} signe "
            f"ses messages, mais celui-ci n'est signé que par {signing_domain}",
            reason="dkim_not_author",
        )
    if status == "none":
        english = f"{author_domain} signs its mail with DKIM but this message has no signature"
        french = (
            f"{author_domain} signe ses messages avec DKIM mais celui-ci ne porte aucune signature"
        )
    else:
        english = (
            f"{author_domain} signs its mail with DKIM but the signature of this message "
            "does not verify (changed in transit, or signed with another key)"
        )
        french = (
            f"{author_domain} signe ses messages avec DKIM mais la signature de celui-ci "
            "n'est pas valide (modifié en chemin, ou signé avec une autre clé)"
        )
    return refuse(
        550,
        "5.7.20",
        f"No passing DKIM signature found: {english}",
        f"Aucune signature DKIM valide : {french}",
        reason="dkim_failed",
    )
