"""The standard verification protocols: LFW-style pairs.txt over an image folder, packed .bin sets, 10-fold accuracy.

- `pairs.txt` (LFW View 2 and the sets that copy its format): a header `<folds> <pairs per fold>` (or none),
  then lines `name n1 n2` (same person) and `name1 n1 name2 n2` (different people); image n of a person is
  `<name>/<name>_<nnnn>.<ext>` or `<name>_<nnnn>.<ext>` in the folder.
- `.bin` (lfw.bin, cfp_fp.bin, agedb_30.bin, calfw.bin, cplfw.bin): a pickled pair (list of encoded images,
  list of is-same flags), two images per pair, already aligned to 112x112, so only the recognizer is measured.
  They are read with an unpickler that accepts plain containers, bytes and numpy arrays only (a pickle can
  otherwise run code).
- 10-fold accuracy as the literature reports it: for each fold, the threshold with the best accuracy on the
  other nine folds is applied to it; the mean and standard deviation over the folds.
"""

from __future__ import annotations

import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from verifier.calibrate.pairs import PairSet
from verifier.common.faceset import IMAGE_SUFFIXES
from verifier.common.reasons import VerifierError

FOLDS = 10
_SAFE_GLOBALS = {
    ("builtins", "list"), ("builtins", "tuple"), ("builtins", "bytes"), ("builtins", "bytearray"), ("builtins", "bool"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"), ("_codecs", "encode"),
}


def _index_images(root: Path) -> dict[str, Path]:
    """File stem -> path for every image in root and one folder level down."""
    found: dict[str, Path] = {}
    for p in sorted(root.glob("*")) + sorted(root.glob("*/*")):
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES:
            found.setdefault(p.stem, p)
    return found


def read_lfw_pairs(pairs_txt: Path, images: Path) -> PairSet:
    """The pairs of an LFW-style pairs.txt whose two images are in `images`; folds from the file's layout."""
    try:
        lines = [ln.split() for ln in pairs_txt.read_text(encoding="utf-8").splitlines() if ln.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise VerifierError("PAIRS_FILE_INVALID", detail=f"{pairs_txt}: {exc}") from None
    if not images.is_dir():
        raise VerifierError("PAIRS_FILE_INVALID", detail=f"{images} is not a folder")
    n_folds, per_fold = FOLDS, None
    if lines and len(lines[0]) in (1, 2) and all(x.isdigit() for x in lines[0]):
        head = lines.pop(0)
        n_folds = int(head[0])
        per_fold = int(head[1]) if len(head) == 2 else None
    index = _index_images(images)
    paths: dict[Path, int] = {}
    identities: list[str] = []
    ia, ib, same, folds = [], [], [], []
    missing = 0
    block = 2 * per_fold if per_fold else max(1, -(-len(lines) // n_folds))
    for k, row in enumerate(lines, start=1):
        if len(row) == 3 and re.fullmatch(r"\d+", row[1]) and re.fullmatch(r"\d+", row[2]):
            sides, is_same = [(row[0], int(row[1])), (row[0], int(row[2]))], True
        elif len(row) == 4 and row[1].isdigit() and row[3].isdigit():
            sides, is_same = [(row[0], int(row[1])), (row[2], int(row[3]))], False
        else:
            raise VerifierError("PAIRS_FILE_INVALID", detail=f"{pairs_txt} line {k}: {' '.join(row)!r}")
        found = [index.get(f"{name}_{n:04d}") for name, n in sides]
        if None in found:
            missing += 1
            continue
        ids = []
        for (name, _), p in zip(sides, found, strict=True):
            if p not in paths:
                paths[p] = len(paths)
                identities.append(name)
            ids.append(paths[p])
        ia.append(ids[0])
        ib.append(ids[1])
        same.append(is_same)
        folds.append(min(n_folds - 1, (k - 1) // block))
    notes = [f"LFW-style protocol {pairs_txt.name}: {len(lines)} pairs in {n_folds} folds"]
    if missing:
        notes.append(f"{missing} of {len(lines)} pairs left out: an image is not in {images}")
    if not same:
        raise VerifierError("PAIRS_FILE_INVALID", detail=f"no pair of {pairs_txt} has both images in {images}")
    return PairSet(list(paths), identities, np.array(ia, np.int64), np.array(ib, np.int64), np.array(same, bool),
                   f"{pairs_txt.name} over {images.name}", notes, folds=np.array(folds, np.int64))


class _SafeUnpickler(pickle.Unpickler):
    """Only containers, bytes, bools and numpy arrays: what a .bin verification set holds."""

    def find_class(self, module: str, name: str):  # noqa: ANN201 - pickle's signature
        if (module, name) in _SAFE_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused global {module}.{name}")


@dataclass
class AlignedPairs:
    """A packed verification set: aligned 112x112 BGR faces, two per pair, with the labels and folds."""

    name: str
    faces: list[np.ndarray]
    same: np.ndarray
    folds: np.ndarray
    notes: list[str] = field(default_factory=list)

    @property
    def n_pairs(self) -> int:
        return int(self.same.size)


def read_bin(path: Path, max_bytes: int = 2 * 1024**3) -> AlignedPairs:
    """Read a .bin set (pickled (images, is_same)); images decoded to 112x112 BGR, 10 consecutive folds."""
    import cv2

    try:
        if path.stat().st_size > max_bytes:
            raise VerifierError("PAIRS_FILE_INVALID", detail=f"{path} is larger than {max_bytes} bytes")
        with path.open("rb") as fh:
            bins, issame = _SafeUnpickler(fh, encoding="bytes").load()
    except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
        raise VerifierError("PAIRS_FILE_INVALID", detail=f"{path}: {exc}") from None
    same = np.asarray(issame, dtype=bool)
    if len(bins) != 2 * same.size or same.size == 0:
        raise VerifierError("PAIRS_FILE_INVALID", detail=f"{path}: {len(bins)} images for {same.size} pairs")
    faces = []
    for k, item in enumerate(bins):
        buf = np.frombuffer(bytes(item), np.uint8) if not isinstance(item, np.ndarray) else item.astype(np.uint8).ravel()
        img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
        if img is None:
            raise VerifierError("PAIRS_FILE_INVALID", detail=f"{path}: image {k} does not decode")
        if img.shape[:2] != (112, 112):
            img = cv2.resize(img, (112, 112), interpolation=cv2.INTER_AREA)
        faces.append(img)
    folds = np.minimum(FOLDS - 1, np.arange(same.size) * FOLDS // same.size)
    return AlignedPairs(path.stem, faces, same, folds, [f"{path.name}: {same.size} aligned pairs in {FOLDS} folds"])


def pairset_of(aligned: AlignedPairs) -> PairSet:
    """The pairs of a .bin set as a PairSet over its 2N faces (a genuine pair's two faces share a made-up identity)."""
    n = aligned.n_pairs
    images = [Path(f"{aligned.name}#{i}") for i in range(2 * n)]
    identities = []
    for k, s in enumerate(aligned.same):
        identities += [f"{aligned.name}:p{k}"] * 2 if s else [f"{aligned.name}:p{k}a", f"{aligned.name}:p{k}b"]
    idx = np.arange(n, dtype=np.int64) * 2
    return PairSet(images, identities, idx, idx + 1, aligned.same.copy(), f"{aligned.name}.bin (aligned)", list(aligned.notes),
                   folds=aligned.folds.copy())


def default_folds(n_pairs: int, k: int = FOLDS, seed: int = 0) -> np.ndarray:
    """k folds of pairs assigned at random (fixed seed), for sets that come without a protocol."""
    rng = np.random.default_rng(seed)
    return rng.permutation(np.arange(n_pairs) % k)


@dataclass(frozen=True)
class FoldAccuracy:
    """10-fold verification accuracy: mean and standard deviation over the folds, and each fold's threshold."""

    mean: float
    std: float
    per_fold: tuple[float, ...]
    thresholds: tuple[float, ...]

    def to_dict(self) -> dict:
        return {"mean": self.mean, "std": self.std, "per_fold": list(self.per_fold), "thresholds": list(self.thresholds)}


def best_threshold(scores: np.ndarray, same: np.ndarray) -> float:
    """The threshold (between neighbouring scores) with the highest accuracy on these pairs."""
    order = np.argsort(scores, kind="stable")
    s, y = scores[order], same[order]
    # accept when score >= t: correct = impostors below t + genuine at or above t
    imp_below = np.concatenate([[0], np.cumsum(~y)])
    gen_above = np.concatenate([[0], np.cumsum(y[::-1])])[::-1]
    correct = imp_below + gen_above
    k = int(np.argmax(correct))
    if k == 0:
        return float(s[0] - 1e-6)
    if k == s.size:
        return float(s[-1] + 1e-6)
    return float((s[k - 1] + s[k]) / 2)


def ten_fold_accuracy(scores: np.ndarray, same: np.ndarray, folds: np.ndarray) -> FoldAccuracy:
    """Accuracy of each fold at the threshold chosen on the other folds (the LFW protocol)."""
    scores, same, folds = np.asarray(scores, np.float64), np.asarray(same, bool), np.asarray(folds)
    accs, ths = [], []
    for f in np.unique(folds):
        test = folds == f
        t = best_threshold(scores[~test], same[~test])
        accs.append(float(np.mean((scores[test] >= t) == same[test])))
        ths.append(t)
    return FoldAccuracy(float(np.mean(accs)), float(np.std(accs)), tuple(accs), tuple(ths))
