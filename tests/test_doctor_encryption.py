"""``mss doctor``'s S/MIME encryption line: the mailboxes' encryption certificates, expiry."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from mss.config import Settings
from mss.crypto import pki
from mss.doctor import check_encryption
from tests.fixtures_pki import DevPki


def test_encryption_certificates_are_counted_then_an_expired_one_fails(
    tmp_path: Path, dev_pki: DevPki
) -> None:
    settings = Settings()
    settings.data_dir = str(tmp_path / "var")
    dev_pki.install(settings)
    none = check_encryption(settings)
    assert none.ok and "no mailbox has an encryption certificate" in none.line
    pki.issue_encryption(settings.pki_dir, "jean.dupont@mss.localhost")
    one = check_encryption(settings)
    assert one.ok and one.line == "S/MIME encryption: 1 mailbox certificates, openssl found"
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=800)
    expired = check_encryption(settings, now=later)
    assert not expired.ok
    assert "expired certificate of jean.dupont@mss.localhost" in expired.line
