"""Out-of-domain scoring against a reference set, its calibration and its serialised form.

A :class:`ReferenceIndex` is fitted on the reference texts (the user messages of the fine-tuning
data) and scores any text: higher = further from the reference. Two methods:

- ``lexical`` (default, offline, ~10k queries/s): the word likelihood ratio of ``lexical.py``;
- ``knn``: 1 - the mean cosine similarity to the ``k`` nearest reference vectors of an
  :class:`~service.drift.embeddings.Embedder` (the upstream's ``/v1/embeddings`` or MiniLM).

:func:`calibrate` picks the out-of-domain threshold as a percentile of held-out reference scores,
then refits on everything. ``Calibration.to_bytes()`` / ``from_bytes()`` give one self-describing
blob (an ``.npz`` without pickles) that the store can keep next to the reference texts.

Everything here is blocking CPU work (plus the embedder's network I/O for ``knn``): run it in a
job or a thread. This module must not import ``gateway`` or ``store``.
"""

from __future__ import annotations

import io
import json
import logging
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np

from service.drift.embeddings import Embedder, normalise_rows
from service.drift.lexical import BACKGROUND_SOURCE, LexicalModel, LexicalParams, background_version
from service.drift.text import normalise

__all__ = ["Calibration", "IndexFormatError", "Method", "ReferenceIndex", "calibrate", "dedupe"]

logger = logging.getLogger(__name__)

_FORMAT = "tunewatch.reference-index"
_FORMAT_VERSION = 1
#: queries scored per matrix product in kNN (bounds memory: chunk x reference size floats)
_KNN_CHUNK = 512
#: the smallest reference that can be calibrated (fit set and held-out set both non-trivial)
MIN_REFERENCE = 20


class Method(StrEnum):
    LEXICAL = "lexical"
    KNN = "knn"


class IndexFormatError(ValueError):
    """A serialised index or calibration could not be read (corrupt, other format or version)."""


def dedupe(texts: Sequence[str]) -> list[str]:
    """``texts`` without empty ones and without repeats of the same normalised text, order kept."""
    seen: set[str] = set()
    unique: list[str] = []
    for text in texts:
        key = normalise(text)
        if key and key not in seen:
            seen.add(key)
            unique.append(text)
    return unique


