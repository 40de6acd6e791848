"""MSS hub: a secure health messaging hub (S/MIME SMTP gateway, IMAP, patient portal, DMP)."""

__version__ = "0.1.0"
