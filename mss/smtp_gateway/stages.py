"""The message path after the session stage: envelope checks, content checks, delivery.

``Gateway`` is what the SMTP handler (and the patient portal) call: every
allow/deny comes from ``mss.policy``; this module only gathers facts,
verifies, stamps and delivers, and turns failures into replies.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from mss.config import Settings
from mss.crypto.cms import CmsFailure
from mss.crypto.smime import framing
from mss.crypto.trust import TrustStore
from mss.db import Database, utcnow
from mss.directory.activity import note_activity
from mss.directory.facts import (
    mailbox_by_certificate,
    operator_trust,
    recipient_cache,
    recipient_facts,
)
from mss.errors import DatabaseUnavailable
from mss.followups import registry as follow_ups
from mss.login_throttle import LoginThrottle
from mss.logins import Login, log_in
from mss.message import Message, UnreadableMessage, parse_message
from mss.policy import (
    Decision,
    MailboxFacts,
    PeerCertificateFacts,
    RecipientFacts,
    decide_from_header,
    decide_line_endings,
    decide_recipient,
    decide_recipient_count,
    decide_relay_client,
    decide_relay_from_header,
    decide_signature,
    decide_size,
    normalize_address,
)
from mss.policy.dkim import decide_dkim
from mss.policy.encryption import decide_decryption
from mss.services import Services
from mss.smtp_gateway import replies
from mss.smtp_gateway.content import (
    SignatureOutcome,
    authentication_results,
    has_bare_line_ending,
    new_message_id,
    stamp,
    verify_signature,
)
from mss.smtp_gateway.deadline import within
from mss.smtp_gateway.delivery import DeliveryReceipt, DeliveryRefused, deliver, prepare
from mss.smtp_gateway.envelope import Sender, Transaction, one_off_document
from mss.stage_clock import StageClock

log = logging.getLogger("mss.smtp")
T = TypeVar("T")


@dataclass
class Accepted:
    """The outcome of one DATA: the reply to give and, when accepted, what was committed."""

    decision: Decision
    receipt: DeliveryReceipt | None = None
    signature: SignatureOutcome | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Gateway:
    """Settings, database and services shared by every session of every listener."""

    def __init__(self, settings: Settings, db: Database, services: Services) -> None:
        self.settings = settings
        self.db = db
        self.services = services
        self.clock: StageClock = services.stage_clock
        self.throttle = LoginThrottle(db, settings, protocol="smtp")
        self._recipients = recipient_cache(db, settings.limits.recipient_cache_seconds)
        follow_ups.require()  # delivery enqueues only the registered follow-ups: none is lost

    @property
    def trust(self) -> TrustStore:
        return self.services.trust_store()

    async def _lookup(self, step: Coroutine[Any, Any, T]) -> T:
        """A directory lookup: a few indexed statements, inline on SQLite, within the database
        timeout."""
        with self.db.inline():
            return await within(self.settings.limits.database_timeout, step)

    async def log_in(
        self, login: str, password: str, source: str
    ) -> tuple[MailboxFacts | None, Decision]:
        """AUTH PLAIN/LOGIN: the login throttle, then the mailbox and its password (argon2 off the
        loop).

        While the throttle refuses (``mss.policy.login``) the password is not checked, so even
        the right one gets the lock's or the wait's reply. Each step is one short statement.
        """
        result: Login[None] = await log_in(
            self.db, self.throttle, login, password, source, with_patient=True, step=self._lookup
        )
        return (result.facts if result.allowed else None), result.decision

    async def mailbox_for_certificate(self, sha256: str) -> MailboxFacts | None:
        async def lookup() -> MailboxFacts | None:
            async with self.db.read() as session:
                return await mailbox_by_certificate(session, sha256)

        facts = await self._lookup(lookup())
        if facts is not None:  # an information system's login: retention counts it (once a day)
            await self._lookup(note_activity(self.db, facts.id))
        return facts

    async def check_relay_client(
        self, certificate: PeerCertificateFacts | None
    ) -> tuple[Decision, frozenset[str]]:
        """The relay port: an operator certificate on the trust list, and the domains it speaks
        for."""
        if certificate is None:
            return decide_relay_client(None, dn_trusted=False, domain_trusted=False), frozenset()
        try:

            async def lookup() -> tuple[bool, frozenset[str]]:
                async with self.db.read() as session:
                    return await operator_trust(session, certificate)

            dn_trusted, domains = await self._lookup(lookup())
        except (DatabaseUnavailable, TimeoutError):
            return replies.DATABASE_UNAVAILABLE, frozenset()
        return decide_relay_client(
            certificate, dn_trusted=dn_trusted, domain_trusted=bool(domains)
        ), domains

    async def check_recipient(
        self, txn: Transaction, address: str
    ) -> tuple[Decision, RecipientFacts | None]:
        """RCPT: the count limit, then what the directory and the policy say about this address."""
        count = decide_recipient_count(len(txn.recipients), self.settings.limits.max_recipients)
        if not count.allowed:
            return count, None
        sender = txn.sender.mailbox
        # A patient's RCPT also reads the conversations it may answer: never from the cache.
        cache = None if sender is not None and sender.is_patient else self._recipients
        cached = cache.get(normalize_address(address)) if cache is not None else None
        if cached is not None:
            return decide_recipient(sender, cached, [], one_off=txn.sender.one_off), cached
        try:

            async def lookup() -> tuple[RecipientFacts, list[Any]]:
                async with self.db.read() as session:
                    found = await recipient_facts(session, self.settings, address)
                    return found, await self._patient_conversations(session, txn, found)

            with self.clock.stage("rcpt"):
                recipient, conversations = await self._lookup(lookup())
        except (DatabaseUnavailable, TimeoutError) as exc:
            log.warning("RCPT %s: %s", address, exc)
            return replies.DATABASE_UNAVAILABLE, None
        if cache is not None:
            cache.remember(recipient.address, recipient)
        decision = decide_recipient(sender, recipient, conversations, one_off=txn.sender.one_off)
        return decision, recipient

    async def _patient_conversations(
        self, session: Any, txn: Transaction, recipient: RecipientFacts
    ) -> list[Any]:
        sender = txn.sender.mailbox
        if sender is None or not sender.is_patient or recipient.mailbox is None:
            return []
        from mss.conversations import conversation_facts

        return await conversation_facts(session, sender.id, recipient.mailbox.id)

    async def submit(
        self,
        sender: MailboxFacts,
        recipients: list[str],
        raw: bytes,
        *,
        channel: str = "portal",
        one_off: str = "",
    ) -> Accepted:
        """The whole path for a message written outside SMTP (the patient portal): same
        decisions. ``one_off``: the kind of one-off document the portal built (the profile
        summary), judged by ``mss.policy.patient_documents`` instead of opening a conversation."""
        txn = Transaction(Sender(sender.address, sender, channel=channel, one_off=one_off))
        for address in recipients:
            decision, recipient = await self.check_recipient(txn, address)
            if not decision.allowed or recipient is None:
                return Accepted(decision)
            txn.recipients.append(recipient)
        return await self.accept(txn, raw, helo=channel, peer=channel)

    async def accept(
        self, txn: Transaction, raw: bytes, *, helo: str = "", peer: str = "", tls: str = ""
    ) -> Accepted:
        """DATA: content checks, signature, stamping, one durable delivery. 250 only after
        commit."""
        endings = decide_line_endings(has_bare_line_ending(raw))
        if not endings.allowed:
            return Accepted(endings)
        try:
            with self.clock.stage("parse"):
                parsed = parse_message(raw)
        except UnreadableMessage as exc:
            log.info("refused a message from %s: %s", txn.sender.mail_from, exc)
            return Accepted(replies.UNREADABLE)
        except Exception:
            log.exception("cannot parse a message from %s", txn.sender.mail_from)
            return Accepted(replies.UNREADABLE)
        sender = txn.sender
        if sender.mailbox is not None:
            header = decide_from_header(sender.mailbox, parsed.facts.from_addresses)
        else:
            header = decide_relay_from_header(sender.mail_from, parsed.facts.from_addresses)
        if not header.allowed:
            return Accepted(header)
        if sender.one_off:
            txn.document = one_off_document(parsed, sender)
        locals_ = txn.local_mailboxes
        limits = self.settings.limits
        size = decide_size(
            len(raw),
            max_size=limits.max_message_size,
            to_patient=any(m.is_patient for m in locals_),
            max_size_to_patient=limits.max_message_size_to_patient,
        )
        if not size.allowed:
            return Accepted(size)
        decrypted_from = ""
        if locals_ and framing(*parsed.content_type) == "opaque":
            with self.clock.stage("decrypt"):
                opened = await self._decrypted(parsed, locals_)
            if isinstance(opened, Decision):
                return Accepted(opened)
            if opened is not None:
                parsed, decrypted_from = opened
        with self.clock.stage("verify"):
            signature = await verify_signature(parsed, self.trust, decrypted_from=decrypted_from)
        verdict = decide_signature(sender.mailbox, locals_, signature.status, signature.reason)
        if not verdict.allowed:
            return Accepted(verdict, signature=signature)
        dkim: list[str] = []
        if sender.mailbox is None:
            dkim, dkim_verdict = await self._dkim_results(parsed)
            if not dkim_verdict.allowed:
                log.info("refused a message from %s: %s", sender.mail_from, dkim_verdict.sentence)
                return Accepted(dkim_verdict, signature=signature)
        with self.clock.stage("stamp"):
            parsed = self._stamped(parsed, txn, signature, dkim, helo=helo, peer=peer, tls=tls)
        try:
            with self.clock.stage("prepare"):
                request = prepare(self.settings, txn, parsed, signature)
            with self.clock.stage("deliver"):
                receipt = await deliver(self.db, request)
        except DeliveryRefused as refused:
            return Accepted(refused.decision, signature=signature)
        except (DatabaseUnavailable, TimeoutError) as exc:
            log.warning("delivery from %s: %s", sender.mail_from, exc)
            return Accepted(replies.DATABASE_UNAVAILABLE, signature=signature)
        if receipt.jobs:
            self.services.jobs.wake()
        return Accepted(replies.accepted(receipt.queue_id), receipt, signature)

    async def _decrypted(
        self, parsed: Message, locals_: list[MailboxFacts]
    ) -> tuple[Message, str] | Decision | None:
        """An encrypted message for hub mailboxes, decrypted with their keys and read once more
        (the decrypted entity is the message the rest of the path reads), with the form it
        arrived in; a refusal when it cannot be decrypted; None when it is not encrypted.

        An unreadable CMS body is left to verification, which calls it malformed.
        """
        from mss.crypto.decryption import EncryptionKeys, decrypt_message
        from mss.crypto.smime import read_form

        try:
            form = read_form(parsed.raw, parsed.content_type)
        except CmsFailure:
            return None
        if not form.encrypted:
            return None
        built = self.services.built
        if not isinstance(built.encryption_keys, EncryptionKeys):
            built.encryption_keys = EncryptionKeys(self.settings.pki_dir)
        keys = built.encryption_keys
        opened = await asyncio.to_thread(
            decrypt_message, parsed.raw, form, [m.address for m in locals_], keys
        )
        decision = decide_decryption(opened.status, opened.recipient, opened.reason)
        if not decision.allowed:
            log.info("refused an encrypted message: %s", decision.sentence)
            return decision
        try:
            with self.clock.stage("parse"):
                inner = parse_message(opened.raw)
        except UnreadableMessage:
            return replies.UNREADABLE
        kind = "authEnveloped-data" if form.kind == "auth_enveloped" else "enveloped-data"
        return inner, kind

    async def _dkim_results(self, parsed: Message) -> tuple[list[str], Decision]:
        """DKIM (and ARC, when sealed) of a message another operator relayed, for
        Authentication-Results, and whether ``[relay] dkim_failure`` lets it in
        (``mss.policy.dkim``)."""
        from mss.crypto import dkim

        built = self.services.built
        if built.dkim_keys is None:
            built.dkim_keys = dkim.DkimKeyTable.from_pki(self.settings.pki_dir)
        table = built.dkim_keys
        result = await dkim.verify_async(parsed.raw, table)
        author = (parsed.from_address or "").rpartition("@")[2]
        verdict = decide_dkim(
            result.status,
            result.domain,
            author,
            domain_signs=bool(author) and table.signs(author),
            action=self.settings.relay.dkim_failure,
        )
        clauses = [result.authentication_results_clause()]
        arc = await dkim.verify_arc_async(parsed.raw, table)
        if arc.instances:  # a forwarding intermediary sealed it (RFC 8617): record the chain
            clauses.append(arc.authentication_results_clause())
        return clauses, verdict

    def _stamped(
        self,
        parsed: Message,
        txn: Transaction,
        signature: SignatureOutcome,
        dkim: list[str],
        *,
        helo: str,
        peer: str,
        tls: str,
    ) -> Message:
        """Our Received and Authentication-Results headers (and a Message-ID if the client gave
        none)."""
        hostname = self.settings.hostname
        sender = txn.sender
        auth_user = sender.mailbox.address if sender.mailbox is not None else None
        headers = [
            (
                "Authentication-Results",
                authentication_results(
                    hostname,
                    signature=signature,
                    from_address=parsed.from_address,
                    auth_user=auth_user,
                    dkim=dkim,
                ),
            ),
            (
                "Received",
                (
                    f"from {helo or 'unknown'} ({peer})\r\n\tby {hostname} with "
                    f"{'ESMTPSA' if auth_user else 'ESMTPS'}{f' ({tls})' if tls else ''};\r\n\t"
                    f"{email.utils.format_datetime(utcnow())}"
                ),
            ),
        ]
        message_id = None
        if not parsed.message_id and sender.mailbox is not None:
            message_id = new_message_id(self.settings.domain)
            headers.append(("Message-ID", message_id))
        return parsed.restamped(stamp(parsed.raw, hostname, headers), message_id)
