"""Personal data is replaced before storage; numbers that are not personal data stay."""

from __future__ import annotations

import pytest

from service.store.redact import redact_messages, redact_text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail me at jane.doe+claims@example.co.uk please", "mail me at [EMAIL] please"),
        ("my card 4111 1111 1111 1111 was charged", "my card [CARD] was charged"),
        ("card 4111-1111-1111-1111", "card [CARD]"),
        ("call +1 415-555-0132 or (020) 7946 0958", "call [PHONE] or [PHONE]"),
        ("account number: 12345678901 is overdrawn", "account number: [ACCOUNT] is overdrawn"),
        ("IBAN DE89 3704 0044 0532 0130 00 please", "IBAN [ACCOUNT] please"),
    ],
)
def test_personal_data_is_replaced(text: str, expected: str) -> None:
    assert redact_text(text) == expected


@pytest.mark.parametrize("text", [
    "claim 1234567812345678 was filed in 2024",  # 16 digits, not Luhn-valid: not a card
    "my deductible is $1,000 and my premium 85.50 a month",
    "Does Homeowners Insurance Cover Roof Leaks?",
])
def test_ordinary_numbers_stay(text: str) -> None:
    assert redact_text(text) == text


def test_messages_with_parts_are_redacted_and_not_mutated() -> None:
    messages = [{"role": "user", "content": [{"type": "text", "text": "I am bob@example.com"}, {"type": "image_url"}]},
                {"role": "assistant", "content": "ok"}]
    out = redact_messages(messages)
    assert out is not None
    assert out[0]["content"][0]["text"] == "I am [EMAIL]"
    assert messages[0]["content"][0]["text"] == "I am bob@example.com"  # type: ignore[index]
