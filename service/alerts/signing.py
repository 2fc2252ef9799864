"""HMAC-SHA256 webhook signatures: what we send, and the check a receiver runs (``docs/webhooks.md``).

The signed message is ``f"{timestamp}.".encode() + body``, where ``timestamp`` is the exact
text of the ``x-tunewatch-timestamp`` header (Unix seconds) and ``body`` the raw request bytes.
Binding the time into the MAC lets a receiver refuse replays older than its window; signing the
raw bytes means the receiver must verify before parsing JSON. Header
``x-tunewatch-signature: v1=<64 lowercase hex>``; ``v1`` names the scheme so it can evolve.

Pure functions, no I/O.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import datetime

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "sign",
    "signature_headers",
    "verify",
]

TIMESTAMP_HEADER = "x-tunewatch-timestamp"
SIGNATURE_HEADER = "x-tunewatch-signature"
_SCHEME = "v1="
# ASCII digits only: int() would also accept " 12", "+12", "1_2" and non-ASCII digits
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


def _key(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def sign(secret: str | bytes, timestamp: str, body: bytes) -> str:
    """The ``x-tunewatch-signature`` value (``v1=<hex>``) of ``body`` sent at ``timestamp``."""
    mac = hmac.new(_key(secret), f"{timestamp}.".encode() + body, hashlib.sha256)
    return _SCHEME + mac.hexdigest()


def signature_headers(secret: str | bytes, body: bytes, now: datetime) -> dict[str, str]:
    """Both headers for a POST of ``body`` at ``now`` (an aware datetime; whole seconds are sent)."""
    timestamp = str(int(now.timestamp()))
    return {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: sign(secret, timestamp, body)}


def verify(secret: str | bytes, timestamp: str, body: bytes, signature: str, now: datetime | float,
           tolerance_s: float = 300.0) -> bool:
    """True when ``signature`` is ours for ``timestamp`` and ``body`` and the timestamp is within
    ``tolerance_s`` seconds of ``now`` (a datetime or Unix seconds), either way. Constant-time compare.
    """
    if not _TIMESTAMP.fullmatch(timestamp):
        return False
    now_s = now.timestamp() if isinstance(now, datetime) else float(now)
    if abs(now_s - int(timestamp)) > tolerance_s:
        return False
    expected = sign(secret, timestamp, body)
    return hmac.compare_digest(expected.encode(), signature.encode("utf-8", "surrogateescape"))
