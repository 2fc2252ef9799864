"""Exact and near-duplicate texts among many, fast enough for 100k fine-tuning examples.

Exact: the same normalised text (case, punctuation and spacing ignored). Near: Jaccard
similarity of the byte 5-gram sets of the normalised texts at or above a threshold (0.9), found
with MinHash signatures and LSH banding, then verified exactly. Texts are capped at
``MAX_CHARS`` characters for the near check. Blocking CPU work; memory is O(number of texts).
"""

from __future__ import annotations

import hashlib
import itertools
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from service.drift.text import normalise

__all__ = ["DuplicateFinder", "DuplicateGroups"]

MAX_CHARS = 1000
_SHINGLE = 5
_PERMUTATIONS = 64
_BANDS = 8  # 8 bands x 8 rows: a pair at Jaccard 0.9 becomes a candidate with p ≈ 0.99
_MIX = np.uint64(0x9E3779B97F4A7C15)  # odd multiplier (Fibonacci hashing) spreading 40-bit codes
_CHUNK_DOCS = 2000
_BIG_BUCKET = 100
_CACHE = 5000  # above this, a bucket's members are compared to their neighbours only


@dataclass(frozen=True, slots=True)
class DuplicateGroups:
    """Groups of line numbers (each sorted, groups by first line): exact, then near-only ones."""

    exact: list[list[int]]
    near: list[list[int]]


class _UnionFind:
    def __init__(self, size: int) -> None:
        self.parent = list(range(size))

    def find(self, item: int) -> int:
        while self.parent[item] != item:
            self.parent[item] = self.parent[self.parent[item]]
            item = self.parent[item]
        return item

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _shingles(key: str) -> set[str]:
    """The character 5-grams of ``key`` (the set Jaccard is taken on)."""
    padded = key.ljust(_SHINGLE)
    return {padded[i:i + _SHINGLE] for i in range(len(padded) - _SHINGLE + 1)}


