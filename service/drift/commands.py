"""What the CLI's ``import-reference`` and ``ood-score`` commands call (blocking, no database).

``import_reference`` reads and calibrates a reference file and hands back what the store keeps:
the deduplicated texts and one calibration blob. ``ood_score_lines`` scores queries against a
reference file for ``tunewatch ood-score``. Rendering for people lives here too, data goes out as
plain dicts. This module must not import ``gateway`` or ``store``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from rich.table import Table

from service.drift.embeddings import Embedder
from service.drift.ood import Calibration, calibrate, dedupe
from service.drift.reference import ReferenceFormat, ReferenceSet, read_lines, read_reference

__all__ = ["ImportedReference", "import_reference", "ood_score_lines", "read_queries", "render_import"]

#: queries scored per call in ood_score_lines (keeps memory flat on a large input)
_BATCH = 1024


@dataclass(frozen=True, slots=True)
class ImportedReference:
    """A read and calibrated reference: store ``texts`` and ``calibration.to_bytes()``."""

    source: ReferenceSet
    texts: list[str]
    calibration: Calibration

    def summary(self) -> dict[str, Any]:
        """JSON-able report of what was imported and calibrated."""
        return {
            "path": self.source.path, "format": self.source.format.value,
            "queries_read": len(self.source.texts), "queries_distinct": len(self.texts),
            "examples_without_user_message": self.source.skipped,
            **self.calibration.summary(),
        }


def import_reference(
    path: Path | str, *, percentile: float = 95.0, holdout: float = 0.2, seed: int = 0,
    embedder: Embedder | None = None, fmt: ReferenceFormat | None = None,
) -> ImportedReference:
    """Read ``path``, deduplicate its queries, calibrate the out-of-domain threshold on a held-out part.

    Blocking (file I/O and CPU; network too when ``embedder`` is an upstream one).

    Raises:
        DataFileError: the file cannot be read or parsed (the message names file and line).
        ValueError: too few distinct queries to calibrate, or bad percentile/holdout.
    """
    source = read_reference(path, fmt)
    texts = dedupe(source.texts)
    calibration = calibrate(texts, percentile=percentile, holdout=holdout, seed=seed, embedder=embedder)
    return ImportedReference(source=source, texts=texts, calibration=calibration)


def ood_score_lines(reference_path: Path | str, input_lines: Iterable[str], *, percentile: float = 95.0,
                    embedder: Embedder | None = None) -> Iterator[dict[str, Any]]:
    """For each non-blank input line (one query), ``{"text", "score", "out_of_domain"}``.

    The reference is read and calibrated first (as ``import_reference``); input lines are
    streamed in batches, their line endings stripped; higher score = further from the reference.
    Blocking. Raises as :func:`import_reference`.
    """
    calibration = import_reference(reference_path, percentile=percentile, embedder=embedder).calibration
    queries = (line.rstrip("\r\n") for line in input_lines)
    queries = (query for query in queries if query.strip())
    while batch := list(islice(queries, _BATCH)):
        scores, flags = calibration.score(batch)
        for text, score, flag in zip(batch, scores.tolist(), flags.tolist(), strict=True):
            yield {"text": text, "score": round(score, 6), "out_of_domain": bool(flag)}


def read_queries(path: Path | str | None, stdin: Iterable[str] | None = None) -> Iterator[str]:
    """The lines of ``path``, or of ``stdin`` when ``path`` is None or ``"-"``, streamed.

    A file is read as UTF-8 line by line (DataFileError names the line of a bad byte); ``stdin``
    is whatever text stream the caller passes (``sys.stdin``), left as it decodes.
    """
    if path is None or str(path) == "-":
        if stdin is None:
            raise ValueError("read_queries needs stdin when path is '-' or None")
        yield from stdin
        return
    for _, line in read_lines(path):
        yield line


def render_import(imported: ImportedReference) -> Table:
    """A two-column rich table of :meth:`ImportedReference.summary` for people."""
    s = imported.summary()
    table = Table(title=f"reference {s['path']}", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    rows = [
        ("format", s["format"]),
        ("queries", f"{s['queries_distinct']} distinct of {s['queries_read']} read"),
        ("method", s["index"]["method"]),
        ("threshold", f"{s['threshold']:.4f} (p{s['percentile']:g} of {s['holdout_size']} held-out queries, "
                      f"fitted on {s['fit_size']})"),
        ("in-domain on held-out", f"{s['in_domain_rate_on_holdout']:.1%}"),
    ]
    if s["examples_without_user_message"]:
        rows.append(("skipped", f"{s['examples_without_user_message']} examples without a user message"))
    for what, value in rows:
        table.add_row(what, str(value))
    return table
