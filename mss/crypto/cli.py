"""``mss pki``: the development PKI."""

from __future__ import annotations

import datetime as dt
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click

from mss.command import hub_command
from mss.config import Settings
from mss.crypto.keys import KEY_TYPES, KeyType
from mss.errors import InvalidInput

KEY_TYPE = click.Choice(KEY_TYPES)  # the values of KeyType
_ID_NAT = re.compile(r"8\d{11}|0[0-9A-Z]{9}")


@click.group()
def pki() -> None:
    """Development PKI: CAs, server, operator and S/MIME certificates, CRL."""


@contextmanager
def _as_sentence(what: str) -> Iterator[None]:
    """File and format errors of the PKI become one sentence and exit code 2."""
    try:
        yield
    except (OSError, ValueError, TypeError) as exc:
        raise InvalidInput(f"cannot {what}: {exc}") from None


@pki.command("init")
@click.option("--key-type", type=KEY_TYPE, default="rsa", show_default=True)
@click.option("--force", is_flag=True, help="Replace an existing PKI (every issued certificate).")
@hub_command
async def init_command(settings: Settings, key_type: KeyType, force: bool) -> None:
    """Make the root and intermediate CAs, the hub's TLS certificate and the operator
    certificate."""
    from mss.crypto.keys import load_cert
    from mss.crypto.pki import PkiLayout, init_pki

    existed = PkiLayout(settings.pki_dir).exists()
    with _as_sentence(f"make the PKI in {settings.pki_dir}"):
        layout = init_pki(
            settings.pki_dir,
            [settings.hostname, settings.domain],
            operator_domain=settings.domain,
            key_type=key_type,
            force=force,
            crl_path=settings.crl_path,
        )
        operator = load_cert(layout.operator.cert).subject.rfc4514_string()
    if existed and not force:
        click.echo(f"kept the existing PKI in {layout.root} (use --force to replace it)")
    else:
        click.echo(f"made a {key_type.upper()} development PKI in {layout.root}")
    click.echo(f"  root CA           {layout.root_cert}")
    click.echo(f"  server (TLS)      {layout.server.cert}")
    click.echo(f"  operator          {layout.operator.cert}  ({operator})")
    click.echo(f"  CRL               {settings.crl_path}")


@pki.command("issue")
@click.argument("address")
@click.option("--id-nat", default=None, help="The holder's idNat (8 + RPPS, or 0 + ADELI).")
@click.option(
    "--name", "common_name", default=None, help='The holder\'s name, e.g. "Dr Jean Dupont".'
)
@click.option("--title", default=None, help="The profession, e.g. Médecin.")
@click.option(
    "--client",
    is_flag=True,
    help="A TLS client certificate instead of S/MIME: an APP mailbox's, or with --id-nat a "
    "professional's (the document API).",
)
@click.option(
    "--encryption",
    is_flag=True,
    help="Also issue the mailbox's S/MIME encryption certificate (RSA, keyEncipherment): "
    "peers encrypt to it and the hub decrypts at the gateway.",
)
@click.option("--key-type", type=KEY_TYPE, default=None, help="Default: the CA's key type.")
@hub_command
async def issue_command(
    settings: Settings,
    address: str,
    id_nat: str | None,
    common_name: str | None,
    title: str | None,
    client: bool,
    encryption: bool,
    key_type: KeyType | None,
) -> None:
    """Issue an S/MIME certificate for ADDRESS (or a client certificate with --client)."""
    from mss.crypto.pki import issue_client, issue_encryption, issue_smime

    if client and encryption:
        raise InvalidInput("--encryption issues an S/MIME certificate: not with --client")

    if id_nat is not None and not _ID_NAT.fullmatch(id_nat):
        raise InvalidInput(
            f"{id_nat!r} is not an idNat: expected 8 followed by the 11-digit "
            "RPPS, or 0 followed by the 9-character ADELI"
        )
    if client and title and not id_nat:
        raise InvalidInput("--title describes a professional: give their --id-nat too")
    with _as_sentence(f"issue a certificate for {address}"):
        if client:
            issued = issue_client(
                settings.pki_dir,
                address,
                id_nat=id_nat,
                common_name=common_name,
                title=title,
                key_type=key_type,
            )
        else:
            issued = issue_smime(
                settings.pki_dir,
                address,
                id_nat=id_nat,
                common_name=common_name,
                title=title,
                key_type=key_type,
            )
        sealed = (
            issue_encryption(settings.pki_dir, address, common_name=common_name)
            if encryption
            else None
        )
    click.echo(f"certificate {issued.cert}")
    click.echo(f"key         {issued.key}")
    if sealed is not None:
        click.echo(f"encryption  {sealed.cert}")
        click.echo(f"            {sealed.key}")


