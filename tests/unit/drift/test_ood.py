"""ReferenceIndex, calibration and the serialised form."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from service.drift.ood import Calibration, IndexFormatError, Method, ReferenceIndex, calibrate, dedupe
from service.drift.reference import read_reference

SLICE = Path(__file__).parents[2] / "fixtures" / "ood"


@pytest.fixture(scope="module")
def reference() -> list[str]:
    return read_reference(SLICE / "reference.tsv").texts


class LetterEmbedder:
    """Deterministic vectors: letter counts (a fake Embedder for the kNN method)."""

    def __init__(self, name: str = "fake:letters") -> None:
        self.name = name
        self.calls = 0

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        out = np.zeros((len(texts), 26), dtype=np.float32)
        for row, text in enumerate(texts):
            for ch in text.lower():
                if "a" <= ch <= "z":
                    out[row, ord(ch) - 97] += 1
        return out


def test_lexical_scores_domain_text_lower() -> None:
    index = ReferenceIndex.build(["What does my auto insurance policy cover?", "Is life insurance taxable?",
                                  "How much home insurance do I need?"])
    inside, outside = index.score(["Does auto insurance cover hail?", "set an alarm for seven tomorrow"])
    assert inside < outside
    assert index.method is Method.LEXICAL and index.size == 3
    assert index.score([]).shape == (0,)


def test_lexical_is_case_blind(reference: list[str]) -> None:
    index = ReferenceIndex.build(reference[:300])
    upper, lower = index.score(["How Much Is Renters Insurance?", "how much is renters insurance"])
    assert upper == lower


@pytest.mark.parametrize("percentile", [50.0, 90.0, 95.0, 99.0])
def test_threshold_sits_at_the_percentile_of_held_out_scores(reference: list[str], percentile: float) -> None:
    cal = calibrate(reference, percentile=percentile, holdout=0.2, seed=3)
    distinct = len(dedupe(reference))
    assert cal.holdout_size == round(0.2 * distinct) and cal.fit_size == distinct - cal.holdout_size
    assert cal.index.size == distinct  # refitted on everything
    assert cal.in_domain_rate_on_holdout == pytest.approx(percentile / 100, abs=1.5 / cal.holdout_size)
    assert cal.percentile == percentile
    if percentile == 95.0:
        assert cal.threshold == cal.holdout_quantiles["p95"]


def test_calibration_is_deterministic_per_seed(reference: list[str]) -> None:
    a, b, c = (calibrate(reference[:400], seed=s) for s in (1, 1, 2))
    assert a.threshold == b.threshold
    assert a.threshold != c.threshold


def test_calibration_flags_out_of_domain(reference: list[str]) -> None:
    cal = calibrate(reference)
    scores, flags = cal.score(["How Do I File A Claim For Hail Damage On My Car?", "play some jazz music"])
    assert flags.tolist() == [False, True] and scores[0] < cal.threshold < scores[1]


def test_calibration_refuses_bad_input(reference: list[str]) -> None:
    with pytest.raises(ValueError, match="at least 20"):
        calibrate(reference[:5] * 10)  # duplicates do not count
    with pytest.raises(ValueError, match="percentile"):
        calibrate(reference, percentile=100)
    with pytest.raises(ValueError, match="holdout"):
        calibrate(reference, holdout=1.0)


def test_lexical_round_trip(reference: list[str]) -> None:
    cal = calibrate(reference[:500])
    again = Calibration.from_bytes(cal.to_bytes())
    probe = ["What is whole life insurance?", "book a table for two", "", "Zzyzx qwerty 12345"]
    assert np.array_equal(again.index.score(probe), cal.index.score(probe))
    assert again.summary() == cal.summary()
    index = ReferenceIndex.from_bytes(cal.index.to_bytes())
    assert np.array_equal(index.score(probe), cal.index.score(probe))


def test_knn_with_an_embedder_and_its_round_trip() -> None:
    embedder = LetterEmbedder()
    texts = ["aaaa", "aaab", "aaba", "bbbb", "bbba"] * 5 + [f"a{'a' * i}b" for i in range(20)]
    cal = calibrate(texts, embedder=embedder, k=3)
    assert cal.index.method is Method.KNN and cal.index.k == 3
    scores = cal.index.score(["aaaa", "zzzz"])
    # "aaaa" is in the reference, its 3 nearest are close; no reference text has a "z"
    assert scores[0] < 0.05 and scores[1] == pytest.approx(1.0)
    again = Calibration.from_bytes(cal.to_bytes(), embedder=embedder)
    assert np.allclose(again.index.score(["aab", "qq"]), cal.index.score(["aab", "qq"]))
    with pytest.raises(IndexFormatError, match="fake:letters"):
        Calibration.from_bytes(cal.to_bytes())
    with pytest.raises(IndexFormatError, match="fake:letters"):
        Calibration.from_bytes(cal.to_bytes(), embedder=LetterEmbedder("other"))


def test_corrupt_or_foreign_blobs_are_refused(reference: list[str]) -> None:
    blob = calibrate(reference[:100]).to_bytes()
    with pytest.raises(IndexFormatError):
        Calibration.from_bytes(b"not an npz")
    with pytest.raises(IndexFormatError):
        Calibration.from_bytes(blob[: len(blob) // 2])
    with pytest.raises(IndexFormatError, match="without a calibration"):
        Calibration.from_bytes(ReferenceIndex.build(reference[:50]).to_bytes())


def test_a_different_background_version_is_logged(reference: list[str], monkeypatch: pytest.MonkeyPatch,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    blob = calibrate(reference[:100]).to_bytes()
    monkeypatch.setattr("service.drift.ood.background_version", lambda: "0.0-other")
    with caplog.at_level("WARNING", logger="service.drift.ood"):
        Calibration.from_bytes(blob)
    assert [r.getMessage() for r in caplog.records] == ["drift.background_changed"]
