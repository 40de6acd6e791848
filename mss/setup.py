"""First-run set-up: data folder, schema, development PKI, demo data."""

from __future__ import annotations

from sqlalchemy import func, select

from mss.command import safe_url
from mss.config import Settings
from mss.db import Database
from mss.migrate import upgrade_async


async def needs_initialisation(settings: Settings) -> bool:
    """True on a fresh data folder: no schema yet or no server certificate."""
    if not settings.server_cert_file.is_file():
        return True
    db = Database(settings.effective_database_url)
    try:
        async with db.read() as session:
            from sqlalchemy import text

            await session.execute(text("SELECT version_num FROM alembic_version"))
    except Exception:  # noqa: BLE001 - any failure here means "not set up yet" or is reported by serve
        return True
    finally:
        await db.dispose()
    return False


async def initialise(settings: Settings, *, demo: bool) -> list[str]:
    """Create what a hub needs to start; safe to run again (nothing is overwritten)."""
    from mss.crypto import pki

    lines: list[str] = []
    settings.data_path.mkdir(parents=True, exist_ok=True)
    url = settings.effective_database_url
    await upgrade_async(url)
    lines.append(f"database ready: {safe_url(url)}")
    existed = settings.server_cert_file.is_file()
    pki.init_pki(
        settings.pki_dir,
        pki_hostnames(settings),
        operator_domain=settings.domain,
        crl_path=settings.crl_path,
    )
    lines.append(
        ("development PKI already in " if existed else "development PKI created in ")
        + str(settings.pki_dir)
    )
    if demo:
        from mss.demo import create_demo

        db = Database(url)
        try:
            lines += await create_demo(settings, db)
        finally:
            await db.dispose()
    return lines


def pki_hostnames(settings: Settings) -> list[str]:
    names = [
        settings.hostname,
        settings.domain,
        f"imap.{settings.domain}",
        f"smtp.{settings.domain}",
        f"autoconfig.{settings.domain}",
        "localhost",
    ]  # Thunderbird asks autoconfig.<domain>
    return list(dict.fromkeys(names))


async def describe_listeners(settings: Settings, db: Database) -> list[str]:
    """What a person needs to connect: ports and, with demo data, the logins."""
    from mss.directory.models import Mailbox

    p, on, host = settings.ports, settings.listeners, settings.hostname

    def ports(*pairs: tuple[bool, int, str]) -> str:
        shown = [f"{host}:{port} ({how})" for enabled, port, how in pairs if enabled]
        return ", ".join(shown) if shown else "off (listeners in mss.toml)"

    portal = f"https://{host}:{p.https}/" if on.https else "off (listeners in mss.toml)"
    submission = ports(
        (on.submission, p.submission, "STARTTLS"), (on.submission_tls, p.submission_tls, "TLS")
    )
    lines = [
        f"MSS hub on {settings.bind}, data in {settings.data_path.resolve()}",
        f"  portal and APIs   {portal}",
        f"  SMTP submission   {submission}",
        f"  IMAP              {ports((on.imap, p.imap, 'STARTTLS'), (on.imaps, p.imaps, 'TLS'))}",
        f"  SMTP relay        "
        f"{ports((on.smtp_relay, p.smtp_relay, 'operators, client certificate'))}",
    ]
    async with db.read() as session:
        count = (await session.execute(select(func.count()).select_from(Mailbox))).scalar_one()
    lines.append(f"  {count} mailboxes in the directory")
    from mss.demo import demo_accounts_file, demo_login, load_demo_accounts

    if demo_accounts_file(settings).is_file():
        lines.append("Demo logins (all of them: mss demo accounts --json):")
        for account in load_demo_accounts(settings):
            login = demo_login(account)
            lines.append(f"  {account['role']:<28} {login:<44} password {account['password']}")
    return lines
