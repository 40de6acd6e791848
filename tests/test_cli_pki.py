"""``mss pki ...`` as a user runs it: a real process, its output, its exit code."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from mss.crypto.certificates import id_nat_from_subject
from mss.crypto.keys import load_cert, parse_crls

MSS = Path(sys.executable).parent / "mss"


def mss(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MSS_")}
    env["MSS_DATA_DIR"] = str(tmp_path / "var")
    return subprocess.run(
        [str(MSS), "pki", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mss: "), result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("cli-hub")
    made = mss(home, "init")
    assert made.returncode == 0, made.stderr
    assert "made a RSA development PKI" in made.stdout
    return home


def test_init_is_kept_then_forced(tmp_path: Path) -> None:
    first = mss(tmp_path, "init", "--key-type", "ec")
    assert first.returncode == 0, first.stderr
    root = (tmp_path / "var" / "pki" / "root-ca.pem").read_bytes()
    again = mss(tmp_path, "init")
    assert again.returncode == 0 and "kept the existing PKI" in again.stdout
    assert (tmp_path / "var" / "pki" / "root-ca.pem").read_bytes() == root
    forced = mss(tmp_path, "init", "--force", "--key-type", "ec")
    assert forced.returncode == 0 and "made a EC development PKI" in forced.stdout
    server = load_cert(tmp_path / "var" / "pki" / "server.pem")
    assert isinstance(server.public_key(), ec.EllipticCurvePublicKey)
    assert (tmp_path / "var" / "pki" / "root-ca.pem").read_bytes() != root


def test_issue_smime_with_id_nat(hub: Path) -> None:
    issued = mss(
        hub,
        "issue",
        "jean.dupont@mss.localhost",
        "--id-nat",
        "899700367917",
        "--name",
        "Dr Jean Dupont",
        "--title",
        "Médecin",
    )
    assert issued.returncode == 0, issued.stderr
    cert_line, key_line = issued.stdout.splitlines()
    cert_path = Path(cert_line.split()[-1])
    assert cert_path.is_file() and Path(key_line.split()[-1]).is_file()
    assert id_nat_from_subject(load_cert(cert_path).subject) == "899700367917"


def test_issue_client_certificate(hub: Path) -> None:
    issued = mss(hub, "issue", "convocations@mss.localhost", "--client", "--key-type", "ec")
    assert issued.returncode == 0, issued.stderr
    assert "/issued/client/convocations@mss.localhost.pem" in issued.stdout


def test_a_professional_client_certificate_carries_the_id_nat(hub: Path) -> None:
    """What the document API reads: the idNat in the subject of a TLS client certificate."""
    from mss.crypto.certificates import id_nat_from_subject

    issued = mss(
        hub,
        "issue",
        "jean.dupont@mss.localhost",
        "--client",
        "--id-nat",
        "810001234565",
        "--name",
        "Jean Dupont",
        "--title",
        "Médecin",
        "--key-type",
        "ec",
    )
    assert issued.returncode == 0, issued.stderr
    cert = load_cert(Path(issued.stdout.splitlines()[0].split()[-1]))
    assert id_nat_from_subject(cert.subject) == "810001234565"
    assert "/issued/client/" in issued.stdout


@pytest.mark.parametrize(
    "args, sentence",
    [
        (["issue", "jean@mss.localhost", "--id-nat", "12345"], "is not an idNat"),
        (["issue", "not-an-address"], "is not an e-mail address"),
        (
            ["issue", "app@mss.localhost", "--client", "--title", "Médecin"],
            "give their --id-nat too",
        ),
        (["revoke", "zz-not-a-serial"], "neither a certificate file nor a hex serial"),
        (["revoke", "ABCDEF0123"], "was not issued"),
    ],
)
def test_refusals_are_one_sentence(hub: Path, args: list[str], sentence: str) -> None:
    assert sentence in one_line_error(mss(hub, *args))


def test_commands_before_init(tmp_path: Path) -> None:
    for args in (["issue", "a@mss.localhost"], ["crl"], ["show"], ["revoke", "AB"]):
        assert "mss pki init" in one_line_error(mss(tmp_path, *args)), args


def test_revoke_crl_and_show(hub: Path) -> None:
    issued = mss(hub, "issue", "marie.curie@mss.localhost", "--key-type", "ec")
    cert_path = Path(issued.stdout.splitlines()[0].split()[-1])
    serial = load_cert(cert_path).serial_number
    revoked = mss(hub, "revoke", str(cert_path))
    assert revoked.returncode == 0 and f"revoked serial {serial:X}" in revoked.stdout
    crl = hub / "var" / "pki" / "crl.pem"
    assert serial in {r.serial_number for r in parse_crls(crl.read_bytes())[0]}
    before = crl.read_bytes()
    reissued = mss(hub, "crl")
    assert reissued.returncode == 0 and "next update before" in reissued.stdout
    assert crl.read_bytes() != before
    assert serial in {r.serial_number for r in parse_crls(crl.read_bytes())[0]}
    shown = mss(hub, "show")
    assert shown.returncode == 0, shown.stderr
    rows = {line.split()[1]: line for line in shown.stdout.splitlines()}
    assert "revoked" in rows[format(serial, "X")]
    kinds = [line.split()[0] for line in shown.stdout.splitlines()]
    assert kinds[:4] == ["root", "intermediate", "server", "operator"]
    assert "days left" in shown.stdout


def test_export_writes_a_pkcs12_a_mail_client_imports(tmp_path: Path) -> None:
    """`mss pki export` gives Thunderbird a .p12; openssl reads it back with the password."""
    from click.testing import CliRunner

    from mss.cli import main

    env = {"MSS_DATA_DIR": str(tmp_path / "var")}
    runner = CliRunner()
    assert runner.invoke(main, ["pki", "init", "--key-type", "ec"], env=env).exit_code == 0
    assert (
        runner.invoke(
            main, ["pki", "issue", "jean.dupont@mss.localhost", "--id-nat", "801234567897"], env=env
        ).exit_code
        == 0
    )
    target = tmp_path / "jean.p12"
    done = runner.invoke(
        main,
        ["pki", "export", "jean.dupont@mss.localhost", "--out", str(target), "--password-stdin"],
        input="correct horse battery\n",
        env=env,
    )
    assert done.exit_code == 0, done.output
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    shown = subprocess.run(
        [
            "openssl",
            "pkcs12",
            "-in",
            str(target),
            "-nodes",
            "-passin",
            "pass:correct horse battery",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert (
        shown.stdout.count("BEGIN CERTIFICATE") == 3 and "PRIVATE KEY" in shown.stdout
    )  # leaf, intermediate, root
    assert "801234567897" in shown.stdout

    short = runner.invoke(
        main,
        ["pki", "export", "jean.dupont@mss.localhost", "--out", str(target), "--password-stdin"],
        input="short\n",
        env=env,
    )
    assert short.exit_code == 2 and "at least 8 characters" in short.output
    unknown = runner.invoke(
        main,
        ["pki", "export", "nobody@mss.localhost", "--password-stdin"],
        input="long enough pass\n",
        env=env,
    )
    assert (
        unknown.exit_code == 2
        and "run 'mss pki issue nobody@mss.localhost' first" in unknown.output
    )


def test_every_command_finds_the_data_folder_from_any_current_folder(tmp_path: Path) -> None:
    """The data folder of mss.toml is read from the file's folder; --data-dir names one; errors
    say where."""
    from click.testing import CliRunner

    from mss.cli import main

    home = tmp_path / "hub"
    home.mkdir()
    (home / "mss.toml").write_text('data_dir = "var"\n', encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {"MSS_CONFIG": str(home / "mss.toml")}
    runner = CliRunner()
    with pytest.MonkeyPatch.context() as cwd:
        cwd.chdir(elsewhere)
        assert runner.invoke(main, ["pki", "init", "--key-type", "ec"], env=env).exit_code == 0
        assert (
            runner.invoke(
                main,
                ["pki", "issue", "jean.dupont@mss.localhost", "--id-nat", "801234567897"],
                env=env,
            ).exit_code
            == 0
        )
        done = runner.invoke(
            main,
            ["pki", "export", "jean.dupont@mss.localhost", "--out", "j.p12", "--password-stdin"],
            input="correct horse battery\n",
            env=env,
        )
        assert done.exit_code == 0, done.output
    assert (home / "var" / "pki" / "root-ca.pem").is_file()
    assert not (elsewhere / "var").exists()

    by_flag = runner.invoke(
        main,
        [
            "--data-dir",
            str(home / "var"),
            "pki",
            "export",
            "jean.dupont@mss.localhost",
            "--out",
            str(tmp_path / "k.p12"),
            "--password-stdin",
        ],
        input="correct horse battery\n",
        env={},
    )
    assert by_flag.exit_code == 0, by_flag.output
    missing = runner.invoke(
        main,
        [
            "--data-dir",
            str(tmp_path / "empty"),
            "pki",
            "export",
            "jean.dupont@mss.localhost",
            "--password-stdin",
        ],
        input="correct horse battery\n",
        env={},
    )
    assert missing.exit_code == 2
    assert str((tmp_path / "empty" / "pki").resolve()) in missing.output


def test_issue_encryption_certificate_and_export_it_with_the_signing_one(hub: Path) -> None:
    """`mss pki issue --encryption`: an RSA keyEncipherment certificate beside the signing one;
    `mss pki export` writes it (public) next to the .p12, for the senders that encrypt."""
    from cryptography import x509

    address = "chiffre@mss.localhost"
    done = mss(hub, "issue", address, "--encryption", "--key-type", "ec")
    assert done.returncode == 0, done.stderr
    assert "encryption  " in done.stdout and "issued/encryption/" in done.stdout
    sealed = load_cert(hub / "var" / "pki" / "issued" / "encryption" / f"{address}.pem")
    usage = sealed.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_encipherment and not usage.digital_signature
    assert sealed.public_key().key_size >= 2048  # RSA whatever the signing key's type
    signing = load_cert(hub / "var" / "pki" / "issued" / "smime" / f"{address}.pem")
    assert isinstance(signing.public_key(), ec.EllipticCurvePublicKey)
    exported = subprocess.run(
        [str(MSS), "pki", "export", address, "--out", "c.p12", "--password-stdin"],
        cwd=hub,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("MSS_")},
            "MSS_DATA_DIR": str(hub / "var"),
        },
        input="correct horse battery\n",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert exported.returncode == 0, exported.stderr
    assert "c.encryption.pem (the encryption certificate" in exported.stdout
    assert load_cert(hub / "c.encryption.pem") == sealed
    assert "PRIVATE KEY" not in (hub / "c.encryption.pem").read_text()
    refused = mss(hub, "issue", address, "--encryption", "--client")
    assert one_line_error(refused).endswith(
        "--encryption issues an S/MIME certificate: not with --client"
    )
