"""A portal sign-in is what keeps a patient's mailbox from retention's purge: it records the day."""

from __future__ import annotations

from sqlalchemy import select

from mss.directory.models import Mailbox
from tests.portal.conftest import Hub, add_patient

INS = "101751234560309"


async def test_signing_in_records_the_day_of_activity(hub: Hub) -> None:
    patient = await add_patient(hub.db, INS, "Martin", "Claire")
    query = select(Mailbox.last_active_on).where(Mailbox.patient_id == patient.id)
    async with hub.db.read() as session:
        assert await session.scalar(query) is None
    hub.clock.advance(days=3)  # the portal's clock is the one that counts
    await hub.login(INS)
    async with hub.db.read() as session:
        assert await session.scalar(query) == hub.clock.now().date()
