"""Agenda tables: appointments, the convocations read for them, the patient's health reminders,
and which professionals the patient shares the agenda with."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from mss.db import Base, UTCDateTime, utcnow


class Appointment(Base):
    """One appointment of a patient: from a convocation (organizer + UID), entered by the
    patient, or added by a professional the agenda is shared with (``author_id_nat``)."""

    __tablename__ = "agenda_appointments"
    __table_args__ = (
        UniqueConstraint("patient_id", "uid"),
        Index("ix_agenda_appointments_patient_start", "patient_id", "starts_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    uid: Mapped[str] = mapped_column(String(255))
    # convocation, patient, professional
    origin: Mapped[str] = mapped_column(String(16), default="convocation")
    sequence: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="confirmed")  # confirmed, cancelled
    response: Mapped[str] = mapped_column(String(16), default="needs-action")  # accepted, declined
    starts_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    tzid: Mapped[str] = mapped_column(String(64), default="Europe/Paris")
    summary: Mapped[str] = mapped_column(Text, default="")
    location: Mapped[str] = mapped_column(Text, default="")
    description: Mapped[str] = mapped_column(Text, default="")
    organizer: Mapped[str] = mapped_column(String(320), default="")
    organizer_name: Mapped[str] = mapped_column(String(255), default="")
    attendee: Mapped[str] = mapped_column(String(320), default="")
    message_id_header: Mapped[str] = mapped_column(
        String(998), default=""
    )  # the latest convocation's
    reminders_sent: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    answered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # The professional who added it through the document API (origin ``professional``).
    author_id_nat: Mapped[str | None] = mapped_column(String(32))
    author_name: Mapped[str | None] = mapped_column(String(255))


class ConvocationReceipt(Base):
    """One calendar part read for one patient mailbox: what it did, so a rerun does nothing."""

    __tablename__ = "agenda_convocations"
    __table_args__ = (UniqueConstraint("message_id", "mailbox_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailboxes.id", ondelete="CASCADE"))
    outcome: Mapped[str] = mapped_column(
        String(16)
    )  # created, updated, cancelled, unchanged, refused
    reason: Mapped[str] = mapped_column(Text, default="")
    appointment_id: Mapped[int | None] = mapped_column(
        ForeignKey("agenda_appointments.id", ondelete="SET NULL")
    )
    processed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class HealthReminder(Base):
    """A vaccination or screening the patient wants to be reminded of on a date."""

    __tablename__ = "agenda_health_reminders"
    __table_args__ = (Index("ix_agenda_health_reminders_patient_due", "patient_id", "due_on"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # vaccination, screening
    label: Mapped[str] = mapped_column(String(255))
    due_on: Mapped[dt.date] = mapped_column(Date)
    note: Mapped[str] = mapped_column(Text, default="")
    done: Mapped[bool] = mapped_column(Boolean, default=False)
    notified_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class AgendaSharingChoice(Base):
    """The patient's choice of who sees the agenda (no row: shared with nobody)."""

    __tablename__ = "agenda_sharing"

    patient_id: Mapped[int] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), primary_key=True
    )
    sharing: Mapped[str] = mapped_column(String(16), default="none")  # none, authorised, chosen
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class AgendaSharedProfessional(Base):
    """A professional the patient chose to share the agenda with (sharing ``chosen``)."""

    __tablename__ = "agenda_shared_professionals"
    __table_args__ = (UniqueConstraint("patient_id", "id_nat"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), index=True
    )
    id_nat: Mapped[str] = mapped_column(String(32))
    chosen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
