"""The development PKI and the TrustStore: what an operator would check with openssl."""

from __future__ import annotations

import datetime as dt
import ipaddress
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mss.config import Settings
from mss.crypto import dkim, pki
from mss.crypto.certificates import id_nat_from_subject, professional_subject, siret_like
from mss.crypto.keys import load_cert, load_certs, parse_crls
from mss.crypto.trust import TrustStore
from mss.errors import ConfigError, InvalidInput
from tests.fixtures_pki import DevPki, Identity

OPENSSL = "/usr/bin/openssl"
NOW = dt.datetime.now(dt.UTC)


def openssl_verify(
    layout: pki.PkiLayout, cert: Path, purpose: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            OPENSSL,
            "verify",
            "-CAfile",
            str(layout.root_cert),
            "-untrusted",
            str(layout.intermediate_cert),
            "-crl_check_all",
            "-CRLfile",
            str(layout.crl),
            "-purpose",
            purpose,
            str(cert),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def eku(cert: x509.Certificate) -> set[x509.ObjectIdentifier]:
    return set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


@pytest.fixture(scope="module", params=["rsa", "ec"])
def fresh_pki(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> pki.PkiLayout:
    directory = tmp_path_factory.mktemp(f"pki-{request.param}") / "pki"
    return pki.init_pki(
        directory,
        ["hub.example.fr", "mss.example.fr"],
        operator_domain="mss.example.fr",
        key_type=request.param,
    )


def test_init_makes_the_whole_layout(fresh_pki: pki.PkiLayout) -> None:
    layout = fresh_pki
    for path in (
        layout.root_cert,
        layout.intermediate_cert,
        layout.chain,
        layout.server.cert,
        layout.operator.cert,
        layout.crl,
        layout.root_crl,
        layout.intermediate_crl,
        layout.index,
    ):
        assert path.is_file(), path
    for key in (layout.root_key, layout.intermediate_key, layout.server.key, layout.operator.key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    assert stat.S_IMODE(layout.root.stat().st_mode) == 0o700
    dkim_key = layout.root / "dkim" / "mss.example.fr.dev.key"
    assert stat.S_IMODE(dkim_key.stat().st_mode) == 0o600
    assert dkim.load_signing_key(layout.root, "mss.example.fr", "dev").algorithm == "ed25519"


def test_key_types(fresh_pki: pki.PkiLayout) -> None:
    key = load_cert(fresh_pki.server.cert).public_key()
    root_key = load_cert(fresh_pki.root_cert).public_key()
    assert type(key) is type(root_key) or isinstance(key, type(root_key))
    if isinstance(key, rsa.RSAPublicKey):
        assert key.key_size == 2048
    else:
        assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1"


def test_server_certificate(fresh_pki: pki.PkiLayout) -> None:
    certs = load_certs(fresh_pki.server.cert)
    assert len(certs) == 2  # leaf then intermediate, ready for a TLS server
    san = certs[0].extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {
        "localhost",
        "hub.example.fr",
        "mss.example.fr",
    }
    assert set(san.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    }
    assert eku(certs[0]) == {ExtendedKeyUsageOID.SERVER_AUTH}
    checked = openssl_verify(fresh_pki, fresh_pki.server.cert, "sslserver")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_operator_certificate(fresh_pki: pki.PkiLayout) -> None:
    cert = load_cert(fresh_pki.operator.cert)
    text = cert.subject.rfc4514_string()
    assert text.startswith("CN=mss.example.fr,OU=") and text.endswith(
        ",O=MSS hub dev operator,C=FR"
    )
    siret = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value
    assert siret == siret_like("mss.example.fr") and len(str(siret)) == 14
    assert eku(cert) == {ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH}
    for purpose in ("sslclient", "sslserver"):
        checked = openssl_verify(fresh_pki, fresh_pki.operator.cert, purpose)
        assert checked.returncode == 0, checked.stdout + checked.stderr


def test_init_is_idempotent_unless_forced(tmp_path: Path) -> None:
    layout = pki.init_pki(tmp_path / "pki", ["localhost"], key_type="ec")
    root, server = layout.root_cert.read_bytes(), layout.server.cert.read_bytes()
    layout.operator.cert.unlink()
    pki.init_pki(tmp_path / "pki", ["localhost"], key_type="ec")
    assert layout.root_cert.read_bytes() == root and layout.server.cert.read_bytes() == server
    assert layout.operator.cert.is_file()  # a missing piece is made again
    pki.init_pki(tmp_path / "pki", ["localhost"], key_type="ec", force=True)
    assert layout.root_cert.read_bytes() != root


def test_smime_certificate_carries_the_id_nat(dev_pki: DevPki, tmp_path: Path) -> None:
    doctor = dev_pki.issue_smime(
        "jean.dupont@mss.localhost", "899700367917", common_name="Dr Jean Dupont", key_type="rsa"
    )
    cert = doctor.cert
    assert eku(cert) == {ExtendedKeyUsageOID.EMAIL_PROTECTION}
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.key_encipherment
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.RFC822Name) == ["jean.dupont@mss.localhost"]
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "899700367917"
    assert cert.subject.get_attributes_for_oid(NameOID.SURNAME)[0].value == "DUPONT"
    assert cert.subject.get_attributes_for_oid(NameOID.GIVEN_NAME)[0].value == "JEAN"
    assert id_nat_from_subject(cert.subject) == "899700367917"
    checked = openssl_verify(dev_pki.layout, doctor.cert_path, "smimesign")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_id_nat_forms() -> None:
    assert id_nat_from_subject(professional_subject("0012345678", None, None)) == "0012345678"
    legacy = x509.Name(
        [
            x509.NameAttribute(NameOID.SERIAL_NUMBER, "810001234567"),
            x509.NameAttribute(NameOID.COMMON_NAME, "DUPONT JEAN"),
        ]
    )
    assert id_nat_from_subject(legacy) == "810001234567"
    plain = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cardiologie@mss.localhost")])
    assert id_nat_from_subject(plain) is None


def test_ec_smime_key_usage(dev_pki: DevPki) -> None:
    cert = dev_pki.issue_smime("ec.user@mss.localhost", key_type="ec").cert
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_encipherment
    assert (
        cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "ec.user@mss.localhost"
    )


def test_client_and_second_operator(dev_pki: DevPki) -> None:
    app = dev_pki.issue_client("convocations@mss.localhost")
    assert eku(app.cert) == {ExtendedKeyUsageOID.CLIENT_AUTH}
    assert dev_pki.trust.verify(app.cert, app.chain, usage="tls_client").status == "valid"
    assert dev_pki.trust.verify(app.cert, app.chain, usage="smime").status == "bad_eku"
    other = dev_pki.issue_operator("other-operator.example.fr")
    assert (
        other.cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        == "other-operator.example.fr"
    )
    for usage_name in ("tls_client", "tls_server"):
        assert dev_pki.trust.verify(other.cert, other.chain, usage=usage_name).ok  # type: ignore[arg-type]


def test_bad_address_is_refused(dev_pki: DevPki) -> None:
    with pytest.raises(InvalidInput, match="not an e-mail address"):
        pki.issue_smime(dev_pki.dir, "not an address")


def test_revoke_by_file_and_by_serial(tmp_path: Path) -> None:
    layout = pki.init_pki(tmp_path / "pki", ["localhost"], key_type="ec")
    trust = TrustStore.from_pki(layout.root)
    by_file = Identity.load(pki.issue_client(layout.root, "a@mss.localhost"))
    by_serial = Identity.load(pki.issue_smime(layout.root, "b@mss.localhost"))
    pki.revoke(layout.root, by_file.cert_path)
    pki.revoke(layout.root, f"0x{by_serial.serial.lower()}")
    trust.reload()
    assert trust.verify(by_file.cert, by_file.chain, usage="tls_client").status == "revoked"
    assert trust.verify(by_serial.cert, by_serial.chain).status == "revoked"
    inter_crl, root_crl = parse_crls(layout.crl.read_bytes())
    inter = load_cert(layout.intermediate_cert)
    assert inter_crl.issuer == inter.subject
    assert inter_crl.is_signature_valid(inter.public_key())  # type: ignore[arg-type]
    assert {r.serial_number for r in inter_crl} == {
        by_file.cert.serial_number,
        by_serial.cert.serial_number,
    }
    assert root_crl.issuer == load_cert(layout.root_cert).subject and len(root_crl) == 0
    assert inter_crl.next_update_utc is not None and inter_crl.next_update_utc > NOW
    checked = openssl_verify(layout, by_file.cert_path, "sslclient")
    assert checked.returncode != 0 and "revoked" in checked.stdout + checked.stderr


def test_revoking_the_intermediate_revokes_every_leaf(tmp_path: Path) -> None:
    layout = pki.init_pki(tmp_path / "pki", ["localhost"], key_type="ec")
    leaf = Identity.load(pki.issue_smime(layout.root, "c@mss.localhost"))
    pki.revoke(layout.root, layout.intermediate_cert)
    root_crl = parse_crls(layout.root_crl.read_bytes())[0]
    assert len(root_crl) == 1
    result = TrustStore.from_pki(layout.root).verify(leaf.cert, leaf.chain)
    assert result.status == "revoked" and "Intermediate CA" in result.reason


def test_revoke_refusals(tmp_path: Path) -> None:
    layout = pki.init_pki(tmp_path / "pki", ["localhost"], key_type="ec")
    with pytest.raises(InvalidInput, match="was not issued"):
        pki.revoke(layout.root, "DEADBEEF")
    with pytest.raises(InvalidInput, match="neither"):
        pki.revoke(layout.root, "not-a-serial")
    with pytest.raises(InvalidInput, match="root CA cannot be revoked"):
        pki.revoke(layout.root, layout.root_cert)
    with pytest.raises(InvalidInput, match="mss pki init"):
        pki.issue_smime(tmp_path / "nowhere", "x@mss.localhost")


def test_crl_is_reissued_with_a_fresh_next_update(tmp_path: Path) -> None:
    layout = pki.make_ca(tmp_path / "ca", "Test", key_type="ec")
    pki.write_crls(layout.root, at=NOW - dt.timedelta(days=30))
    old = parse_crls(layout.crl.read_bytes())[0]
    assert old.next_update_utc is not None and old.next_update_utc < NOW
    assert TrustStore.from_pki(layout.root).stale_crls()
    target = pki.write_crls(layout.root, crl_path=tmp_path / "elsewhere" / "crl.pem")
    new = parse_crls(target.read_bytes())[0]
    assert new.next_update_utc is not None and new.next_update_utc > NOW
    number = new.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    assert number > old.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


def test_list_certificates(tmp_path: Path) -> None:
    layout = pki.init_pki(tmp_path / "pki", ["localhost"], key_type="ec")
    issued = pki.issue_smime(layout.root, "d@mss.localhost")
    pki.revoke(layout.root, issued.cert)
    entries = pki.list_certificates(layout.root)
    assert [e.kind for e in entries] == ["root", "intermediate", "server", "operator", "smime"]
    assert entries[-1].revoked_at is not None and entries[0].revoked_at is None
    assert all(e.not_after > NOW for e in entries)


# --- TrustStore sources --------------------------------------------------------------------


def test_trust_store_from_settings(tmp_path: Path, dev_pki: DevPki, untrusted_pki: DevPki) -> None:
    settings = Settings()
    settings.data_dir = str(tmp_path / "var")
    stranger = untrusted_pki.issue_smime("x@rogue.example")
    assert TrustStore.from_settings(settings, repo_trust_dir=None).anchors == []

    dev_pki.install(settings)
    store = TrustStore.from_settings(settings, repo_trust_dir=None)
    assert len(store.anchors) == 1 and len(store.intermediates) == 1 and len(store.crls) == 2
    assert store.verify(stranger.cert, stranger.chain).status == "unknown_ca"

    repo_trust = tmp_path / "certs-trust"
    repo_trust.mkdir()
    shutil.copy(untrusted_pki.root_cert, repo_trust / "partner-root.pem")
    store = TrustStore.from_settings(settings, repo_trust_dir=repo_trust)
    assert store.verify(stranger.cert, stranger.chain).status == "valid"

    extra = tmp_path / "trust.d"
    extra.mkdir()
    settings.tls.trust_dir = str(extra)
    store = TrustStore.from_settings(settings, repo_trust_dir=None)
    assert store.verify(stranger.cert, stranger.chain).status == "unknown_ca"
    shutil.copy(untrusted_pki.root_cert, extra / "partner.crt")
    store.reload()
    assert store.verify(stranger.cert, stranger.chain).status == "valid"


def test_repository_trust_folder_loads(dev_pki: DevPki) -> None:
    settings = Settings()
    settings.data_dir = str(dev_pki.dir.parent / "no-such-var")
    TrustStore.from_settings(settings)  # certs/trust/ exists, may be empty, must parse


def test_unreadable_anchor_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "broken.pem").write_text(
        "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"
    )
    with pytest.raises(ConfigError, match="broken.pem"):
        TrustStore([tmp_path])


def test_expired_intermediate(tmp_path: Path) -> None:
    old = pki.make_ca(
        tmp_path / "old",
        "Old",
        key_type="ec",
        not_before=NOW - dt.timedelta(days=900),
        not_after=NOW + dt.timedelta(days=1),
    )
    leaf = Identity.load(pki.issue_smime(old.root, "e@mss.localhost"))
    store = TrustStore.from_pki(old.root)
    assert store.verify(leaf.cert, leaf.chain).status == "valid"
    later = NOW + dt.timedelta(days=2)
    assert leaf.cert.not_valid_after_utc > later
    assert store.verify(leaf.cert, leaf.chain, at=later).status == "expired"


def test_private_keys_are_ignored_by_git() -> None:
    repo = Path(__file__).resolve().parents[1]
    ignored = subprocess.run(
        ["git", "check-ignore", "var/pki/root-ca.key", "certs/trust/x.key"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
    )
    assert ignored.stdout.split() == ["var/pki/root-ca.key", "certs/trust/x.key"]
