"""Outbound relay to other operators of the trust space, from the jobs table.

A ``smtp.relay`` job carries one stored message and the recipients of one
domain. It connects with STARTTLS, verifying the peer against our trust
anchors and showing our operator certificate, and hands the message over.
A permanent refusal, or the last failed attempt, sends a DSN to the sender.

A recipient whose S/MIME encryption certificate the hub knows (``mss directory
import-certificates``) gets the message encrypted to it (RFC 8551 enveloped-data, the
stored signed message inside), per ``[smime] encrypt_outbound``.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
from dataclasses import dataclass
from typing import Any

from mss.config import Settings
from mss.crypto import smime
from mss.delivery_status import record_status
from mss.directory.recipient_certificates import encryption_certificates
from mss.jobs import JobContext, PermanentFailure, enqueue
from mss.mailbox.models import StoredMessage
from mss.policy import Decision
from mss.policy.encryption import decide_outbound_encryption, should_encrypt
from mss.services import Services
from mss.smtp_gateway.delivery import DSN_JOB, RELAY_ATTEMPTS, RELAY_JOB
from mss.smtp_gateway.tls import client_context

log = logging.getLogger("mss.smtp.relay")


@dataclass(frozen=True)
class RelayResult:
    """Recipients the peer refused for good, with its reply, and whether the rest is done."""

    refused: dict[str, tuple[int, str]]


def route_for(domain: str, services: Services) -> tuple[str, int]:
    """Where a domain's operator listens: a configured route, else its MX (or the domain) on 25."""
    routes = services.relay_routes
    if domain in routes:
        return routes[domain]
    try:
        import dns.resolver

        answers = sorted(dns.resolver.resolve(domain, "MX"), key=lambda r: r.preference)
        if answers:
            return str(answers[0].exchange).rstrip("."), 25
    except Exception as exc:  # noqa: BLE001 - no MX record: RFC 5321 falls back to the domain itself
        log.debug("no MX for %s (%s); trying the domain itself", domain, exc)
    return domain, 25


def send_over_tls(
    host: str,
    port: int,
    context: ssl.SSLContext,
    local_hostname: str,
    mail_from: str,
    recipients: list[str],
    raw: bytes,
    *,
    peer_name: str,
    timeout: float = 60.0,
) -> RelayResult:
    """One SMTP transaction (blocking: run in a thread). 4xx and network errors raise.

    The peer's certificate must name ``peer_name``: the operator's domain, as its
    operator certificate does, whatever host the route points at.
    """
    with smtplib.SMTP(local_hostname=local_hostname, timeout=timeout) as client:
        client._host = peer_name  # type: ignore[attr-defined]  # what starttls() checks the certificate against
        client.connect(host, port)
        client.ehlo()
        if not client.has_extn("starttls"):
            raise smtplib.SMTPException(f"{host}:{port} does not offer STARTTLS")
        client.starttls(context=context)
        client.ehlo()
        try:
            refused = client.sendmail(mail_from, recipients, raw)
        except smtplib.SMTPRecipientsRefused as exc:
            refused = exc.recipients
        except smtplib.SMTPResponseException as exc:
            if exc.smtp_code >= 500:
                text = (
                    exc.smtp_error.decode("utf-8", "replace")
                    if isinstance(exc.smtp_error, bytes)
                    else str(exc.smtp_error)
                )
                return RelayResult({r: (exc.smtp_code, text) for r in recipients})
            raise
    temporary = {r: v for r, v in refused.items() if v[0] < 500}
    if temporary:
        raise smtplib.SMTPException(f"{host} deferred {', '.join(temporary)}")
    return RelayResult(
        {
            r: (code, text.decode("utf-8", "replace") if isinstance(text, bytes) else text)
            for r, (code, text) in refused.items()
        }
    )


async def dkim_sign(raw: bytes, settings: Settings) -> bytes:
    """Sign with our DKIM key (``<pki_dir>/dkim/<domain>.<selector>.key``) when there is one."""
    from mss.crypto import dkim

    folder = settings.pki_dir / "dkim"
    keys = sorted(folder.glob(f"{settings.domain}.*.key")) if folder.is_dir() else []
    if not keys:
        return raw
    selector = keys[0].name.removesuffix(".key")[len(settings.domain) + 1 :]
    key = dkim.load_signing_key(settings.pki_dir, settings.domain, selector)
    return await dkim.sign_async(raw, key)


