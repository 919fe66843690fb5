"""Genuine and impostor pairs from a PAIRS.csv or an identity-folders layout; each image embedded once."""

from __future__ import annotations

import csv
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from verifier.common.faceset import IMAGE_SUFFIXES, identity_of
from verifier.common.reasons import VerifierError
from verifier.core.results import FaceAnalysis

_TRUE = {"1", "true", "yes", "y", "same", "是"}
_FALSE = {"0", "false", "no", "n", "different", "否"}


@dataclass
class PairSet:
    """Images with their identities, and pairs as index arrays into `images` (same: genuine)."""

    images: list[Path]
    identities: list[str]
    idx_a: np.ndarray
    idx_b: np.ndarray
    same: np.ndarray
    source: str
    notes: list[str] = field(default_factory=list)
    folds: np.ndarray | None = None  # the protocol's fold of each pair (10-fold accuracy); None: assigned at random

    @property
    def n_genuine(self) -> int:
        return int(self.same.sum())

    @property
    def n_impostor(self) -> int:
        return int((~self.same).sum())

    @property
    def n_identities(self) -> int:
        return len(set(self.identities))


@dataclass
class ScoredPairs:
    """Scores of the pairs whose two images both gave an embedding, with identity indices for bootstrapping."""

    scores: np.ndarray
    same: np.ndarray
    ident_a: np.ndarray
    ident_b: np.ndarray
    img_a: np.ndarray
    img_b: np.ndarray
    image_names: list[str]
    identity_names: list[str]
    unusable: dict[str, str]
    pairs_dropped: int
    folds: np.ndarray | None = None

    @property
    def genuine(self) -> np.ndarray:
        return self.scores[self.same]

    @property
    def impostor(self) -> np.ndarray:
        return self.scores[~self.same]

    def pair_names(self, k: int) -> tuple[str, str]:
        """File names of pair k."""
        return self.image_names[int(self.img_a[k])], self.image_names[int(self.img_b[k])]

    def genuine_identity(self) -> np.ndarray:
        """Identity index of each genuine pair."""
        return self.ident_a[self.same]

    def impostor_identities(self) -> tuple[np.ndarray, np.ndarray]:
        """Identity indices of both sides of each impostor pair."""
        return self.ident_a[~self.same], self.ident_b[~self.same]


def _parse_same(value: str, line: int) -> bool:
    v = (value or "").strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise VerifierError("PAIRS_FILE_INVALID", detail=f"line {line}: column 'same' must be 1 or 0, got {value!r}")


def _components(n: int, links: Iterable[tuple[int, int]]) -> list[int]:
    """Connected components (union-find) of n nodes: the root index of each node."""
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in links:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return [root(i) for i in range(n)]


def read_pairs_csv(csv_path: Path) -> PairSet:
    """PAIRS.csv with `file_a,file_b,same` (paths relative to the CSV; optional `id_a,id_b` name the people).

    Without id columns, identities are the groups of images joined by genuine pairs.
    """
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            names = set(reader.fieldnames or ())
            if not {"file_a", "file_b", "same"} <= names:
                raise VerifierError("PAIRS_FILE_INVALID", detail="header must name file_a, file_b and same")
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise VerifierError("PAIRS_FILE_INVALID", detail=str(exc)[:200]) from None
    if not rows:
        raise VerifierError("PAIRS_FILE_INVALID", detail="no pairs")
    base = csv_path.parent
    index: dict[Path, int] = {}
    labels: dict[int, str] = {}
    ia, ib, same = [], [], []
    has_ids = {"id_a", "id_b"} <= names
    for line, row in enumerate(rows, start=2):
        fa, fb = (row.get("file_a") or "").strip(), (row.get("file_b") or "").strip()
        if not fa or not fb:
            raise VerifierError("PAIRS_FILE_INVALID", detail=f"line {line}: empty file name")
        a = index.setdefault(base / fa, len(index))
        b = index.setdefault(base / fb, len(index))
        s = _parse_same(row.get("same", ""), line)
        if has_ids:
            for i, key in ((a, "id_a"), (b, "id_b")):
                name = (row.get(key) or "").strip()
                if name and labels.setdefault(i, name) != name:
                    raise VerifierError("PAIRS_FILE_INVALID", detail=f"line {line}: {key} conflicts with an earlier row")
        ia.append(a)
        ib.append(b)
        same.append(s)
    images = list(index)
    notes = []
    if has_ids and len(labels) == len(images):
        identities = [labels[i] for i in range(len(images))]
    else:
        roots = _components(len(images), ((a, b) for a, b, s in zip(ia, ib, same) if s))
        identities = [f"person-{r}" for r in roots]
        notes.append("identities derived from genuine pairs (images joined by same=1 rows are one person)")
    idx_a, idx_b, flags = np.array(ia, dtype=np.int64), np.array(ib, dtype=np.int64), np.array(same, dtype=bool)
    ids = np.array(identities)
    clash = flags & (ids[idx_a] != ids[idx_b]) | ~flags & (ids[idx_a] == ids[idx_b])
    if clash.any():
        raise VerifierError("PAIRS_FILE_INVALID", detail=f"{int(clash.sum())} row(s) contradict the identities (same=0 within one person)")
    return PairSet(images, identities, idx_a, idx_b, flags, f"pairs file {csv_path.name}", notes)


