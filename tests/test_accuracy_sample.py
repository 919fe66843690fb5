"""The shipped thresholds on a fixed sample of the shared evaluation data (../shared/eval/lfw-gray).

At the pack's accept threshold no impostor pair of the sample is a match, no genuine pair of good quality is a
mismatch, and the manifest's thresholds are the ones the last calibration (docs/accuracy/metrics.json) wrote.
"""

from __future__ import annotations

import itertools
import json
import os
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from verifier.batch.decision import PhotoFindings
from verifier.batch.worker import PhotoJob, init_worker, process_chunk
from verifier.core.packs import load_pack
from verifier.core.results import Decision
from verifier.core.score import decide
from verifier.photos.profiles import load_profile

ROOT = Path(__file__).resolve().parent.parent
METRICS = ROOT / "docs" / "accuracy" / "metrics.json"
EXCLUSIONS = ROOT / "docs" / "accuracy" / "lfw-gray-exclusions.txt"
# Every photo of lfw-gray is grayscale and cropped tight around the face: those two findings describe how the set
# was made, not one photo; blur, pose and exposure findings still mark a photo as poor.
SET_WIDE = {"QUALITY_NOT_COLOUR", "QUALITY_FACE_CUT_OFF"}


def _eval_dir() -> Path | None:
    env = os.environ.get("VERIFIER_EVAL")
    for c in ([Path(env)] if env else []) + [ROOT.parent / "shared" / "eval", Path.cwd().parent / "shared" / "eval"]:
        if (c / "lfw-gray").is_dir():
            return c / "lfw-gray"
    return None


@pytest.fixture(scope="module")
def sample(pipeline) -> tuple[list[str], list[str], np.ndarray, list[bool]]:
    """Every 8th person with two or more photos (up to 3 each) and every 25th with one: names, ids, vectors, good quality."""
    root = _eval_dir()
    if root is None:
        pytest.skip("shared evaluation data ../shared/eval/lfw-gray not found (set VERIFIER_EVAL to the eval folder)")
    excluded = {ln.split("#", 1)[0].strip() for ln in EXCLUSIONS.read_text(encoding="utf-8").splitlines()} - {""}
    people: dict[str, list[Path]] = defaultdict(list)
    for p in sorted(root.glob("*.jpg")):
        if p.name not in excluded:
            people[identity_of_lfw(p)].append(p)
    multi = [k for k, v in sorted(people.items()) if len(v) >= 2][::8]
    single = [k for k, v in sorted(people.items()) if len(v) == 1][::25]
    paths = [p for k in multi for p in people[k][:3]] + [people[k][0] for k in single]
    init_worker(None, None, {"graduation": load_profile("graduation")}, pipeline)
    works = []
    for start in range(0, len(paths), 16):
        jobs = [PhotoJob("", "graduation", p.name, p.read_bytes()) for p in paths[start:start + 16]]
        works += process_chunk(jobs)
    keep = [i for i, w in enumerate(works) if w.embedding is not None]
    good = [not (set(PhotoFindings("graduation", tuple(works[i].codes)).quality_issues) - SET_WIDE) for i in keep]
    return [paths[i].name for i in keep], [identity_of_lfw(paths[i]) for i in keep], np.stack([works[i].embedding for i in keep]), good


def identity_of_lfw(path: Path) -> str:
    """LFW names: the identity is everything before the last `_NNNN`."""
    return path.stem.rsplit("_", 1)[0]


def test_sample_is_large_enough_to_mean_something(sample) -> None:
    names, ids, _, good = sample
    n_gen = sum(1 for a, b in itertools.combinations(ids, 2) if a == b)
    assert len(names) >= 250 and n_gen >= 150 and sum(good) >= 0.5 * len(good)


def test_no_impostor_pair_is_a_match_at_the_shipped_accept(sample) -> None:
    names, ids, emb, good = sample
    th = load_pack("sface-yunet-int8").thresholds
    scores = emb @ emb.T
    matched = []
    for i, j in itertools.combinations(range(len(ids)), 2):
        if ids[i] != ids[j] and decide(float(scores[i, j]), th, quality_ok=good[i] and good[j]) is Decision.MATCH:
            matched.append((names[i], names[j], round(float(scores[i, j]), 4)))
    assert matched == [], f"impostor pairs decided match at accept {th.accept}: {matched}"


def test_no_good_quality_genuine_pair_is_a_mismatch(sample) -> None:
    names, ids, emb, good = sample
    th = load_pack("sface-yunet-int8").thresholds
    failed = []
    for i, j in itertools.combinations(range(len(ids)), 2):
        if ids[i] == ids[j] and good[i] and good[j]:
            s = float(emb[i] @ emb[j])
            if decide(s, th, quality_ok=True) is Decision.MISMATCH:
                failed.append((names[i], names[j], round(s, 4)))
    assert failed == [], f"genuine pairs of good quality decided mismatch below reject {th.reject}: {failed}"


def test_manifest_thresholds_are_the_last_calibrations() -> None:
    m = json.loads(METRICS.read_text(encoding="utf-8"))
    pack = load_pack(m["pack"])
    for name in ("accept", "reject", "duplicate"):
        assert getattr(pack.thresholds, name) == m["recommended"][name]["value"], name
    assert pack.thresholds_source["date"] == m["date"] and pack.thresholds_source["data"] == m["data"]
    assert pack.thresholds_source["figures"]["pairs"]["impostor"] == m["systems"][0]["impostor"]
