"""Token accounting: pieces rebuild the text, truncation respects the budget."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from service.simulator.tokens import count_prompt_tokens, count_tokens, pieces, text_of, truncate


@settings(deadline=None)
@given(st.text())
def test_pieces_concatenate_to_the_text(text: str) -> None:
    assert "".join(pieces(text)) == text


@settings(deadline=None)
@given(st.text(alphabet=st.characters(codec="ascii"), max_size=400), st.integers(min_value=1, max_value=120))
def test_truncate_fits_the_budget_and_keeps_a_prefix(text: str, max_tokens: int) -> None:
    cut, was_cut = truncate(text, max_tokens)
    assert text.startswith(cut)
    assert was_cut == (count_tokens(text) > max_tokens)
    assert count_tokens(cut) <= max_tokens
    if not was_cut:
        assert cut == text


def test_counts() -> None:
    assert count_tokens("") == 0
    assert count_tokens("abcd") == 1
    assert count_tokens("abcde") == 2
    messages = [
        {"role": "system", "content": "abcd"},
        {"role": "user", "content": [{"type": "text", "text": "abcd"}]},
    ]
    assert count_prompt_tokens(messages) == 3 + (3 + 1) * 2
    assert text_of([{"type": "image_url", "image_url": {}}, {"type": "text", "text": "hi"}]) == "hi"
    assert text_of(None) == ""