class ReferenceIndex:
    """A fitted reference; :meth:`score` is blocking and safe to call from several threads."""

    def __init__(self, method: Method, size: int, *, lexical: LexicalModel | None = None,
                 embedder: Embedder | None = None, matrix: np.ndarray | None = None, k: int = 10) -> None:
        self.method = method
        self.size = size
        self.k = k
        self._lexical = lexical
        self._embedder = embedder
        self._matrix = matrix

    @classmethod
    def build(cls, texts: Sequence[str], *, embedder: Embedder | None = None, k: int = 10,
              params: LexicalParams | None = None) -> ReferenceIndex:
        """Fit on ``texts``: the lexical model, or ``embedder``'s vectors for kNN when one is given.

        Raises:
            ValueError: no usable text, or ``k`` < 1.
            UpstreamError: (kNN with an upstream embedder) the embeddings call failed.
        """
        if not texts:
            raise ValueError("the reference is empty: give at least one query")
        if embedder is None:
            return cls(Method.LEXICAL, len(texts), lexical=LexicalModel.fit(texts, params))
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        matrix = normalise_rows(embedder.embed(texts))
        return cls(Method.KNN, len(texts), embedder=embedder, matrix=matrix, k=min(k, len(texts)))

    def score(self, texts: Sequence[str]) -> np.ndarray:
        """Distance of each text from the reference, float64 of shape (n,); higher = further.

        ``lexical``: nats (a likelihood ratio, unbounded, negative = typical of the reference);
        ``knn``: 1 - mean cosine similarity of the k nearest, in [0, 2].
        """
        if not texts:
            return np.zeros(0, dtype=np.float64)
        if self._lexical is not None:
            return self._lexical.score(texts)
        assert self._embedder is not None and self._matrix is not None
        queries = normalise_rows(self._embedder.embed(texts))
        scores = np.empty(len(texts), dtype=np.float64)
        for start in range(0, len(texts), _KNN_CHUNK):
            sims = queries[start:start + _KNN_CHUNK] @ self._matrix.T
            top = np.partition(sims, sims.shape[1] - self.k, axis=1)[:, -self.k:]
            scores[start:start + _KNN_CHUNK] = 1.0 - top.mean(axis=1)
        return scores

    def describe(self) -> dict[str, Any]:
        """What the index is, as JSON-able values (stored in the blob's header)."""
        described: dict[str, Any] = {"method": self.method.value, "size": self.size}
        if self._lexical is not None:
            described["params"] = self._lexical.params.to_dict()
            described["background"] = {**BACKGROUND_SOURCE, "version": background_version()}
        else:
            assert self._embedder is not None
            described["embedder"] = self._embedder.name
            described["k"] = self.k
        return described

    def _arrays(self) -> dict[str, np.ndarray]:
        if self._lexical is not None:
            vocabulary, counts = self._lexical.to_arrays()
            return {"vocabulary": _encode_strings(vocabulary), "counts": counts}
        assert self._matrix is not None
        return {"matrix": self._matrix}

    @classmethod
    def _from_parts(cls, header: dict[str, Any], arrays: dict[str, np.ndarray],
                    embedder: Embedder | None) -> ReferenceIndex:
        method = Method(header["method"])
        size = int(header["size"])
        if method is Method.LEXICAL:
            vocabulary = _decode_strings(arrays["vocabulary"])
            counts = arrays["counts"]
            if len(vocabulary) != len(counts):
                raise IndexFormatError("vocabulary and counts differ in length")
            params = LexicalParams(**header["params"])
            stored = header.get("background", {}).get("version")
            if stored != background_version():
                # scores shift with the word list, so the calibrated threshold may be off
                logger.warning("drift.background_changed", extra={"stored": stored,
                                                                  "installed": background_version()})
            model = LexicalModel(dict(zip(vocabulary, counts.tolist(), strict=True)), params)
            return cls(method, size, lexical=model)
        if embedder is None or embedder.name != header["embedder"]:
            raise IndexFormatError(
                f"this index was built with embedder {header['embedder']!r}: pass that embedder to load it"
            )
        return cls(method, size, embedder=embedder, matrix=arrays["matrix"].astype(np.float32),
                   k=int(header["k"]))

    def to_bytes(self) -> bytes:
        """The index as a self-describing ``.npz`` blob (no pickles)."""
        return _pack({"index": self.describe()}, self._arrays())

    @classmethod
    def from_bytes(cls, data: bytes, embedder: Embedder | None = None) -> ReferenceIndex:
        """Rebuild an index from :meth:`to_bytes`; kNN needs the same ``embedder`` (by name).

        Raises:
            IndexFormatError: not such a blob, or a kNN index without its embedder.
        """
        header, arrays = _unpack(data)
        return cls._from_parts(header["index"], arrays, embedder)