def _is_image(p: Path) -> bool:
    return p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")


def scan_identity_folders(root: Path) -> tuple[list[Path], list[str], list[str]]:
    """Images and identities: `<identity>_<n>` files at the top level, else one sub-folder per identity."""
    if not root.is_dir():
        raise VerifierError("PAIRS_FILE_INVALID", detail=f"{root} is not a folder")
    top = sorted(p for p in root.iterdir() if _is_image(p))
    notes: list[str] = []
    if top:
        skipped = sorted(p.name for p in root.iterdir() if p.is_dir())
        if skipped:
            notes.append("file-name layout (<identity>_<n>); sub-folders ignored: " + ", ".join(skipped))
        return top, [identity_of(p) for p in top], notes
    images, identities = [], []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        for p in sorted(folder.iterdir()):
            if _is_image(p):
                images.append(p)
                identities.append(folder.name)
    if not images:
        raise VerifierError("PAIRS_FILE_INVALID", detail=f"no images in {root} or its sub-folders")
    notes.append("folder-per-identity layout")
    return images, identities, notes


def all_pairs(images: list[Path], identities: list[str], source: str, notes: list[str] | None = None,
              max_impostor_pairs: int | None = None, seed: int = 0) -> PairSet:
    """Every genuine pair and every impostor pair (impostors sampled down to `max_impostor_pairs` if given)."""
    n = len(images)
    ia, ib = (np.array(x, dtype=np.int64) for x in zip(*itertools.combinations(range(n), 2))) if n > 1 else (np.zeros(0, np.int64),) * 2
    ids = np.array(identities)
    same = ids[ia] == ids[ib] if n > 1 else np.zeros(0, dtype=bool)
    notes = list(notes or [])
    imp = np.flatnonzero(~same)
    if max_impostor_pairs is not None and imp.size > max_impostor_pairs:
        keep = np.sort(np.random.default_rng(seed).choice(imp, max_impostor_pairs, replace=False))
        notes.append(f"impostor pairs sampled: {max_impostor_pairs} of {imp.size} (seed {seed})")
        sel = np.sort(np.concatenate([np.flatnonzero(same), keep]))
        ia, ib, same = ia[sel], ib[sel], same[sel]
    return PairSet(list(images), list(identities), ia, ib, same, source, notes)


def pairs_from_identity_folders(root: Path, max_impostor_pairs: int | None = None) -> PairSet:
    """All genuine and impostor pairs of an identity-folders layout."""
    images, identities, notes = scan_identity_folders(root)
    return all_pairs(images, identities, f"identity folders {root.name}", notes, max_impostor_pairs)


def score_pairs(pairs: PairSet, analyses: list[FaceAnalysis]) -> ScoredPairs:
    """Cosine scores of the pairs from one analysis per image; pairs with an unusable image are dropped and counted."""
    if len(analyses) != len(pairs.images):
        raise ValueError("one analysis per image is required")
    dim = next((a.embedding.shape[-1] for a in analyses if a.embedding is not None), 1)
    emb = np.zeros((len(analyses), dim), dtype=np.float32)
    ok = np.zeros(len(analyses), dtype=bool)
    unusable = {}
    for i, a in enumerate(analyses):
        if a.embedding is None:
            unusable[pairs.images[i].name] = a.reason.code if a.reason else "UNKNOWN"
        else:
            emb[i], ok[i] = a.embedding, True
    return scored_from_embeddings(pairs, emb, ok, unusable)


def scored_from_embeddings(pairs: PairSet, emb: np.ndarray, ok: np.ndarray, unusable: dict[str, str],
                           similarity: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None) -> ScoredPairs:
    """Scores of usable pairs from an embedding matrix (default: dot product of unit vectors)."""
    keep = ok[pairs.idx_a] & ok[pairs.idx_b]
    a, b = pairs.idx_a[keep], pairs.idx_b[keep]
    sim = similarity or (lambda x, y: np.einsum("ij,ij->i", x, y))
    scores = np.zeros(a.size, dtype=np.float64)
    for start in range(0, a.size, 1_000_000):
        stop = start + 1_000_000
        scores[start:stop] = sim(emb[a[start:stop]].astype(np.float64), emb[b[start:stop]].astype(np.float64))
    names = sorted(set(pairs.identities))
    code = {n: i for i, n in enumerate(names)}
    ident = np.array([code[x] for x in pairs.identities], dtype=np.int64)
    return ScoredPairs(
        scores=scores,
        same=pairs.same[keep],
        ident_a=ident[a],
        ident_b=ident[b],
        img_a=a,
        img_b=b,
        image_names=[p.name for p in pairs.images],
        identity_names=names,
        unusable=unusable,
        pairs_dropped=int((~keep).sum()),
        folds=None if pairs.folds is None else pairs.folds[keep],
    )
