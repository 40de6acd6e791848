"""The aiosmtpd handler: the envelope and content stages of one SMTP session.

Each hook gathers what the session established, asks the ``Gateway``
(facts + ``mss.policy``) and returns the reply line. No rule lives here.
"""

from __future__ import annotations

import logging
import time

from mss.directory.facts import local_domains
from mss.metrics import hub_metrics
from mss.policy import decide_relay_sender, decide_submission_sender
from mss.smtp_gateway import replies
from mss.smtp_gateway.envelope import Sender, Transaction
from mss.smtp_gateway.protocol import HubEnvelope, HubSession, HubSMTP
from mss.smtp_gateway.stages import Gateway

log = logging.getLogger("mss.smtp")


class GatewayHandler:
    """aiosmtpd ``handle_*`` hooks for every listener of the hub."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    async def handle_EHLO(
        self,
        server: HubSMTP,
        session: HubSession,
        envelope: HubEnvelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        extended = [r for r in responses if r.strip() != "250-AUTH"]
        extended.insert(-1, "250-PIPELINING")
        extended.insert(-1, "250-ENHANCEDSTATUSCODES")
        extended.insert(-1, "250-DSN")  # RFC 3461: for ORCPT (mss/smtp_gateway/dsn_params.py)
        return extended

    async def handle_MAIL(
        self,
        server: HubSMTP,
        session: HubSession,
        envelope: HubEnvelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        settings = self.gateway.settings
        if server.listener.is_relay:
            decision, domains = await self.gateway.check_relay_client(session.certificate)
            if decision.allowed:
                decision = decide_relay_sender(domains, address, local_domains(settings))
            sender = Sender(address, None, session.certificate, channel="relay")
        else:
            decision = decide_submission_sender(session.mailbox, address)
            sender = Sender(address, session.mailbox, channel="submission")
        if not decision.allowed:
            hub_metrics().smtp_refused.labels(
                server.listener.name, "mail", decision.enhanced_status
            ).inc()
            return decision.smtp_reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        envelope.txn = Transaction(sender)
        return "250 2.1.0 Sender OK"

    async def handle_RCPT(
        self,
        server: HubSMTP,
        session: HubSession,
        envelope: HubEnvelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        assert envelope.txn is not None
        decision, recipient = await self.gateway.check_recipient(envelope.txn, address)
        if not decision.allowed or recipient is None:
            hub_metrics().smtp_refused.labels(
                server.listener.name, "rcpt", decision.enhanced_status
            ).inc()
            return decision.smtp_reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        envelope.txn.recipients.append(recipient)
        if recipient.mailbox is not None:
            envelope.txn.original_recipients[recipient.mailbox.id] = (
                envelope.dsn.original_recipient or f"rfc822;{address}"
            )
        return "250 2.1.5 Recipient OK"

    async def handle_DATA(self, server: HubSMTP, session: HubSession, envelope: HubEnvelope) -> str:
        assert envelope.txn is not None and isinstance(envelope.original_content, bytes)
        peer = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer)
        start = time.perf_counter()
        outcome = await self.gateway.accept(
            envelope.txn,
            envelope.original_content,
            helo=session.host_name or "",
            peer=f"[{peer}]",
            tls=session.tls,
        )
        metrics, listener = hub_metrics(), server.listener.name
        if outcome.decision.allowed:
            metrics.smtp_accepted.labels(listener).inc()
            metrics.smtp_delivery_seconds.labels(listener).observe(time.perf_counter() - start)
        else:
            metrics.smtp_refused.labels(listener, "data", outcome.decision.enhanced_status).inc()
            log.info(
                "refused %s -> %s: %s",
                envelope.mail_from,
                envelope.rcpt_tos,
                outcome.decision.smtp_reply,
            )
        return outcome.decision.smtp_reply

    async def handle_exception(self, error: Exception) -> str:
        log.exception("SMTP session error", exc_info=error)
        return replies.INTERNAL_ERROR.smtp_reply

    def __repr__(self) -> str:
        return f"GatewayHandler({self.gateway.settings.hostname})"
