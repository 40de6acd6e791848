"""DMP tables: the documents of each patient's record and the patient's consent choices.

A document is stored once per version: a replacement is a new row whose
``replaces_id`` names the previous version, which becomes ``replaced``.
Deletion keeps the row (status ``deleted``) so the history and the audit
trail stay whole; its bytes are no longer served. The bytes live in
deferred columns so lists never load them.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, deferred, mapped_column

from mss.db import Base, UTCDateTime, utcnow

CURRENT = "current"
REPLACED = "replaced"
DELETED = "deleted"


class DmpDocument(Base):
    __tablename__ = "dmp_documents"
    __table_args__ = (
        UniqueConstraint("patient_id", "unique_id"),
        Index("ix_dmp_documents_patient_status", "patient_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    unique_id: Mapped[str] = mapped_column(String(255))  # XDS uniqueId / ClinicalDocument/id
    entry_uuid: Mapped[str] = mapped_column(String(128), default="")
    version: Mapped[int] = mapped_column(Integer, default=1)
    replaces_id: Mapped[int | None] = mapped_column(ForeignKey("dmp_documents.id"))
    status: Mapped[str] = mapped_column(String(16), default=CURRENT)
    type_code: Mapped[str] = mapped_column(String(64), default="")
    type_system: Mapped[str] = mapped_column(String(128), default="")
    type_label: Mapped[str] = mapped_column(Text, default="")
    class_code: Mapped[str] = mapped_column(String(64), default="")
    class_system: Mapped[str] = mapped_column(String(128), default="")
    class_label: Mapped[str] = mapped_column(Text, default="")
    title: Mapped[str] = mapped_column(Text, default="")
    author_id_nat: Mapped[str | None] = mapped_column(String(32))  # None: added by the patient
    author_name: Mapped[str] = mapped_column(String(255), default="")
    author_institution: Mapped[str] = mapped_column(String(255), default="")
    author_institution_id: Mapped[str | None] = mapped_column(String(64))
    creation_time: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    masked_from_professionals: Mapped[bool] = mapped_column(Boolean, default=False)
    invisible_to_patient: Mapped[bool] = mapped_column(Boolean, default=False)
    invisible_to_legal_representatives: Mapped[bool] = mapped_column(Boolean, default=False)
    mime_type: Mapped[str] = mapped_column(String(128), default="application/octet-stream")
    size: Mapped[int] = mapped_column(Integer, default=0)
    sha1: Mapped[str] = mapped_column(String(40), default="")
    sha256: Mapped[str] = mapped_column(String(64), default="")
    content: Mapped[bytes] = deferred(mapped_column(LargeBinary))
    pdf: Mapped[bytes | None] = deferred(mapped_column(LargeBinary))
    has_pdf: Mapped[bool] = mapped_column(Boolean, default=False)
    source: Mapped[str] = mapped_column(String(16), default="mss")  # mss, api, portal
    source_message_id: Mapped[str] = mapped_column(String(998), default="")
    stored_message_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL")
    )
    filed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    status_changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class DmpConsent(Base):
    """A patient's record-wide choices (one row per patient, made on first change)."""

    __tablename__ = "dmp_consents"

    patient_id: Mapped[int] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), primary_key=True
    )
    break_glass_opposed: Mapped[bool] = mapped_column(Boolean, default=False)
    dmp_opposed: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class DmpProfessionalConsent(Base):
    """The patient authorises (``authorised``) or blocks (``blocked``) one professional by idNat."""

    __tablename__ = "dmp_professional_consents"
    __table_args__ = (UniqueConstraint("patient_id", "id_nat"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), index=True
    )
    id_nat: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))  # authorised, blocked
    changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