@pki.command("revoke")
@click.argument("cert_or_serial")
@hub_command
async def revoke_command(settings: Settings, cert_or_serial: str) -> None:
    """Revoke a certificate (its PEM file or hex serial) and rewrite the CRL."""
    from mss.crypto.pki import revoke

    with _as_sentence(f"revoke {cert_or_serial}"):
        serial = revoke(settings.pki_dir, cert_or_serial, crl_path=settings.crl_path)
    click.echo(f"revoked serial {serial:X}; CRL rewritten at {settings.crl_path}")


@pki.command("crl")
@hub_command
async def crl_command(settings: Settings) -> None:
    """Sign the CRLs again with a fresh nextUpdate."""
    from mss.crypto.pki import CRL_VALIDITY, PkiLayout, write_crls

    if not PkiLayout(settings.pki_dir).exists():
        raise InvalidInput(f"no PKI in {settings.pki_dir}: run 'mss pki init' first")
    with _as_sentence("write the CRL"):
        path = write_crls(settings.pki_dir, crl_path=settings.crl_path)
    next_update = dt.datetime.now(dt.UTC) + CRL_VALIDITY
    click.echo(f"CRL written at {path}, next update before {next_update:%Y-%m-%d %H:%M} UTC")


@pki.command("show")
@hub_command
async def show_command(settings: Settings) -> None:
    """List the certificates of the PKI with their expiry and revocation."""
    from mss.crypto.pki import list_certificates

    now = dt.datetime.now(dt.UTC)
    with _as_sentence(f"read the PKI in {settings.pki_dir}"):
        entries = list_certificates(settings.pki_dir)
    for entry in entries:
        if entry.revoked_at is not None:
            state = f"revoked {entry.revoked_at:%Y-%m-%d}"
        elif entry.not_after < now:
            state = "EXPIRED"
        else:
            state = f"{(entry.not_after - now).days} days left"
        click.echo(
            f"{entry.kind:<12} {entry.serial:<40} {entry.not_after:%Y-%m-%d}  "
            f"{state:<18} {entry.subject}  {entry.path}"
        )


@pki.command("export")
@click.argument("address")
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Where to write the PKCS#12 file (default: ./<address>.p12).",
)
@click.option("--client", is_flag=True, help="Export the TLS client certificate instead of S/MIME.")
@click.option(
    "--password-stdin", is_flag=True, help="Read the file's password from standard input."
)
@hub_command
async def export_command(
    settings: Settings, address: str, out_path: str | None, client: bool, password_stdin: bool
) -> None:
    """Write ADDRESS's certificate, chain and key as a PKCS#12 file for a mail client
    (Thunderbird...)."""
    from pathlib import Path

    from mss.crypto.pki import export_encryption_certificate, export_pkcs12

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt(
            "Password of the PKCS#12 file", hide_input=True, confirmation_prompt=True
        )
    if len(password) < 8:
        raise InvalidInput(
            "the PKCS#12 password needs at least 8 characters: it protects a private key"
        )
    target = Path(out_path) if out_path else Path(f"{address}.p12")
    with _as_sentence(f"export the certificate of {address}"):
        export_pkcs12(
            settings.pki_dir, address, password, target, kind="client" if client else "smime"
        )
        encryption = (
            None
            if client
            else export_encryption_certificate(
                settings.pki_dir, address, target.with_suffix(".encryption.pem")
            )
        )
    click.echo(
        f"wrote {target} (certificate, chain up to the root and private key of {address}; "
        "import it in the mail client's certificate manager and trust the root: "
        "docs/mail-clients.md)"
    )
    if encryption is not None:
        click.echo(
            f"wrote {encryption} (the encryption certificate of {address}: give it to the "
            "senders that encrypt to this mailbox; its key stays with the hub)"
        )
