"""Redaction of personal data in text before it is stored: emails, phone, card and account numbers.

Applied by the sink (the writer thread, never the request's time) to an experiment's stored text
when its config says ``redact: true``: the last user message, the sampled messages, the answer and
the grounding context. Replacements name what was removed (``[EMAIL]``, ``[PHONE]``, ``[CARD]``,
``[ACCOUNT]``), so a judge still reads a coherent sentence. A card number must pass the Luhn check,
so an order or claim number of 16 digits is left alone.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["redact_messages", "redact_text"]

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_CARD = re.compile(r"\b\d(?:[ -]?\d){12,18}\b")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")
_ACCOUNT = re.compile(r"(?i)\b(account|acct|policy holder id|routing)(\s*(?:number|no\.?|#)?\s*[:#]?\s*)\d[\d -]{5,}\d")
_PHONE = re.compile(r"(?<![\w/.-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?)?\d{2,4}(?:[ .-]\d{2,4}){1,4}(?![\w/-])")


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _phone(match: re.Match[str]) -> str:
    # at least 7 digits: a price (85.50) or a short code is not a phone number
    return "[PHONE]" if sum(ch.isdigit() for ch in match.group()) >= 7 else match.group()


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group())
    return "[CARD]" if _luhn(digits) else match.group()


def redact_text(text: str | None) -> str | None:
    """``text`` with emails, card numbers (Luhn-valid), IBANs, labelled account numbers and phone
    numbers replaced by a tag."""
    if not text:
        return text
    text = _EMAIL.sub("[EMAIL]", text)
    text = _CARD.sub(_card, text)
    text = _IBAN.sub("[ACCOUNT]", text)
    text = _ACCOUNT.sub(lambda m: f"{m.group(1)}{m.group(2)}[ACCOUNT]", text)
    return _PHONE.sub(_phone, text)


def redact_messages(messages: list[Any] | None) -> list[Any] | None:
    """Chat messages with every text content redacted (string content and ``text`` parts)."""
    if messages is None:
        return None
    out = []
    for m in messages:
        if not isinstance(m, dict):
            out.append(m)
            continue
        content = m.get("content")
        if isinstance(content, str):
            m = {**m, "content": redact_text(content)}
        elif isinstance(content, list):
            m = {**m, "content": [
                {**p, "text": redact_text(p["text"])} if isinstance(p, dict) and isinstance(p.get("text"), str) else p
                for p in content]}
        out.append(m)
    return out
