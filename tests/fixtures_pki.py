"""A development PKI made once per test session, for every test that signs or speaks TLS.

Registered in conftest.py (``pytest_plugins``). Use ``dev_pki`` to get
certificates and sign messages::

    def test_signed(dev_pki):
        doctor = dev_pki.issue_smime("jean.dupont@mss.localhost", id_nat="899700367917")
        raw = doctor.sign(b"From: ...\\r\\n\\r\\nHello\\r\\n")
        dev_pki.install(settings)        # copy the PKI into settings.pki_dir (no key generation)

Identities are cached by their arguments (RSA key generation is slow); pass
``label="..."`` to get a distinct certificate, for instance one you revoke.
``untrusted_pki`` is a second, separate CA that the hub does not trust.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from mss.config import Settings
from mss.crypto import pki, smime
from mss.crypto.keys import KeyType, PrivateKey, load_certs, load_key
from mss.crypto.trust import TrustStore


@dataclass(frozen=True)
class Identity:
    """An issued certificate (leaf + chain) with its private key, ready to sign."""

    cert_path: Path
    key_path: Path
    cert: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    key: PrivateKey

    @classmethod
    def load(cls, issued: pki.Issued) -> Identity:
        certs = load_certs(issued.cert)
        return cls(issued.cert, issued.key, certs[0], tuple(certs[1:]), load_key(issued.key))

    @property
    def serial(self) -> str:
        return format(self.cert.serial_number, "X")

    def sign(self, mime_bytes: bytes, *, detached: bool = True) -> bytes:
        """The message signed with this identity (RFC 8551, chain included)."""
        return smime.sign(mime_bytes, self.cert, self.key, detached=detached, chain=self.chain)


@dataclass
class DevPki:
    """One PKI directory, its TrustStore, and cached identities."""

    dir: Path
    key_type: KeyType = "rsa"
    trust: TrustStore = field(init=False)
    _cache: dict[tuple[Any, ...], Identity] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.trust = TrustStore.from_pki(self.dir)

    @property
    def layout(self) -> pki.PkiLayout:
        return pki.PkiLayout(self.dir)

    @property
    def root_cert(self) -> Path:
        return self.layout.root_cert

    @property
    def crl_path(self) -> Path:
        return self.layout.crl

    @property
    def server(self) -> Identity:
        return Identity.load(self.layout.server)

    @property
    def operator(self) -> Identity:
        return Identity.load(self.layout.operator)

    def _cached(self, key: tuple[Any, ...], make: Any) -> Identity:
        if key not in self._cache:
            self._cache[key] = Identity.load(make())
        return self._cache[key]

    def issue_smime(
        self,
        address: str,
        id_nat: str | None = None,
        *,
        common_name: str | None = None,
        key_type: KeyType | None = None,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
        eku: Sequence[x509.ObjectIdentifier] | None = None,
        label: str | None = None,
    ) -> Identity:
        """An S/MIME identity (cached by arguments); ``label`` makes a distinct one."""
        eku_key = tuple(eku) if eku is not None else None
        key = (
            "smime",
            address,
            id_nat,
            common_name,
            key_type,
            not_before,
            not_after,
            eku_key,
            label,
        )
        stem = label or f"{address}-{key_type or self.key_type}-{len(self._cache)}"
        return self._cached(
            key,
            lambda: pki.issue_smime(
                self.dir,
                address,
                id_nat=id_nat,
                common_name=common_name,
                key_type=key_type,
                not_before=not_before,
                not_after=not_after,
                eku=eku,
                label=stem,
            ),
        )

    def issue_client(
        self, address: str, *, key_type: KeyType | None = None, label: str | None = None
    ) -> Identity:
        """A TLS client certificate for an APP mailbox (cached)."""
        stem = label or f"{address}-{key_type or self.key_type}"
        return self._cached(
            ("client", address, key_type, label),
            lambda: pki.issue_client(self.dir, address, key_type=key_type, label=stem),
        )

    def issue_operator(
        self, domain: str, *, key_type: KeyType | None = None, label: str | None = None
    ) -> Identity:
        """An operator (relay mutual TLS) certificate for ``domain`` (cached)."""
        stem = label or f"{domain}-{key_type or self.key_type}"
        return self._cached(
            ("operator", domain, key_type, label),
            lambda: pki.issue_operator(self.dir, domain, key_type=key_type, label=stem),
        )

    def revoke(self, identity: Identity) -> None:
        """Revoke a certificate, rewrite the CRLs and reload the TrustStore."""
        pki.revoke(self.dir, identity.cert.serial_number)
        self.trust.reload()

    def install(self, settings: Settings) -> Settings:
        """Copy this PKI into ``settings.pki_dir`` (what ``mss pki init`` would have made)."""
        target = settings.pki_dir
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(self.dir, target)
        return settings

    def trust_for(self, settings: Settings) -> TrustStore:
        """The TrustStore the hub builds from ``settings`` (after ``install``)."""
        return TrustStore.from_settings(settings, repo_trust_dir=None)


@pytest.fixture(scope="session")
def dev_pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevPki]:
    """The hub's development PKI (RSA CAs), made once per session."""
    directory = tmp_path_factory.mktemp("dev-pki") / "pki"
    pki.init_pki(directory, ["localhost", "mss.localhost"], operator_domain="mss.localhost")
    yield DevPki(directory)


@pytest.fixture(scope="session")
def untrusted_pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevPki]:
    """A separate CA the hub does not trust (same layout, its own root)."""
    directory = tmp_path_factory.mktemp("untrusted-pki") / "pki"
    pki.init_pki(
        directory,
        ["localhost", "rogue.example"],
        operator_domain="rogue.example",
        label="Untrusted test",
    )
    yield DevPki(directory)