async def run_relay_job(ctx: JobContext, payload: dict[str, Any]) -> None:
    """The ``smtp.relay`` handler: the recipients with a known encryption certificate get the
    message encrypted to them (one enveloped-data for all of them), the others get it as
    stored, unless ``[smime] encrypt_outbound = "required"`` bounces them."""
    settings = ctx.services.settings
    recipients: list[str] = list(payload["recipients"])
    mode = settings.smime.encrypt_outbound
    async with ctx.db.read() as session:
        message = await session.get(StoredMessage, payload["message_id"])
        if message is None:
            raise PermanentFailure(f"stored message {payload['message_id']} is gone")
        raw, message_id = bytes(message.raw), message.message_id_header
        known = await encryption_certificates(session, recipients) if mode != "never" else {}
    sealed = [r for r in recipients if should_encrypt(mode, r.lower() in known)]
    clear = [r for r in recipients if r not in sealed]
    refused = {
        r: decision
        for r in clear
        if not (decision := decide_outbound_encryption(mode, r, False)).allowed
    }
    if refused:
        await _bounce_decisions(ctx, payload, refused)
    clear = [r for r in clear if r not in refused]
    if sealed and clear:  # two transactions: each its own job, so a retry repeats only its own
        async with ctx.db.write() as session:
            enqueue(
                session,
                RELAY_JOB,
                {**payload, "recipients": clear},
                max_attempts=int(payload.get("max_attempts", RELAY_ATTEMPTS)),
                dedupe_key=f"relay-clear-{ctx.job_id}",
            )
        ctx.services.jobs.wake()
        clear = []
    if sealed:
        certificates = [c for r in sealed for c in known[r.lower()]]
        encrypted = await asyncio.to_thread(smime.encrypt, raw, certificates)
        await _relay(ctx, payload, sealed, await dkim_sign(encrypted, settings), message_id)
    elif clear:
        await _relay(ctx, payload, clear, await dkim_sign(raw, settings), message_id)


async def _relay(
    ctx: JobContext,
    payload: dict[str, Any],
    recipients: list[str],
    raw: bytes,
    message_id: str | None,
) -> None:
    """One SMTP transaction to the domain's operator; a DSN for what it refuses."""
    settings = ctx.services.settings
    domain = payload["domain"]
    host, port = await asyncio.to_thread(route_for, domain, ctx.services)
    trust = ctx.services.trust_store()
    try:
        context = client_context(settings, trust)
        result = await asyncio.to_thread(
            send_over_tls,
            host,
            port,
            context,
            settings.hostname,
            payload["mail_from"],
            recipients,
            raw,
            peer_name=domain,
        )
    except (OSError, smtplib.SMTPException, ssl.SSLError) as exc:
        if ctx.attempt >= int(payload.get("max_attempts", RELAY_ATTEMPTS)):
            await _bounce(
                ctx,
                payload,
                {r: (451, f"4.4.1 {host}:{port} could not be reached: {exc}") for r in recipients},
                final=True,
            )
        raise
    if result.refused:
        await _bounce(ctx, payload, result.refused, final=False)
    accepted = [r for r in recipients if r not in result.refused]
    if accepted and payload["mail_from"] and message_id:
        async with ctx.db.write() as session:
            for recipient in accepted:
                await record_status(
                    session,
                    message_id=message_id,
                    sender=payload["mail_from"],
                    recipient=recipient,
                    state="relayed",
                )
    log.info("relayed message %s to %s via %s:%s", payload["message_id"], recipients, host, port)


async def _bounce_decisions(
    ctx: JobContext, payload: dict[str, Any], refused: dict[str, Decision]
) -> None:
    """A DSN for the recipients the hub itself would not relay to, with the policy's sentences."""
    failures = [
        {
            "recipient": recipient,
            "code": decision.smtp_code,
            "status": decision.enhanced_status,
            "sentence": decision.sentence,
            "sentence_fr": decision.sentence_fr,
        }
        for recipient, decision in refused.items()
    ]
    await _enqueue_dsn(ctx, payload, failures, f"dsn-relay-policy-{ctx.job_id}")


async def _bounce(
    ctx: JobContext, payload: dict[str, Any], refused: dict[str, tuple[int, str]], *, final: bool
) -> None:
    failures = []
    for recipient, (code, text) in refused.items():
        first = (text.split() or [""])[0]
        status = (
            first if first[:1] in ("4", "5") and first.count(".") == 2 else f"{code // 100}.0.0"
        )
        if final:
            status = "5.4.1"
        failures.append(
            {
                "recipient": recipient,
                "code": 550 if final else code,
                "status": status,
                "sentence": f"The operator of {payload['domain']} refused or could not be "
                f"reached: {text}",
                "sentence_fr": f"L'opérateur de {payload['domain']} a refusé le message ou est "
                f"injoignable : {text}",
            }
        )
    await _enqueue_dsn(ctx, payload, failures, f"dsn-relay-{ctx.job_id}-{ctx.attempt}")


async def _enqueue_dsn(
    ctx: JobContext, payload: dict[str, Any], failures: list[dict[str, Any]], dedupe_key: str
) -> None:
    async with ctx.db.write() as session:
        enqueue(
            session,
            DSN_JOB,
            {
                "message_id": payload["message_id"],
                "mail_from": payload["mail_from"],
                "failures": failures,
            },
            dedupe_key=dedupe_key,
        )
