"""Sending is activity for retention: SMTP AUTH and an information system's certificate record the
day."""

from __future__ import annotations

from sqlalchemy import select

from mss.db import utcnow
from mss.directory.models import Mailbox
from tests.smtp.conftest import APP, DOCTOR, OTHER_DOCTOR, Hub, message


async def _last_active(hub: Hub, address: str) -> object:
    async with hub.db.read() as session:
        return await session.scalar(
            select(Mailbox.last_active_on).where(Mailbox.address == address)
        )


async def test_auth_records_the_day_of_activity(hub: Hub) -> None:
    assert await _last_active(hub, DOCTOR) is None
    client = await hub.login_client()
    errors, _ = await client.sendmail(DOCTOR, [OTHER_DOCTOR], message(DOCTOR, OTHER_DOCTOR))
    await client.quit()
    assert errors == {}
    assert await _last_active(hub, DOCTOR) == utcnow().date()
    assert await _last_active(hub, OTHER_DOCTOR) is None  # receiving is not using the mailbox


async def test_a_client_certificate_login_records_the_day_of_activity(hub: Hub) -> None:
    client = hub.client("submission_tls", identity=hub.pki.issue_client(APP))
    await client.connect()
    errors, _ = await client.sendmail(APP, [DOCTOR], message(APP, DOCTOR, subject="Convocation"))
    await client.quit()
    assert errors == {}
    assert await _last_active(hub, APP) == utcnow().date()
