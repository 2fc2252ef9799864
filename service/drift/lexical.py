"""The offline out-of-domain scorer: a word likelihood ratio against general English.

Chosen by measurement (``bench/ood_backends.py``): on InsuranceQA (reference) vs CLINC150 (all
domains and ``oos``) it beats TF-IDF kNN and comes close to a MiniLM sentence-embedding kNN
while scoring three orders of magnitude more queries per second, with no model to install.

The score of a text is the log-likelihood ratio, in nats, of its words under two unigram models
(the cross-entropy difference of Moore & Lewis, ACL 2010, summed instead of averaged)::

    score(text) = sum_w log P_background(w) - log P_reference(w)

``P_reference`` is the reference's word distribution with add-alpha smoothing over the union
vocabulary; ``P_background`` is general English from the ``wordfreq`` package (its data ships in
the wheel: no network, no download), floored so that a word English has never seen is not
infinitely surprising. Higher = further from the reference; a text with no words scores 0.

Blocking (CPU); fit and score never touch the network or the disk, but loading the background
list reads ~1.5 MB from site-packages once per process.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import cache
from importlib.metadata import version
from types import MappingProxyType

import numpy as np
import wordfreq

from service.drift.text import words

__all__ = ["BACKGROUND_SOURCE", "LexicalModel", "LexicalParams", "english_background"]

_DIGITS = re.compile(r"\d")
#: what the background is; stored with a serialised model so a mismatch can be reported
BACKGROUND_SOURCE = {"package": "wordfreq", "wordlist": "large", "lang": "en"}


@cache
def english_background() -> Mapping[str, float]:
    """General-English word frequencies (wordfreq ``large`` list, 321k words), loaded once.

    Read-only and computed at most once per process (the cache holds one immutable value, the
    equivalent of a constant that is expensive to build). Blocking: ~0.3 s the first time.
    """
    return MappingProxyType(wordfreq.get_frequency_dict("en", wordlist="large"))


def background_version() -> str:
    """Version of the installed ``wordfreq``, recorded next to serialised models."""
    return version("wordfreq")


@dataclass(frozen=True, slots=True)
class LexicalParams:
    """Smoothing of the two unigram models (tuned on a split of the InsuranceQA train set).

    ``alpha``: add-alpha pseudo-count of every word in the reference model.
    ``background_floor``: smallest probability given to a word by the background model.
    """

    alpha: float = 0.1
    background_floor: float = 1e-6

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


class LexicalModel:
    """A fitted reference word model; :meth:`score` gives the likelihood ratio per text."""

    def __init__(
        self,
        counts: Mapping[str, int],
        params: LexicalParams | None = None,
        background: Mapping[str, float] | None = None,
    ) -> None:
        self.params = params or LexicalParams()
        self._counts = dict(counts)
        self._background = background if background is not None else english_background()
        total = sum(self._counts.values())
        extra = sum(1 for word in self._counts if word not in self._background)
        vocabulary = len(self._background) + extra + 1  # +1: the class of never-seen words
        self._log_denominator = math.log(total + self.params.alpha * vocabulary)
        self._log_alpha = math.log(self.params.alpha)
        # per-word weights precomputed for the reference vocabulary: scoring is then one dict
        # lookup per word, which is what makes ~10k queries/s on one core
        self._weights = {word: self._weight(word, count) for word, count in self._counts.items()}

    @classmethod
    def fit(
        cls,
        texts: Iterable[str],
        params: LexicalParams | None = None,
        background: Mapping[str, float] | None = None,
    ) -> LexicalModel:
        """Count the words of ``texts``. Raises ValueError when they hold no word at all."""
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(words(text))
        if not counts:
            raise ValueError("the reference texts contain no words")
        return cls(counts, params, background)

    @property
    def counts(self) -> Mapping[str, int]:
        """Word counts of the reference (what :meth:`to_arrays` stores)."""
        return MappingProxyType(self._counts)

    def _background_probability(self, word: str) -> float:
        probability = self._background.get(word)
        if probability is None and any(ch.isdigit() for ch in word):
            # wordfreq stores numbers with their digits replaced by 0 ("2020" → "0000")
            probability = self._background.get(_DIGITS.sub("0", word))
        return max(probability or 0.0, self.params.background_floor)

    def _weight(self, word: str, count: int) -> float:
        log_reference = math.log(count + self.params.alpha) - self._log_denominator
        return math.log(self._background_probability(word)) - log_reference

    def score_one(self, text: str) -> float:
        """Likelihood ratio of one text in nats (higher = further from the reference)."""
        total = 0.0
        weights = self._weights
        for word in words(text):
            weight = weights.get(word)
            if weight is None:
                weight = math.log(self._background_probability(word)) - (
                    self._log_alpha - self._log_denominator
                )
            total += weight
        return total

    def score(self, texts: Sequence[str]) -> np.ndarray:
        """Scores of ``texts`` as a float64 array of shape (n,). Blocking, CPU only."""
        return np.fromiter((self.score_one(text) for text in texts), dtype=np.float64, count=len(texts))

    def to_arrays(self) -> tuple[list[str], np.ndarray]:
        """The vocabulary and its counts (int64), enough to rebuild the model with the same background."""
        vocabulary = sorted(self._counts)
        return vocabulary, np.array([self._counts[word] for word in vocabulary], dtype=np.int64)
