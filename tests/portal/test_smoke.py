from tests.portal.conftest import Hub, add_patient


async def test_login_with_sms_code(hub: Hub) -> None:
    await add_patient(hub.db, "180017512345678", "Martin", "Claire")
    await hub.login("180017512345678")
    response, html = await hub.page("/")
    assert response.status == 200, html
    assert "Bonjour Claire" in html
