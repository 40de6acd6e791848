"""The catalogue's tables: services, their connections to patients' spaces, codes and tokens,
and the measurements services write.

Codes and tokens are kept only as their SHA-256 (they are 256-bit random strings), so a copy
of the database hands out no live access.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Float, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mss.db import Base, UTCDateTime, utcnow


class CatalogueService(Base):
    """A service an operator registered: who makes it, what it asks for, where it sends back."""

    __tablename__ = "catalogue_services"

    id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    editor: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    redirect_uris: Mapped[list[str]] = mapped_column(JSON, default=list)
    home_url: Mapped[str] = mapped_column(String(500), default="")
    status: Mapped[str] = mapped_column(String(16))  # mss.policy.services.ServiceStatus
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ServiceConnection(Base):
    """A service connected to one patient's space, by that patient or one of their guardians."""

    __tablename__ = "service_connections"
    __table_args__ = (Index("ix_service_connections_patient", "patient_id", "revoked_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("catalogue_services.id", ondelete="CASCADE"))
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    connected_by: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)


class ServiceCode(Base):
    """An authorization code (RFC 6749 §4.1.2), used once, with its PKCE challenge."""

    __tablename__ = "service_codes"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    connection_id: Mapped[int] = mapped_column(
        ForeignKey("service_connections.id", ondelete="CASCADE"), index=True
    )
    redirect_uri: Mapped[str] = mapped_column(Text)
    code_challenge: Mapped[str] = mapped_column(String(128))
    code_challenge_method: Mapped[str] = mapped_column(String(8))
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)


class ServiceToken(Base):
    """An access token and its refresh token, both bound to one connection."""

    __tablename__ = "service_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    connection_id: Mapped[int] = mapped_column(
        ForeignKey("service_connections.id", ondelete="CASCADE"), index=True
    )
    access_hash: Mapped[str] = mapped_column(String(64), unique=True)
    refresh_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    access_expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    refresh_expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)


class Measurement(Base):
    """A measurement a connected service wrote (a FHIR Observation: weight, blood sugar)."""

    __tablename__ = "service_measurements"
    __table_args__ = (Index("ix_service_measurements_patient", "patient_id", "effective_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    service_id: Mapped[int | None] = mapped_column(
        ForeignKey("catalogue_services.id", ondelete="SET NULL")
    )
    service_name: Mapped[str] = mapped_column(String(120))
    code: Mapped[str] = mapped_column(String(16))  # LOINC
    value: Mapped[float] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(16))  # UCUM
    status: Mapped[str] = mapped_column(String(16))
    effective_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
