"""Accuracy gate for recognizer engine variants against the fp32 reference, on the same aligned faces.

    python benchmarks/engine_accuracy.py            # print the Markdown section
    python benchmarks/engine_accuracy.py --write    # and replace "## Engine accuracy gate (issue 20)" in docs/BENCHMARKS.md

Faces are aligned once with the current pipeline (benchmarks/engine_faces.py: the face set and all of
../shared/eval/lfw-gray less the calibration's exclusions); each variant is the shipped code path
(`Pipeline.load` with VERIFIER_ENGINE / VERIFIER_PRECISION set) embedding those same faces. A variant passes when
cosine to the reference embedding is >= 0.995 for >= 99.9% of faces and no decision at the pack's thresholds
gets worse on any face-set pair or any lfw-gray pair (every genuine and every impostor pair); every change is listed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import load_average, machine_line, write_section  # noqa: E402

SECTION = "## Engine accuracy gate (issue 20)"
COSINE_FLOOR, SHARE = 0.995, 0.999
# A decision change whose score moved by no more than this is float rounding: a different but exact fp32 kernel
# order moves a cosine by ~1e-7, which flips only pairs that sit on a threshold to the 7th decimal.
ROUNDING = 1e-5
LIST_UP_TO = 60
NAMES = ("mismatch", "review", "match")


def embed_with(engine: str, precision: str, faces: np.ndarray, threads: int, max_batch: int | None = None,
               pack: str = "sface-yunet-int8") -> tuple[np.ndarray, str]:
    """Embeddings from the pipeline this engine/precision gives (the shipped code path), and the variant it ran."""
    from dataclasses import replace

    from verifier.common.settings import Settings
    from verifier.core.pipeline import Pipeline

    settings = replace(Settings.from_env(), engine=engine, precision=precision)
    pipe = Pipeline.load(pack, settings=settings, threads=threads)
    backend = pipe.embedder.backend
    if max_batch:
        pipe.embedder.max_batch = max_batch
    out = [pipe.embedder.embed(list(faces[i : i + 64])) for i in range(0, len(faces), 64)]
    return np.concatenate(out), f"{backend.engine}/{backend.precision}"


def codes(scores: np.ndarray, accept: float, reject: float) -> np.ndarray:
    """0 mismatch, 1 review, 2 match: core.score.decide vectorised (checked against decide below)."""
    return np.where(scores >= accept, 2, np.where(scores < reject, 0, 1)).astype(np.int8)


def pair_changes(ref: np.ndarray, var: np.ndarray, ids: np.ndarray, th, th_var=None) -> dict:
    """Decision changes over every pair i < j, by genuine/impostor and from -> to, with the pairs' scores.

    `th_var`: the variant's own thresholds when it is a pack of its own (default: the reference's)."""
    th_var = th_var or th
    from verifier.core.score import decide

    n = len(ref)
    counts = {"genuine": 0, "impostor": 0}
    changes: list[tuple] = []
    max_delta = 0.0
    for i in range(n - 1):
        sr = ref[i + 1 :] @ ref[i]
        sv = var[i + 1 :] @ var[i]
        same = ids[i + 1 :] == ids[i]
        counts["genuine"] += int(same.sum())
        counts["impostor"] += int((~same).sum())
        max_delta = max(max_delta, float(np.abs(sr - sv).max()))
        cr, cv = codes(sr, th.accept, th.reject), codes(sv, th_var.accept, th_var.reject)
        for k in np.nonzero(cr != cv)[0]:
            j = i + 1 + int(k)
            a, b = decide(float(sr[k]), th).value, decide(float(sv[k]), th_var).value
            assert (a, b) == (NAMES[cr[k]], NAMES[cv[k]]), "vectorised decision differs from core.score.decide"
            changes.append((i, j, bool(same[k]), float(sr[k]), float(sv[k]), a, b))
    return {"counts": counts, "changes": changes, "max_delta": max_delta}


def better(change: tuple) -> bool:
    """A genuine pair moving towards match, or an impostor pair moving away from it."""
    _, _, same, _, _, a, b = change
    order = {"mismatch": 0, "review": 1, "match": 2}
    return order[b] > order[a] if same else order[b] < order[a]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--variants", default="openvino/fp32,openvino/bf16")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--changes", type=Path, default=None, help="write every decision change of every variant to this CSV")
    ap.add_argument("--own-pack", default=None,
                    help="gate this pack (its own reference variant and thresholds) against sface-yunet-int8 instead of --variants; "
                         "it passes when cosine holds and, for genuine and for impostor pairs alike, no more decisions get worse than better")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()

    from engine_faces import aligned_set

    from verifier.core.packs import load_pack

    before = load_average()
    t0 = time.perf_counter()
    data = aligned_set()
    th = load_pack("sface-yunet-int8").thresholds
    ids = np.array(data.identities)
    src = np.array(data.sources)
    ref, ref_variant = embed_with("onnxruntime", "fp32", data.faces, args.threads)
    assert ref_variant == "onnxruntime/fp32"
    lines = [
        f"## Pack accuracy gate: {args.own_pack} (issue 20)" if args.own_pack else SECTION,
        "",
        f"`python benchmarks/engine_accuracy.py {' '.join(sys.argv[1:])}` · " + machine_line(),
        f"Faces: {len(data.faces)} aligned once by the current pipeline ({int((src == 'faceset').sum())} face-set photos, "
        f"{int((src == 'lfw-gray').sum())} lfw-gray images; grayscale news photos, not ID photos). Reference: onnxruntime/fp32 (the pack's "
        f"calibration path). Thresholds: accept {th.accept}, reject {th.reject} (verifier/manifests/sface-yunet-int8.json); decisions by "
        "`verifier.core.score.decide`.",
        "",
        "| variant | faces | cosine min | cosine 0.1% quantile | share >= 0.995 | max abs score change | face-set pairs (gen/imp) | decision changes, face set | lfw-gray pairs (gen/imp) | decision changes, lfw-gray | gate |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    details: list[str] = []
    all_changes: list[str] = ["variant,set,image_a,image_b,kind,score_ref,score_variant,decision_ref,decision_variant,verdict"]
    own = load_pack(args.own_pack) if args.own_pack else None
    variants = [f"{own.recognizer['reference']}@{own.id}"] if own else ["onnxruntime/fp32@batch1", *args.variants.split(",")]
    for variant in variants:
        engine, precision = variant.split("@")[0].split("/")
        if own:
            emb, ran = embed_with(engine, precision, data.faces, args.threads, pack=own.id)
        else:
            emb, ran = embed_with(engine, precision, data.faces, args.threads, 1 if "@batch1" in variant else None)
        assert ran == variant.split("@")[0], f"asked for {variant}, the pipeline ran {ran}"
        th_var = own.thresholds if own else th
        cos = (emb * ref).sum(1)
        share = float((cos >= COSINE_FLOOR).mean())
        parts = {}
        for name in ("faceset", "lfw-gray"):
            keep = src == name
            parts[name] = pair_changes(ref[keep], emb[keep], ids[keep], th, th_var)
        changes = parts["faceset"]["changes"] + parts["lfw-gray"]["changes"]
        worse = [c for c in changes if not better(c) and abs(c[4] - c[3]) > ROUNDING]
        rounding = [c for c in changes if abs(c[4] - c[3]) <= ROUNDING]
        ok = share >= SHARE and not worse
        if own:  # its own thresholds move single pairs both ways: judge the balance per kind
            net = {kind: sum(1 if better(c) else -1 for c in changes if c[2] == (kind == "genuine")) for kind in ("genuine", "impostor")}
            ok = share >= SHARE and min(net.values()) >= 0
            details.append(f"{variant} at its own thresholds (accept {th_var.accept}, reject {th_var.reject}) against sface-yunet-int8 at its own: "
                           f"net better-minus-worse decisions: genuine {net['genuine']:+,}, impostor {net['impostor']:+,}.")
        fmt = lambda p: f"{p['counts']['genuine']:,}/{p['counts']['impostor']:,}"  # noqa: E731
        lines.append(
            f"| {variant} | {len(cos)} | {cos.min():.5f} | {np.quantile(cos, 0.001):.5f} | {share:.4%} | "
            f"{max(parts['faceset']['max_delta'], parts['lfw-gray']['max_delta']):.4f} | {fmt(parts['faceset'])} | {len(parts['faceset']['changes'])} | "
            f"{fmt(parts['lfw-gray'])} | {len(parts['lfw-gray']['changes'])} ({len(rounding)} rounding, {len(worse)} worse beyond it) | "
            f"{'PASS' if ok else 'FAIL'} |"
        )
        tally: dict[str, int] = {}
        rows = []
        for name in ("faceset", "lfw-gray"):
            keep = np.nonzero(src == name)[0]
            for c in parts[name]["changes"]:
                i, j, same, a_s, b_s, a, b = c
                kind = "genuine" if same else "impostor"
                verdict = "rounding" if abs(b_s - a_s) <= ROUNDING else ("better" if better(c) else "worse")
                tally[f"{kind} {a} -> {b} ({verdict})"] = tally.get(f"{kind} {a} -> {b} ({verdict})", 0) + 1
                rows.append((abs(b_s - a_s), f"- {variant}, {name}: {data.names[keep[i]]} / {data.names[keep[j]]} ({kind}): {a_s:.7f} {a} -> {b_s:.7f} {b} ({verdict})"))
                all_changes.append(f"{variant},{name},{data.names[keep[i]]},{data.names[keep[j]]},{kind},{a_s:.7f},{b_s:.7f},{a},{b},{verdict}")
        if tally:
            details.append(f"{variant}: " + "; ".join(f"{k}: {v:,}" for k, v in sorted(tally.items())) + ".")
            shown = sorted(rows, reverse=True)[:LIST_UP_TO]
            if len(rows) > LIST_UP_TO:
                details.append(f"The {LIST_UP_TO} with the largest score change of {len(rows):,} (all of them: `--changes FILE`):")
            details += [line for _, line in shown]
            details.append("")
    after = load_average()
    if args.changes:
        args.changes.write_text("\n".join(all_changes) + "\n", encoding="utf-8")
    lines += ["", f"A change is `rounding` when the score moved by at most {ROUNDING:g} (float rounding of an exact "
              "fp32 kernel; the reference re-run at batch 1 is its own control), `better` when a genuine pair moves towards match or an impostor away from it, else `worse`. "
              f"Pass: cosine >= {COSINE_FLOOR} for >= {SHARE:.1%} of faces and no `worse` change.", ""]
    lines += ["Decision changes by kind:" if details else "No decision changed.", "", *details, ""]
    lines.append(f"Run took {time.perf_counter() - t0:.0f} s; load average (1/5/15 min) before: {before}; after: {after}.")
    lines.append("")
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section(text)


if __name__ == "__main__":
    main()
