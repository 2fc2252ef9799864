"""Exact and near-duplicate detection (MinHash + LSH, verified exactly)."""

from __future__ import annotations

import pytest

from service.drift.dupes import DuplicateFinder

BASE = ("my home insurance policy lists a separate deductible for wind and hail damage how is it "
        "applied when a storm damages both the roof and the detached garage")


def _jaccard(a: str, b: str) -> float:
    sa = {a[i:i + 5] for i in range(len(a) - 4)}
    sb = {b[i:i + 5] for i in range(len(b) - 4)}
    return len(sa & sb) / len(sa | sb)


def test_exact_duplicates_ignore_case_punctuation_and_spacing() -> None:
    finder = DuplicateFinder()
    texts = ["Is flood covered?", "is  FLOOD covered", "Is fire covered?", "", "IS FLOOD COVERED!"]
    for line, text in enumerate(texts, start=1):
        finder.add(line, text)
    groups = finder.groups()
    assert groups.exact == [[1, 2, 5]]
    assert groups.near == []


@pytest.mark.parametrize(("variant", "near"), [
    (BASE + " too", True),
    (BASE.replace("detached", "attached"), True),
    (BASE.replace("wind and hail damage", "earthquakes"), False),
    ("what is the capital of france", False),
])
def test_near_duplicates_follow_the_jaccard_threshold(variant: str, near: bool) -> None:
    assert (_jaccard(BASE, variant) >= 0.9) is near  # the cases mean what they say
    finder = DuplicateFinder(threshold=0.9)
    finder.add(1, BASE)
    finder.add(2, "something else entirely about pets and vets")
    finder.add(3, variant)
    finder.add(4, BASE.upper())  # an exact duplicate of line 1 joins its near group
    groups = finder.groups()
    assert groups.exact == [[1, 4]]
    assert groups.near == ([[1, 3, 4]] if near else [])


def test_many_texts_with_one_planted_pair() -> None:
    finder = DuplicateFinder()
    for i in range(3000):
        finder.add(i + 1, f"text number {i} is about topic {i * 7919 % 10007} and item {i * 104729 % 1009}")
    finder.add(5000, BASE)
    finder.add(5001, BASE + " too")
    assert [5000, 5001] in finder.groups().near


def test_threshold_is_validated() -> None:
    with pytest.raises(ValueError, match="threshold"):
        DuplicateFinder(threshold=0)