@dataclass(frozen=True, slots=True)
class Calibration:
    """An index refitted on the whole reference and the threshold calibrated before that.

    ``threshold``: a score above it is out of domain. It is the ``percentile`` of the held-out
    reference scores under an index fitted on the other part (``fit_size`` texts), so about
    ``percentile`` % of in-domain queries fall at or below it (``in_domain_rate_on_holdout``).
    Refitting on all texts only lowers in-domain scores, so the final rate is at least that.
    """

    index: ReferenceIndex
    threshold: float
    percentile: float
    in_domain_rate_on_holdout: float
    holdout_size: int
    fit_size: int
    seed: int
    holdout_quantiles: dict[str, float] = field(default_factory=dict)

    def is_out_of_domain(self, scores: np.ndarray) -> np.ndarray:
        """Boolean array: which scores are above the threshold."""
        return np.asarray(scores) > self.threshold

    def score(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(scores, out-of-domain flags) of ``texts``; blocking, see :meth:`ReferenceIndex.score`."""
        scores = self.index.score(texts)
        return scores, self.is_out_of_domain(scores)

    def summary(self) -> dict[str, Any]:
        """JSON-able description for the import-reference report and the blob header."""
        return {
            "threshold": self.threshold, "percentile": self.percentile,
            "in_domain_rate_on_holdout": self.in_domain_rate_on_holdout,
            "holdout_size": self.holdout_size, "fit_size": self.fit_size, "seed": self.seed,
            "holdout_quantiles": self.holdout_quantiles, "index": self.index.describe(),
        }

    def to_bytes(self) -> bytes:
        """Index and threshold as one ``.npz`` blob (no pickles)."""
        summary = self.summary()
        return _pack({"index": summary.pop("index"), "calibration": summary}, self.index._arrays())

    @classmethod
    def from_bytes(cls, data: bytes, embedder: Embedder | None = None) -> Calibration:
        """Rebuild from :meth:`to_bytes`. Raises IndexFormatError as ``ReferenceIndex.from_bytes``."""
        header, arrays = _unpack(data)
        if "calibration" not in header:
            raise IndexFormatError("this blob holds an index without a calibration")
        index = ReferenceIndex._from_parts(header["index"], arrays, embedder)
        c = header["calibration"]
        return cls(index=index, threshold=float(c["threshold"]), percentile=float(c["percentile"]),
                   in_domain_rate_on_holdout=float(c["in_domain_rate_on_holdout"]),
                   holdout_size=int(c["holdout_size"]), fit_size=int(c["fit_size"]), seed=int(c["seed"]),
                   holdout_quantiles={str(k): float(v) for k, v in c["holdout_quantiles"].items()})


def calibrate(reference_texts: Sequence[str], percentile: float = 95.0, holdout: float = 0.2, seed: int = 0,
              *, embedder: Embedder | None = None, k: int = 10,
              params: LexicalParams | None = None) -> Calibration:
    """Fit on ``1 - holdout`` of the (deduplicated) reference, set the threshold at ``percentile``
    of the held-out scores, then refit on all of it. Blocking; deterministic for a ``seed``.

    Raises:
        ValueError: fewer than ``MIN_REFERENCE`` distinct texts, or an argument out of range.
        UpstreamError: (kNN with an upstream embedder) the embeddings call failed.
    """
    if not 0 < percentile < 100:
        raise ValueError(f"percentile must be between 0 and 100, got {percentile}")
    if not 0 < holdout < 1:
        raise ValueError(f"holdout must be a fraction between 0 and 1, got {holdout}")
    texts = dedupe(reference_texts)
    if len(texts) < MIN_REFERENCE:
        raise ValueError(f"the reference has {len(texts)} distinct queries; calibration needs at least "
                         f"{MIN_REFERENCE} (add more fine-tuning examples)")
    order = np.random.default_rng(seed).permutation(len(texts))
    n_holdout = max(1, round(holdout * len(texts)))
    held = [texts[i] for i in order[:n_holdout]]
    fit = [texts[i] for i in order[n_holdout:]]
    scores = ReferenceIndex.build(fit, embedder=embedder, k=k, params=params).score(held)
    threshold = float(np.percentile(scores, percentile))
    quantiles = {f"p{q}": float(np.percentile(scores, q)) for q in (5, 50, 95, 99)}
    return Calibration(
        index=ReferenceIndex.build(texts, embedder=embedder, k=k, params=params),
        threshold=threshold, percentile=float(percentile),
        in_domain_rate_on_holdout=float(np.mean(scores <= threshold)),
        holdout_size=len(held), fit_size=len(fit), seed=seed, holdout_quantiles=quantiles,
    )


def _encode_strings(values: Sequence[str]) -> np.ndarray:
    # one UTF-8 buffer of NUL-separated strings: no object arrays, so no pickle on load
    return np.frombuffer("\0".join(values).encode("utf-8"), dtype=np.uint8)


def _decode_strings(array: np.ndarray) -> list[str]:
    raw = array.tobytes().decode("utf-8")
    return raw.split("\0") if raw else []


def _pack(header: dict[str, Any], arrays: dict[str, np.ndarray]) -> bytes:
    header = {"format": _FORMAT, "version": _FORMAT_VERSION, **header}
    buffer = io.BytesIO()
    # typed as Any: numpy's stub mixes the array keywords with its own ``allow_pickle`` flag
    members: dict[str, Any] = {"header": np.frombuffer(json.dumps(header).encode(), dtype=np.uint8), **arrays}
    np.savez_compressed(buffer, **members)
    return buffer.getvalue()


def _unpack(data: bytes) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        header = json.loads(arrays.pop("header").tobytes())
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise IndexFormatError(f"not a serialised reference index: {exc}") from exc
    if not isinstance(header, dict) or header.get("format") != _FORMAT:
        raise IndexFormatError("not a serialised reference index (wrong format tag)")
    if header.get("version") != _FORMAT_VERSION:
        raise IndexFormatError(f"reference index format version {header.get('version')} is not supported "
                               f"(this tunewatch reads {_FORMAT_VERSION}): re-import the reference")
    return header, arrays
