"""Client and admin keys: ``Authorization: Bearer KEY`` or Azure's ``api-key: KEY``.

Keys are compared as SHA-256 digests with ``hmac.compare_digest``, so neither a key's length nor
its prefix shows in the timing; the raw keys are not kept.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from hashlib import sha256

from pydantic import SecretStr

from service.errors import AuthenticationError

__all__ = ["KeyChecker", "key_from_headers"]


def key_from_headers(authorization: bytes | None, api_key: bytes | None) -> bytes | None:
    """The presented key: the bearer token, else the ``api-key`` header."""
    if authorization:
        scheme, _, token = authorization.partition(b" ")
        if scheme.lower() == b"bearer" and token.strip():
            return token.strip()
    if api_key:
        return api_key.strip() or None
    return None


class KeyChecker:
    """Accepts any of a set of keys."""

    __slots__ = ("_digests", "_what")

    def __init__(self, keys: Iterable[SecretStr], what: str = "API key") -> None:
        self._digests = tuple(sha256(k.get_secret_value().encode()).digest() for k in keys)
        self._what = what

    def check(self, presented: bytes | None) -> None:
        """Raise ``AuthenticationError`` (401) unless ``presented`` is one of the keys."""
        if presented is None:
            raise AuthenticationError(
                f"You didn't provide an {self._what}. Send it as `Authorization: Bearer KEY` "
                "(or the `api-key` header for Azure clients)."
            )
        digest = sha256(presented).digest()
        ok = False
        for known in self._digests:
            ok |= hmac.compare_digest(digest, known)
        if not ok:
            raise AuthenticationError(f"Incorrect {self._what} provided. Check the key you were given.")
