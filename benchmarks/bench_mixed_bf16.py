"""Mixed precision for SFace on OpenVINO: can part of the network stay in fp32 so that bf16's score shift falls?

    python benchmarks/bench_mixed_bf16.py            # print the Markdown section
    python benchmarks/bench_mixed_bf16.py --write    # and replace it in docs/BENCHMARKS.md

The all-bf16 recognizer is 3-4x faster than fp32 but moves scores by up to 0.035 (the accuracy gate). Two ways to
keep layers in fp32 are tried on the same aligned faces as the gate (benchmarks/engine_faces.py):
- marking nodes with OpenVINO's fp16-compression opt-out (`precise_0` in rt_info), which the CPU plugin could
  honour when it lowers the graph to bf16;
- cutting the graph after a named node: the head (input -> node) compiled in fp32, the tail in bf16, the
  activation handed from one to the other.
Each variant: process-CPU ms per face (one thread, batch 8), cosine to the ONNX Runtime fp32 embedding, the
score change over every pair, and the decision changes at the default pack's thresholds (as the gate counts them).
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
from engine_accuracy import better, embed_with, pair_changes  # noqa: E402

SECTION = "## Mixed-precision bf16 (issue 20)"
PACK = "sface-yunet-int8"
CUTS = ("conv_3_dw_relu", "conv_5_relu", "conv_7_relu")


def _config(precision: str) -> dict:
    return {"INFERENCE_PRECISION_HINT": precision, "NUM_STREAMS": 1, "INFERENCE_NUM_THREADS": 1}


def _compiled(core, model_bytes: bytes, cut: str | None, marked: bool) -> list:
    """One compiled bf16 model (optionally every node marked fp32), or a fp32 head and a bf16 tail cut after `cut`."""
    from openvino import Model, opset13

    if cut is None:
        model = core.read_model(model_bytes, b"")
        if marked:
            for op in model.get_ops():
                op.get_rt_info()["precise_0"] = ""
        return [core.compile_model(model, "CPU", _config("bf16"))]
    head_model = core.read_model(model_bytes, b"")
    node = next(op for op in head_model.get_ops() if op.get_friendly_name() == cut)
    head = Model([node.output(0)], head_model.get_parameters(), "head")
    tail_model = core.read_model(model_bytes, b"")
    node = next(op for op in tail_model.get_ops() if op.get_friendly_name() == cut)
    param = opset13.parameter(node.get_output_partial_shape(0), node.get_output_element_type(0))
    for target in list(node.output(0).get_target_inputs()):
        target.replace_source_output(param.output(0))
    tail = Model(tail_model.get_results(), [param], "tail")
    return [core.compile_model(head, "CPU", _config("f32")), core.compile_model(tail, "CPU", _config("bf16"))]


def _embed(parts: list, blobs: list[np.ndarray]) -> tuple[np.ndarray, float]:
    """Unit embeddings through the chained parts, and process-CPU ms per face."""
    requests = [p.create_infer_request() for p in parts]
    out, n = [], 0
    t0 = time.process_time()
    for blob in blobs:
        x = blob
        for r in requests:
            r.infer({0: x})
            x = np.array(r.get_output_tensor(0).data, copy=True)
        out.append(x)
        n += len(blob)
    cpu = (time.process_time() - t0) / n * 1000
    emb = np.concatenate(out)
    return emb / np.linalg.norm(emb, axis=1, keepdims=True), cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cuts", default=",".join(CUTS), help="nodes after which the fp32 head ends")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()

    import openvino as ov
    from engine_faces import aligned_set

    from verifier.common.settings import Settings
    from verifier.core.graph_repair import RepairOptions
    from verifier.core.packs import load_pack, read_verified
    from verifier.core.pipeline import Pipeline
    from verifier.core.runtime import prepared_model

    before = load_average()
    data = aligned_set()
    ids = np.array(data.identities)
    pack = load_pack(PACK)
    settings = Settings.from_env()
    raw, digest = read_verified(pack.files["recognizer"], settings.model_dir)
    model_bytes = prepared_model(raw, digest, RepairOptions(prelu_to_nchwc=False), settings.cache_dir)
    ref, _ = embed_with("onnxruntime", "fp32", data.faces, 1)
    embedder = Pipeline.load(PACK, threads=1).embedder
    blobs = [embedder._blob(list(data.faces[i : i + 8])) for i in range(0, len(data.faces), 8)]
    core = ov.Core()
    variants: list[tuple[str, list]] = [
        ("OpenVINO fp32", [core.compile_model(core.read_model(model_bytes, b""), "CPU", _config("f32"))]),
        ("bf16, whole network", _compiled(core, model_bytes, None, False)),
        ("bf16, every node marked `precise_0`", _compiled(core, model_bytes, None, True)),
    ]
    variants += [(f"fp32 up to `{cut}`, bf16 after", _compiled(core, model_bytes, cut, False)) for cut in args.cuts.split(",")]
    rows = []
    for name, parts in variants:
        emb, cpu = _embed(parts, blobs)
        cos = (emb * ref).sum(1)
        found = pair_changes(ref, emb, ids, pack.thresholds)
        sample = slice(0, 1500)
        delta = emb[sample] @ emb[sample].T - ref[sample] @ ref[sample].T
        iu = np.triu_indices(delta.shape[0], 1)
        d = delta[iu]
        kinds = {"genuine": [0, 0], "impostor": [0, 0]}
        new_matches = 0
        for change in found["changes"]:
            kind = "genuine" if change[2] else "impostor"
            kinds[kind][0 if better(change) else 1] += 1
            new_matches += int(not change[2] and change[6] == "match")
        rows.append(
            f"| {name} | {cpu:.2f} | {cos.min():.5f} | {found['max_delta']:.4f} | {np.abs(d).mean():.5f} | {d.mean():+.5f} | "
            f"{kinds['genuine'][0]} / {kinds['genuine'][1]} | {kinds['impostor'][0]} / {kinds['impostor'][1]} | {new_matches} |"
        )
        print(rows[-1], flush=True)
    after = load_average()
    lines = [
        SECTION,
        "",
        f"`python benchmarks/bench_mixed_bf16.py {' '.join(sys.argv[1:])}` · " + machine_line(),
        f"Load average before: {before}; after: {after}.",
        f"Faces: the accuracy gate's {len(data.faces)} aligned faces (face set + lfw-gray); reference ONNX Runtime fp32; "
        f"thresholds of `{PACK}` (accept {pack.thresholds.accept}, reject {pack.thresholds.reject}); {found['counts']['genuine']:,} genuine and "
        f"{found['counts']['impostor']:,} impostor pairs. CPU ms per face: one thread, batch 8, process CPU time. "
        "Mean |change| and mean signed change: over the pairs of the first 1,500 faces.",
        "",
        "| variant | CPU ms/face | cosine min | max abs score change | mean abs change | mean signed change | genuine better / worse | impostor better / worse | new impostor matches |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
        "",
    ]
    print("\n".join(lines))
    if args.write:
        write_section("\n".join(lines))


if __name__ == "__main__":
    main()
