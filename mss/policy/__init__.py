"""Every allow/deny decision of the hub, as pure functions over plain facts.

The SMTP gateway and the patient portal load facts from the database,
call these functions and turn the returned ``Decision`` into an SMTP
reply, a DSN or a page; nothing here does I/O.
"""

from mss.policy.conversation import (
    ConversationAction,
    ConversationOutcome,
    decide_conversation,
    decide_patient_message,
    decide_professional_message,
    is_closing,
)
from mss.policy.decision import OK, Decision, allow, refuse
from mss.policy.facts import (
    ConversationFacts,
    MailboxFacts,
    MessageFacts,
    RecipientFacts,
    domain_of,
    normalize_address,
)
from mss.policy.limits import decide_line_endings, decide_mime_depth, decide_size
from mss.policy.recipient import (
    decide_mailbox_reachable,
    decide_patient_account,
    decide_patient_recipient,
    decide_recipient,
    decide_recipient_count,
)
from mss.policy.sender import (
    decide_from_header,
    decide_relay_from_header,
    decide_relay_sender,
    decide_submission_sender,
)
from mss.policy.session import (
    PeerCertificateFacts,
    decide_certificate_login,
    decide_password_login,
    decide_relay_client,
)
from mss.policy.signature import decide_signature

__all__ = [
    "OK",
    "ConversationAction",
    "ConversationFacts",
    "ConversationOutcome",
    "Decision",
    "MailboxFacts",
    "MessageFacts",
    "PeerCertificateFacts",
    "RecipientFacts",
    "allow",
    "decide_certificate_login",
    "decide_conversation",
    "decide_from_header",
    "decide_line_endings",
    "decide_mailbox_reachable",
    "decide_mime_depth",
    "decide_password_login",
    "decide_patient_account",
    "decide_patient_message",
    "decide_patient_recipient",
    "decide_professional_message",
    "decide_recipient",
    "decide_recipient_count",
    "decide_relay_client",
    "decide_relay_from_header",
    "decide_relay_sender",
    "decide_signature",
    "decide_size",
    "decide_submission_sender",
    "domain_of",
    "is_closing",
    "normalize_address",
    "refuse",
]
