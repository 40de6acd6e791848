"""The hub as a person runs it: mss init --demo, demo accounts, doctor, serve, and their
refusals."""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

MSS = [sys.executable, "-m", "mss"]
PORT_KEYS = ("smtp_relay", "submission", "submission_tls", "imap", "imaps", "https")


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def hub_env(tmp_path: Path, database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MSS_")}
    env.update(MSS_DATA_DIR=str(tmp_path / "var"), MSS_DATABASE_URL=database_url)
    for key, port in zip(PORT_KEYS, free_ports(len(PORT_KEYS)), strict=True):
        env[f"MSS_PORTS_{key.upper()}"] = str(port)
    return env


def mss(
    env: dict[str, str], *args: str, cwd: Path, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MSS, *args],
        check=False,
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def wait_listening(server: subprocess.Popen[str], port: int, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            output = server.stdout.read() if server.stdout else ""
            raise AssertionError(
                f"mss serve exited with {server.returncode} before listening:\n{output}"
            )
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssertionError(f"nothing listens on {port} after {timeout} s")


def test_init_demo_accounts_doctor_and_serve(tmp_path: Path, database_url: str) -> None:
    env = hub_env(tmp_path, database_url)
    done = mss(env, "init", "--demo", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "demo data created: 9 accounts" in done.stdout

    again = mss(env, "init", "--demo", cwd=tmp_path)
    assert again.returncode == 0 and "demo data already present" in again.stdout

    accounts = json.loads(mss(env, "demo", "accounts", "--json", cwd=tmp_path).stdout)
    roles = sorted(a["role"] for a in accounts)
    assert roles == sorted(
        [
            "doctor (médecin traitant)",
            "doctor (cardiologist)",
            "pharmacist",
            "cardiology service (ORG)",
            "hospital convocations (APP)",
            "pharmacy (ORG)",
            "patient",
            "patient (guardian)",
            "patient (minor)",
        ]
    )
    for account in accounts:
        assert account["password"] and account["address"]
        assert Path(account["encryption_certificate"]).is_file()  # peers encrypt to it
        if account["role"].startswith("patient"):
            assert len(account["ins"]) == 15 and account["address"].startswith(account["ins"])
            # the portal takes the INS or the e-mail as the login: both are listed
            assert account["login"] == account["ins"] and account["email"].endswith(".org")
        else:
            assert Path(account["certificate"]).is_file() and Path(account["key"]).is_file()
            assert oct(Path(account["key"]).stat().st_mode & 0o777) == "0o600"
    app = next(a for a in accounts if "APP" in a["role"])
    assert Path(app["client_certificate"]).is_file()
    assert all(
        a["id_nat"].startswith("8")
        for a in accounts
        if a["role"].startswith(("doctor", "pharm")) and "id_nat" in a
    )

    doctor = mss(env, "doctor", cwd=tmp_path)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert all(line.startswith("OK") for line in doctor.stdout.splitlines()), doctor.stdout
    assert (
        "argon2id m=19456 KiB t=2 p=1, verified logins remembered 300 s per process"
        in doctor.stdout
    )
    assert "S/MIME encryption: 9 mailbox certificates, openssl found" in doctor.stdout

    server = subprocess.Popen(
        [*MSS, "serve"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        for key in PORT_KEYS:
            wait_listening(server, int(env[f"MSS_PORTS_{key.upper()}"]))
        doctor = mss(env, "doctor", cwd=tmp_path)
        assert doctor.returncode == 0, doctor.stdout
        assert doctor.stdout.count(": listening") == len(PORT_KEYS)

        context = ssl.create_default_context(cafile=str(tmp_path / "var" / "pki" / "root-ca.pem"))
        url = f"https://localhost:{env['MSS_PORTS_HTTPS']}/fhir/Practitioner?name=Dupont"
        with urllib.request.urlopen(url, context=context, timeout=10) as response:
            bundle = json.load(response)
        assert bundle["total"] == 1
        assert bundle["entry"][0]["resource"]["name"][0]["family"].upper() == "DUPONT"

        # The README's document-API call, as written there: the doctor's client certificate
        # carries the idNat.
        pki_dir = tmp_path / "var" / "pki"
        client = pki_dir / "issued" / "client" / "jean.dupont@mss.localhost"
        curl = subprocess.run(
            [
                "curl",
                "--silent",
                "--show-error",
                "--cacert",
                str(pki_dir / "root-ca.pem"),
                "--cert",
                f"{client}.pem",
                "--key",
                f"{client}.key",
                (
                    f"https://localhost:{env['MSS_PORTS_HTTPS']}/fhir/DocumentReference?"
                    "patient.identifier=urn:oid:1.2.250.1.213.1.4.8|285037505612306"
                ),
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert curl.returncode == 0, curl.stderr
        found = json.loads(curl.stdout)
        assert (found["resourceType"], found["type"]) == ("Bundle", "searchset"), curl.stdout
        # The demo pharmacy's two eDISP-MED dispensations, and their three items as
        # MedicationDispense; the allergy the médecin traitant recorded, with its author.
        types = [e["resource"]["type"]["coding"][0]["code"] for e in found["entry"]]
        assert types.count("60593-1") == 2, types
        # and the demo's two reports: a consultation (with its PDF) and a blood test
        assert sorted(t for t in types if t != "60593-1") == ["11488-4", "11502-2"], types
        demo_ins = "urn:oid:1.2.250.1.213.1.4.8|285037505612306"
        for kind, expected in (("MedicationDispense", 3), ("AllergyIntolerance", 1)):
            answer = subprocess.run(
                [
                    *("curl", "--silent", "--show-error", "--cacert", str(pki_dir / "root-ca.pem")),
                    *("--cert", f"{client}.pem", "--key", f"{client}.key"),
                    f"https://localhost:{env['MSS_PORTS_HTTPS']}/fhir/{kind}?"
                    f"patient.identifier={demo_ins}",
                ],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            bundle = json.loads(answer.stdout)
            assert bundle["total"] == expected, answer.stdout
        recorder = bundle["entry"][0]["resource"]["recorder"]
        assert recorder["identifier"]["value"] == "810001234565", recorder
        assert recorder["display"] == "Dr Jean Dupont"

        # A client certificate from a CA the hub does not trust gets an answer with the reason
        # (and a log line, checked below), not an empty reply.
        rogue = tmp_path / "rogue"
        subprocess.run(
            [
                *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt"),
                *("ec_paramgen_curve:P-256", "-nodes", "-days", "1"),
                *("-keyout", f"{rogue}.key", "-out", f"{rogue}.pem", "-subj", "/CN=rogue"),
            ],
            check=True,
            capture_output=True,
        )
        refused = subprocess.run(
            [
                *("curl", "--silent", "--show-error", "--cacert", str(pki_dir / "root-ca.pem")),
                *("--cert", f"{rogue}.pem", "--key", f"{rogue}.key", "--write-out", "%{http_code}"),
                (
                    f"https://localhost:{env['MSS_PORTS_HTTPS']}/fhir/DocumentReference?"
                    "patient.identifier=urn:oid:1.2.250.1.213.1.4.8|285037505612306"
                ),
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert refused.returncode == 0, refused.stderr
        assert refused.stdout.endswith("401"), refused.stdout
        assert "client certificate refused: " in refused.stdout, refused.stdout

        autoconfig = f"https://localhost:{env['MSS_PORTS_HTTPS']}/.well-known/autoconfig/mail/config-v1.1.xml"
        with urllib.request.urlopen(autoconfig, context=context, timeout=10) as response:
            xml = response.read().decode()
        assert f"<port>{env['MSS_PORTS_IMAPS']}</port>" in xml
        assert f"<port>{env['MSS_PORTS_SUBMISSION_TLS']}</port>" in xml

        second = mss(env, "serve", cwd=tmp_path, timeout=60)
        assert second.returncode == 4
        assert "is already in use" in second.stderr and "Traceback" not in second.stderr
        assert len(second.stderr.strip().splitlines()) == 1, second.stderr
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=30)
    assert server.returncode == 0, output
    assert "jean.dupont@mss.localhost" in output and "Traceback" not in output
    assert "285037505612306 or marie.durand@example.org" in output  # the banner's demo logins
    assert "document API: client certificate of CN=rogue refused from 127.0.0.1: " in output


@pytest.mark.parametrize(
    "url, expected",
    [
        ("postgresql+asyncpg://postgres@127.0.0.1:9/none", "cannot use the database"),
        ("sqlite+aiosqlite:////nonexistent-dir/sub/x.sqlite3", "does not exist: run 'mss init'"),
    ],
)
def test_unreachable_database_is_one_line(tmp_path: Path, url: str, expected: str) -> None:
    env = hub_env(tmp_path, url)
    done = mss(env, "demo", "accounts", cwd=tmp_path)
    assert done.returncode == 2 and "no demo data" in done.stderr
    done = mss(env, "mailbox", "passwd", "x@mss.localhost", "--password-stdin", cwd=tmp_path)
    assert done.returncode == 3, done.stderr
    assert expected in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_doctor_names_what_is_missing(tmp_path: Path) -> None:
    env = hub_env(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'empty.sqlite3'}")
    done = mss(env, "doctor", cwd=tmp_path)
    assert done.returncode == 1
    failed = [line for line in done.stdout.splitlines() if line.startswith("FAIL")]
    assert any("no schema yet, run 'mss db upgrade'" in line for line in failed)
    assert any("server certificate" in line and "mss pki init" in line for line in failed)


async def test_the_banner_names_only_the_listeners_that_run(settings, db) -> None:  # type: ignore[no-untyped-def]
    from mss.setup import describe_listeners

    settings.ports.imap, settings.ports.imaps, settings.ports.submission = 2143, 2993, 2587
    settings.listeners.imap = False
    settings.listeners.smtp_relay = False
    settings.listeners.https = False
    lines = "\n".join(await describe_listeners(settings, db))
    assert "IMAP              localhost:2993 (TLS)\n" in lines
    assert "2143" not in lines
    assert "SMTP relay        off (listeners in mss.toml)" in lines
    assert "portal and APIs   off (listeners in mss.toml)" in lines
    assert "SMTP submission   localhost:2587 (STARTTLS), localhost:0 (TLS)" in lines


async def test_the_development_server_certificate_names_autoconfig(settings) -> None:  # type: ignore[no-untyped-def]
    """Thunderbird asks https://autoconfig.<domain>/: the development certificate must name it."""
    from cryptography import x509

    from mss.setup import initialise

    await initialise(settings, demo=False)
    cert = x509.load_pem_x509_certificate(settings.server_cert_file.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert f"autoconfig.{settings.domain}" in names.get_values_for_type(x509.DNSName)