def _signatures(keys: list[str], a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """MinHash signatures (n, _PERMUTATIONS) uint64 of the byte 5-grams of ``keys``."""
    out = np.empty((len(keys), _PERMUTATIONS), dtype=np.uint64)
    for first in range(0, len(keys), _CHUNK_DOCS):
        encoded = [key.encode("utf-8").ljust(_SHINGLE) for key in keys[first:first + _CHUNK_DOCS]]
        lengths = np.fromiter((len(e) for e in encoded), dtype=np.int64, count=len(encoded))
        buf = np.frombuffer(b"".join(encoded), dtype=np.uint8).astype(np.uint64)
        code = buf[:len(buf) - _SHINGLE + 1].copy()
        for shift in range(1, _SHINGLE):  # a 40-bit code per window of 5 bytes
            code = (code << np.uint64(8)) | buf[shift:len(buf) - _SHINGLE + 1 + shift]
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        windows = lengths - _SHINGLE + 1
        # the windows that lie inside one document: start of each doc + 0..windows-1
        offsets = np.arange(int(windows.sum())) - np.repeat(np.cumsum(windows) - windows, windows)
        hashed = (code[np.repeat(starts, windows) + offsets] * _MIX) >> np.uint64(32)
        bounds = np.concatenate(([0], np.cumsum(windows)[:-1]))
        for j in range(_PERMUTATIONS):
            # multiply-shift hashing (Dietzfelbinger): wraps mod 2**64, keep the high 32 bits
            values = (a[j] * hashed + b[j]) >> np.uint64(32)
            out[first:first + len(encoded), j] = np.minimum.reduceat(values, bounds)
    return out


class DuplicateFinder:
    """Collect texts with their line numbers (:meth:`add`), then :meth:`groups`."""

    def __init__(self, threshold: float = 0.9, seed: int = 0) -> None:
        if not 0 < threshold <= 1:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        self.threshold = threshold
        self._seed = seed
        self._by_key: dict[bytes, list[int]] = {}
        self._keys: list[str] = []  # one normalised text per distinct key, capped
        self._first_lines: list[int] = []

    def add(self, line: int, text: str) -> None:
        """Remember ``text`` of ``line``; empty texts are ignored."""
        key = normalise(text)
        if not key:
            return
        digest = hashlib.blake2b(key.encode("utf-8"), digest_size=12).digest()
        lines = self._by_key.get(digest)
        if lines is None:
            self._by_key[digest] = [line]
            self._keys.append(key[:MAX_CHARS])
            self._first_lines.append(line)
        else:
            lines.append(line)

    def groups(self) -> DuplicateGroups:
        """Exact groups (same normalised text) and near groups (Jaccard ≥ threshold, not all exact)."""
        exact = sorted((lines for lines in self._by_key.values() if len(lines) > 1), key=lambda g: g[0])
        near = self._near() if len(self._keys) > 1 else []
        if near:
            members = {first: lines for lines in self._by_key.values() for first in lines[:1]}
            near = [sorted(line for first in group for line in members[first]) for group in near]
        return DuplicateGroups(exact=exact, near=sorted(near, key=lambda g: g[0]))

    def _near(self) -> list[list[int]]:
        rng = np.random.default_rng(self._seed)
        a = rng.integers(1, 2**63, size=_PERMUTATIONS, dtype=np.uint64) | np.uint64(1)
        b = rng.integers(0, 2**63, size=_PERMUTATIONS, dtype=np.uint64)
        signatures = _signatures(self._keys, a, b)
        rows = _PERMUTATIONS // _BANDS
        mix = rng.integers(1, 2**63, size=rows, dtype=np.uint64) | np.uint64(1)
        candidates: set[tuple[int, int]] = set()
        for band in range(_BANDS):
            # one 64-bit key per row of the band; equal rows share it, a collision only adds a
            # candidate that the exact check below rejects
            keys = (signatures[:, band * rows:(band + 1) * rows] * mix).sum(axis=1)
            order = np.argsort(keys, kind="stable")
            bounds = np.concatenate(([0], np.flatnonzero(np.diff(keys[order])) + 1, [len(order)]))
            for start, stop in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
                if stop - start < 2:
                    continue
                listed = order[start:stop].tolist()
                if len(listed) > _BIG_BUCKET:
                    candidates.update(itertools.pairwise(listed))
                else:
                    candidates.update((x, y) for i, x in enumerate(listed) for y in listed[i + 1:])
        union = _UnionFind(len(self._keys))
        # pairs come sorted by their first member, so a small cache of shingle sets serves most
        # lookups; it is bounded because a set of short strings costs ~10 kB per text
        cache: dict[int, set[str]] = {}
        for x, y in self._likely(candidates, signatures):
            if union.find(x) == union.find(y):
                continue
            if len(cache) > _CACHE:
                cache.clear()
            sx = cache[x] if x in cache else cache.setdefault(x, _shingles(self._keys[x]))
            sy = cache[y] if y in cache else cache.setdefault(y, _shingles(self._keys[y]))
            if len(sx & sy) >= self.threshold * len(sx | sy):
                union.union(x, y)
        grouped: defaultdict[int, list[int]] = defaultdict(list)
        for index in range(len(self._keys)):
            grouped[union.find(index)].append(self._first_lines[index])
        return [group for group in grouped.values() if len(group) > 1]

    def _likely(self, candidates: set[tuple[int, int]], signatures: np.ndarray) -> list[tuple[int, int]]:
        """The candidate pairs whose signatures agree on at least ``threshold - 0.2`` of positions.

        The agreement estimates the Jaccard similarity; a pair truly at 0.9 agrees on fewer than
        0.7 of 64 positions with probability ~1e-7, so this drops only dissimilar pairs before
        the exact check, which costs a numpy call per pair.
        """
        if not candidates:
            return []
        pairs = np.array(sorted(candidates), dtype=np.int64)
        keep = np.empty(len(pairs), dtype=bool)
        for start in range(0, len(pairs), 50_000):
            chunk = pairs[start:start + 50_000]
            agreement = (signatures[chunk[:, 0]] == signatures[chunk[:, 1]]).mean(axis=1)
            keep[start:start + 50_000] = agreement >= self.threshold - 0.2
        return [(int(x), int(y)) for x, y in pairs[keep]]
