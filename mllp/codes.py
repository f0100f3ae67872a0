"""
The HL7 code tables the wire layer needs, defined once.

Table 0357 (message error condition) goes into ERR segments and into
:class:`mllp.header.HeaderError`; table 0008 (acknowledgment code) into MSA-1.
Both the header reader and the ACK builder use them, so they live in this
small leaf module rather than in either of those two.

test-case-name: tests.mllp.test_ack
"""
from __future__ import annotations

# HL7 table 0357 - message error condition codes.
MESSAGE_ACCEPTED = 0
SEGMENT_SEQUENCE = 100
REQUIRED_FIELD_MISSING = 101
DATA_TYPE = 102
TABLE_VALUE_NOT_FOUND = 103
VALUE_TOO_LONG = 104  # added in v2.7: "or the length the application can safely handle"
UNSUPPORTED_MESSAGE_TYPE = 200
UNSUPPORTED_EVENT = 201
UNSUPPORTED_PROCESSING_ID = 202
UNSUPPORTED_VERSION = 203
UNKNOWN_KEY = 204
DUPLICATE_KEY = 205
APPLICATION_RECORD_LOCKED = 206
APPLICATION_INTERNAL_ERROR = 207

ERROR_DESCRIPTIONS = {
    MESSAGE_ACCEPTED: "Message accepted",
    SEGMENT_SEQUENCE: "Segment sequence error",
    REQUIRED_FIELD_MISSING: "Required field missing",
    DATA_TYPE: "Data type error",
    TABLE_VALUE_NOT_FOUND: "Table value not found",
    VALUE_TOO_LONG: "Value too long",
    UNSUPPORTED_MESSAGE_TYPE: "Unsupported message type",
    UNSUPPORTED_EVENT: "Unsupported event code",
    UNSUPPORTED_PROCESSING_ID: "Unsupported processing id",
    UNSUPPORTED_VERSION: "Unsupported version id",
    UNKNOWN_KEY: "Unknown key identifier",
    DUPLICATE_KEY: "Duplicate key identifier",
    APPLICATION_RECORD_LOCKED: "Application record locked",
    APPLICATION_INTERNAL_ERROR: "Application internal error",
}

# HL7 table 0008 - acknowledgment codes: original mode, then enhanced (commit) mode.
APPLICATION_ACCEPT = "AA"
APPLICATION_ERROR = "AE"
APPLICATION_REJECT = "AR"
COMMIT_ACCEPT = "CA"
COMMIT_ERROR = "CE"
COMMIT_REJECT = "CR"

ACCEPTING_CODES = frozenset({APPLICATION_ACCEPT, COMMIT_ACCEPT})
