"""Many comparisons from a CSV of pairs: each image analysed once, however often it appears."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from verifier.core.workers import analyze_files
from verifier.common.reasons import VerifierError
from verifier.core.results import FaceAnalysis, Thresholds
from verifier.core.score import decide


@dataclass(frozen=True)
class Pair:
    """One row of the pairs file (paths as written, and resolved)."""

    file_a: str
    file_b: str
    path_a: Path
    path_b: Path


def read_pairs(csv_path: Path) -> list[Pair]:
    """Parse a pairs CSV (header with file_a, file_b; other columns ignored)."""
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            if not reader.fieldnames or not {"file_a", "file_b"} <= set(reader.fieldnames):
                raise VerifierError("PAIRS_FILE_INVALID", detail="header must name file_a and file_b")
            base = csv_path.parent
            pairs = []
            for row in reader:
                a, b = (row.get("file_a") or "").strip(), (row.get("file_b") or "").strip()
                pairs.append(Pair(a, b, base / a, base / b))
            return pairs
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise VerifierError("PAIRS_FILE_INVALID", detail=str(exc)[:200]) from None


def compare_pairs(
    pairs: list[Pair],
    thresholds: Thresholds,
    workers: int | None = None,
    pack_id: str | None = None,
    model_dir: Path | None = None,
    progress: Any = None,
) -> Iterator[dict[str, Any]]:
    """One result dictionary per pair, in order."""
    unique = list(dict.fromkeys(str(p) for pair in pairs for p in (pair.path_a, pair.path_b)))
    results: dict[str, FaceAnalysis] = {}
    for path, analysis in analyze_files(unique, workers, pack_id, model_dir):
        results[path] = analysis
        if progress is not None:
            progress.update(1)
    for pair in pairs:
        a, b = results[str(pair.path_a)], results[str(pair.path_b)]
        row: dict[str, Any] = {"file_a": pair.file_a, "file_b": pair.file_b}
        if a.embedding is None or b.embedding is None:
            bad = a.reason or b.reason
            side = "a" if a.reason else "b"
            row.update(score=None, decision="error", reason=bad.code if bad else None, side=side)
            row["message_en"] = bad.message_en if bad else None
        else:
            s = float(np.dot(a.embedding, b.embedding))
            row.update(score=round(s, 4), decision=decide(s, thresholds).value)
        row["faces_a"], row["faces_b"] = len(a.faces), len(b.faces)
        yield row
