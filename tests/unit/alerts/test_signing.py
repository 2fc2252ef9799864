"""HMAC signatures: round trip, any single-byte tamper fails, replay window, and the documented recipe."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from service.alerts.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, signature_headers, verify

DOCS = Path(__file__).resolve().parents[3] / "docs" / "webhooks.md"

secrets_ = st.binary(min_size=1, max_size=64)
bodies = st.binary(max_size=2048)
timestamps = st.integers(min_value=1_000_000_000, max_value=4_000_000_000)


@functools.cache
def docs_recipe() -> Callable[..., bool]:
    """``verify_tunewatch_webhook`` as written in docs/webhooks.md (the first python block)."""
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(encoding="utf-8"), flags=re.DOTALL)
    namespace: dict[str, Any] = {}
    exec(next(b for b in blocks if "def verify_tunewatch_webhook" in b), namespace)
    recipe: Callable[..., bool] = namespace["verify_tunewatch_webhook"]
    return recipe


@settings(deadline=None)
@given(secret=secrets_, body=bodies, ts=timestamps)
def test_verify_accepts_what_sign_produced(secret: bytes, body: bytes, ts: int) -> None:
    signature = sign(secret, str(ts), body)
    assert re.fullmatch(r"v1=[0-9a-f]{64}", signature)
    assert verify(secret, str(ts), body, signature, now=float(ts))


@settings(deadline=None)
@given(secret=secrets_, body=bodies.filter(len), ts=timestamps, data=st.data())
def test_any_single_byte_change_of_the_body_fails(
    secret: bytes, body: bytes, ts: int, data: st.DataObject
) -> None:
    signature = sign(secret, str(ts), body)
    i = data.draw(st.integers(0, len(body) - 1))
    new = data.draw(st.integers(0, 255).filter(lambda b: b != body[i]))
    tampered = body[:i] + bytes([new]) + body[i + 1 :]
    assert not verify(secret, str(ts), tampered, signature, now=float(ts))


@settings(deadline=None)
@given(secret=secrets_, body=bodies, ts=timestamps, data=st.data())
def test_any_single_character_change_of_the_timestamp_fails(
    secret: bytes, body: bytes, ts: int, data: st.DataObject
) -> None:
    stamp = str(ts)
    signature = sign(secret, stamp, body)
    i = data.draw(st.integers(0, len(stamp) - 1))
    new = data.draw(st.characters(codec="utf-8").filter(lambda c: c != stamp[i]))
    tampered = stamp[:i] + new + stamp[i + 1 :]
    # the receiver's clock says the original time, so only the signature can reject it
    assert not verify(secret, tampered, body, signature, now=float(ts), tolerance_s=1e12)


@settings(deadline=None)
@given(secret=secrets_, body=bodies, ts=timestamps, data=st.data())
def test_any_single_character_change_of_the_signature_fails(
    secret: bytes, body: bytes, ts: int, data: st.DataObject
) -> None:
    signature = sign(secret, str(ts), body)
    i = data.draw(st.integers(0, len(signature) - 1))
    new = data.draw(st.characters(codec="utf-8").filter(lambda c: c != signature[i]))
    tampered = signature[:i] + new + signature[i + 1 :]
    assert not verify(secret, str(ts), body, tampered, now=float(ts))


@settings(deadline=None)
@given(secret=secrets_, body=bodies, ts=timestamps, skew=st.floats(0.001, 1e6), late=st.booleans())
def test_outside_the_replay_window_fails(
    secret: bytes, body: bytes, ts: int, skew: float, late: bool
) -> None:
    signature = sign(secret, str(ts), body)
    now = ts + (300 + skew) * (1 if late else -1)
    assert not verify(secret, str(ts), body, signature, now=now, tolerance_s=300)
    assert verify(secret, str(ts), body, signature, now=ts + (300 if late else -300), tolerance_s=300)


def test_a_different_secret_fails() -> None:
    signature = sign(b"one", "1764000000", b"{}")
    assert not verify(b"two", "1764000000", b"{}", signature, now=1764000000)


def test_headers_carry_whole_seconds_and_verify_with_a_datetime() -> None:
    now = datetime(2026, 11, 24, 12, 0, 0, 750_000, tzinfo=UTC)
    headers = signature_headers("s3cret", b'{"a":1}', now)
    assert headers[TIMESTAMP_HEADER] == str(int(now.timestamp()))
    assert verify("s3cret", headers[TIMESTAMP_HEADER], b'{"a":1}', headers[SIGNATURE_HEADER], now=now)


@settings(deadline=None)
@given(secret=secrets_, body=bodies, ts=timestamps, skew=st.integers(-400, 400), flip=st.booleans())
def test_the_documented_recipe_agrees_with_verify(
    secret: bytes, body: bytes, ts: int, skew: int, flip: bool
) -> None:
    recipe = docs_recipe()
    signature = sign(secret, str(ts), body)
    sent_body = body + b"x" if flip else body
    expected = verify(secret, str(ts), sent_body, signature, now=float(ts + skew))
    assert recipe(secret, str(ts), signature, sent_body, now=float(ts + skew)) is expected
    assert expected is (not flip and abs(skew) <= 300)
