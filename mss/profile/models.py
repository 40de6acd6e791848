"""The medical profile the patient keeps: one row per allergy, history item, vaccination,
treatment."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mss.db import Base, UTCDateTime, utcnow


class ProfileItem(Base):
    __tablename__ = "profile_items"
    __table_args__ = (Index("ix_profile_items_patient_category", "patient_id", "category"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    category: Mapped[str] = mapped_column(String(24))  # see mss.profile.store.CATEGORIES
    label: Mapped[str] = mapped_column(String(255))
    detail: Mapped[str] = mapped_column(Text, default="")
    when: Mapped[str] = mapped_column(
        String(32), default=""
    )  # as the patient wrote it: "2019", "enfance"
    author_kind: Mapped[str] = mapped_column(
        String(16), default="patient"
    )  # patient, guardian, professional
    author: Mapped[str] = mapped_column(String(320), default="")  # INS, or a professional's idNat
    author_name: Mapped[str] = mapped_column(String(255), default="", server_default="")
    # a professional's coded concept (FHIR code.coding): system URI and code; "" when typed
    code: Mapped[str] = mapped_column(String(64), default="", server_default="")
    code_system: Mapped[str] = mapped_column(String(255), default="", server_default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
