"""Every table of the hub, imported once so the metadata is complete."""

from dmp_bridge.models import DmpConsent, DmpDocument, DmpProfessionalConsent
from dmp_bridge.pro_sessions import ProfessionalSession
from mss.agenda.models import Appointment, ConvocationReceipt, HealthReminder
from mss.audit import AuditChainHead, AuditEvent
from mss.catalogue.models import (
    CatalogueService,
    Measurement,
    ServiceCode,
    ServiceConnection,
    ServiceToken,
)
from mss.conversations import Conversation
from mss.db import Base
from mss.delivery_status import DeliveryStatus
from mss.directory.models import (
    Guardianship,
    Mailbox,
    Organisation,
    Patient,
    Professional,
    TrustedDomain,
)
from mss.jobs import Job
from mss.login_throttle import LoginFailure
from mss.mailbox.models import ExpungedEntry, Folder, FolderEntry, LostSubscription, StoredMessage
from mss.profile.models import ProfileItem
from portal.models import PortalSession

metadata = Base.metadata

__all__ = [
    "Appointment",
    "AuditChainHead",
    "AuditEvent",
    "CatalogueService",
    "Measurement",
    "ServiceCode",
    "ServiceConnection",
    "ServiceToken",
    "Conversation",
    "ConvocationReceipt",
    "DeliveryStatus",
    "DmpConsent",
    "DmpDocument",
    "DmpProfessionalConsent",
    "ExpungedEntry",
    "Folder",
    "FolderEntry",
    "Guardianship",
    "HealthReminder",
    "Job",
    "LoginFailure",
    "LostSubscription",
    "Mailbox",
    "Organisation",
    "Patient",
    "PortalSession",
    "ProfessionalSession",
    "Professional",
    "ProfileItem",
    "StoredMessage",
    "TrustedDomain",
    "metadata",
]
