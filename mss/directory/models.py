"""Directory tables."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import (
    Boolean,
    Date,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mss.db import Base, UTCDateTime, utcnow
from mss.policy.vocabulary import MailboxKind, MailboxState, OrganisationKind, PatientState

__all__ = [
    "Guardianship",
    "Mailbox",
    "MailboxKind",
    "MailboxState",
    "Organisation",
    "OrganisationKind",
    "PatientState",
    "Patient",
    "Professional",
    "RecipientCertificate",
    "TrustedDomain",
]


def _enum(kind: type[enum.Enum], name: str) -> Enum:
    return Enum(
        kind,
        name=name,
        native_enum=False,
        length=24,
        values_callable=lambda e: [m.value for m in e],
    )


class Organisation(Base):
    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(primary_key=True)
    finess: Mapped[str | None] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    kind: Mapped[OrganisationKind] = mapped_column(
        _enum(OrganisationKind, "organisation_kind"), default=OrganisationKind.OTHER
    )
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Professional(Base):
    __tablename__ = "professionals"

    id: Mapped[int] = mapped_column(primary_key=True)
    id_nat: Mapped[str] = mapped_column(String(16), unique=True)
    family_name: Mapped[str] = mapped_column(String(255))
    given_names: Mapped[str] = mapped_column(String(255), default="")
    profession_code: Mapped[str] = mapped_column(String(8), default="")
    specialty_code: Mapped[str] = mapped_column(String(32), default="")
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    organisation: Mapped[Organisation | None] = relationship(lazy="raise")

    @property
    def display_name(self) -> str:
        return f"{self.given_names} {self.family_name}".strip()


class Patient(Base):
    __tablename__ = "patients"

    id: Mapped[int] = mapped_column(primary_key=True)
    ins: Mapped[str] = mapped_column(String(15), unique=True)
    family_name: Mapped[str] = mapped_column(String(255))
    given_names: Mapped[str] = mapped_column(String(255), default="")
    birth_date: Mapped[dt.date | None] = mapped_column(Date)
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(32))
    # Where notices go (the patient's choice in "Compte"): "both", "email" or "sms"
    # (mss.policy.notice_recipients.decide_channels).
    notify_channels: Mapped[str] = mapped_column(String(8), default="both", server_default="both")
    password_hash: Mapped[str | None] = mapped_column(String(255))
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    # RFC 6238 §5.2: the time step of the last code accepted; a code of that step or earlier is
    # refused.
    totp_last_step: Mapped[int | None] = mapped_column(Integer)
    state: Mapped[PatientState] = mapped_column(
        _enum(PatientState, "patient_state"), default=PatientState.CREATED
    )
    state_changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    opposition_deadline: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    activated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    activation_code_hash: Mapped[str | None] = mapped_column(String(255))
    treating_professional_id: Mapped[int | None] = mapped_column(ForeignKey("professionals.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def display_name(self) -> str:
        return f"{self.given_names} {self.family_name}".strip()


class Guardianship(Base):
    """A legal guardian (a patient of the hub) acting for a minor."""

    __tablename__ = "guardianships"
    __table_args__ = (UniqueConstraint("guardian_id", "minor_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    guardian_id: Mapped[int] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), index=True
    )
    minor_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Mailbox(Base):
    __tablename__ = "mailboxes"

    id: Mapped[int] = mapped_column(primary_key=True)
    address: Mapped[str] = mapped_column(String(320), unique=True)
    kind: Mapped[MailboxKind] = mapped_column(_enum(MailboxKind, "mailbox_kind"))
    display_name: Mapped[str] = mapped_column(String(255), default="")
    state: Mapped[MailboxState] = mapped_column(
        _enum(MailboxState, "mailbox_state"), default=MailboxState.ACTIVE
    )
    professional_id: Mapped[int | None] = mapped_column(ForeignKey("professionals.id"), index=True)
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), index=True)
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id"), unique=True)
    red_list: Mapped[bool] = mapped_column(Boolean, default=False)
    pharmacy: Mapped[bool] = mapped_column(Boolean, default=False)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    client_cert_sha256: Mapped[str | None] = mapped_column(String(64), unique=True)
    client_cert_subject: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Retention (mss.policy.retention): the last day of a login, written at most once a day;
    # the day the mailbox was warned before a purge, and the day of its last purge.
    last_active_on: Mapped[dt.date | None] = mapped_column(Date)
    retention_warned_on: Mapped[dt.date | None] = mapped_column(Date)
    retention_purged_on: Mapped[dt.date | None] = mapped_column(Date)

    professional: Mapped[Professional | None] = relationship(lazy="raise")
    organisation: Mapped[Organisation | None] = relationship(lazy="raise")
    patient: Mapped[Patient | None] = relationship(lazy="raise")


class TrustedDomain(Base):
    """A domain of another operator of the trust space (from the MSSanté whitelist)."""

    __tablename__ = "trusted_domains"
    __table_args__ = (
        UniqueConstraint("domain", "operator_dn"),
        Index("ix_trusted_domains_domain", "domain"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    domain: Mapped[str] = mapped_column(String(255))
    operator_dn: Mapped[str] = mapped_column(String(1024), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    contact: Mapped[str] = mapped_column(Text, default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class RecipientCertificate(Base):
    """An S/MIME encryption certificate of a recipient outside the hub, that relayed mail to that
    address is encrypted to (``mss directory import-certificates``)."""

    __tablename__ = "recipient_certificates"
    __table_args__ = (Index("ix_recipient_certificates_address", "address"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    address: Mapped[str] = mapped_column(String(320))  # lower case, from the rfc822Name SAN
    # SHA-256 of the certificate DER followed by the address: one row per (certificate, address)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    pem: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text, default="")
    not_after: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    source: Mapped[str] = mapped_column(String(255), default="")  # the file it came from
    imported_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
