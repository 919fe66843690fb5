"""Inference engines and precisions for the recognizer (SFace) and the detector (YuNet), interleaved in one run.

    python benchmarks/bench_engines.py            # print the Markdown section
    python benchmarks/bench_engines.py --write    # and replace "## Inference engines (issue 20)" in docs/BENCHMARKS.md

Variants: ONNX Runtime fp32 (the current path, PRelu rewritten), OpenVINO fp32 and bf16 (PRelu kept, OpenVINO
fuses it) and OpenVINO int8 (NNCF post-training quantization, per-channel weights, activations calibrated on
300 lfw-gray faces; built here and cached under the verifier cache folder, never committed). Every variant embeds
the same aligned faces (benchmarks/engine_faces.py); rounds interleave the variants so load spikes hit all of them.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import load_average, machine_line, write_section  # noqa: E402

SECTION = "## Inference engines (issue 20)"
BATCHES = (1, 4, 8, 32)
GFLOP_PER_FACE = 1.15  # SFace: multiply-adds x 2 of its Conv and Gemm nodes (../shared/docs/PERF-NOTES.md)


def _models():
    from verifier.common.settings import Settings
    from verifier.core.graph_repair import RepairOptions
    from verifier.core.packs import load_pack, read_verified
    from verifier.core.runtime import prepared_model

    s = Settings.from_env()
    pack = load_pack("sface-yunet-int8")
    rb, rd = read_verified(pack.files["recognizer"])
    db, dd = read_verified(pack.files["detector"])
    return {
        "sface_relu": prepared_model(rb, rd, RepairOptions(prelu_to_nchwc=True), s.cache_dir),
        "sface_prelu": prepared_model(rb, rd, RepairOptions(prelu_to_nchwc=False), s.cache_dir),
        "yunet": prepared_model(db, dd, RepairOptions(dynamic_spatial=True, prelu_to_nchwc=False), s.cache_dir),
    }, s.cache_dir


def blob(faces: np.ndarray) -> np.ndarray:
    """Aligned BGR uint8 faces to the SFace input (RGB float NCHW), as core.embed does."""
    return np.ascontiguousarray(faces[..., ::-1].astype(np.float32).transpose(0, 3, 1, 2))


def int8_model(prelu_onnx: bytes, faces: np.ndarray, cache_dir: Path) -> Path:
    """NNCF PTQ of the fp32 SFace (OpenVINO IR), calibrated on `faces`; cached by the model's and faces' digest."""
    import hashlib

    import openvino as ov

    key = hashlib.sha256(prelu_onnx + faces.tobytes()).hexdigest()[:16]
    xml = cache_dir / "bench" / f"sface-int8-nncf-{key}.xml"
    if xml.exists() and xml.with_suffix(".bin").exists():
        return xml
    import nncf

    core = ov.Core()
    model = core.read_model(prelu_onnx, b"")
    data = nncf.Dataset([blob(faces[i : i + 1]) for i in range(len(faces))])
    quantized = nncf.quantize(model, data, preset=nncf.QuantizationPreset.PERFORMANCE, subset_size=len(faces))
    xml.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    ov.save_model(quantized, str(xml))
    for p in (xml, xml.with_suffix(".bin")):
        os.chmod(p, 0o600)
    return xml


class Runner:
    """One variant at one thread layout: `run(blob)` -> first output."""

    def __init__(self, name: str, fn):
        self.name, self.fn = name, fn

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.fn(x)


def ort_runner(model: bytes, threads: int) -> Runner:
    from verifier.core.runtime import make_session

    sess = make_session(model, threads)
    names = [o.name for o in sess.get_outputs()]
    inp = sess.get_inputs()[0].name
    return Runner("onnxruntime", lambda x: sess.run(names, {inp: x}))


def ov_compiled(model, hint: str, threads: int, streams: int = 1):
    import openvino as ov

    core = ov.Core()
    m = core.read_model(model, b"") if isinstance(model, bytes) else core.read_model(str(model))
    return core.compile_model(m, "CPU", {"INFERENCE_PRECISION_HINT": hint, "NUM_STREAMS": streams, "INFERENCE_NUM_THREADS": threads * streams})


def ov_runner(model, hint: str, threads: int) -> Runner:
    compiled = ov_compiled(model, hint, threads)
    req = compiled.create_infer_request()

    def run(x):
        req.infer({0: x})
        return [np.array(req.get_output_tensor(i).data) for i in range(len(compiled.outputs))]

    return Runner("openvino", run)


def per_call_ms(fn, x: np.ndarray, min_s: float = 0.6, min_calls: int = 5) -> tuple[float, float]:
    """Median wall ms and median process-CPU ms per call (>= `min_calls` calls, >= `min_s` s, after a warm-up).

    CPU time counts the work of every thread of this process, so on a busy machine it stays near what the
    work costs while wall time also counts the waits for a core.
    """
    fn(x)
    wall: list[float] = []
    cpu: list[float] = []
    start = time.perf_counter()
    while len(wall) < min_calls or time.perf_counter() - start < min_s:
        t, c = time.perf_counter(), time.process_time()
        fn(x)
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return float(np.median(wall)) * 1e3, float(np.median(cpu)) * 1e3


def two_worker_rate(make_call, faces: np.ndarray, batch: int, seconds: float = 2.0) -> tuple[float, float]:
    """Faces/s (wall) and process-CPU ms per face with two caller threads sharing one model (the batch worker's layout)."""
    count = [0, 0]
    stop = time.perf_counter() + seconds

    def work(k: int) -> None:
        call = make_call()
        x = blob(faces[k * batch : (k + 1) * batch])
        call(x)
        while time.perf_counter() < stop:
            call(x)
            count[k] += batch

    threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    t0, c0 = time.perf_counter(), time.process_time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(count) / (time.perf_counter() - t0), (time.process_time() - c0) * 1e3 / max(1, sum(count))


def cpu_peak() -> tuple[float, float, str]:
    """Assumed peak GFLOP/s per core for fp32 (AVX-512: 2 FMA ports x 16 lanes x 2) and bf16 (AMX: 1024 FMA/cycle)."""
    info = Path("/proc/cpuinfo").read_text()
    mhz = [float(m) for m in re.findall(r"cpu MHz\s*:\s*([\d.]+)", info)]
    ghz = (max(mhz) / 1000) if mhz else 2.0
    fp32 = ghz * 64
    amx = ghz * 2048 if "amx_bf16" in info else 0.0
    how = (f"clock {ghz:.2f} GHz (highest `cpu MHz` in /proc/cpuinfo; turbo may be higher); fp32 AVX-512 = 2 FMA units x 16 lanes x 2 flop "
           f"= 64 flop/cycle = {fp32:.0f} GFLOP/s per core; bf16 AMX = 1024 bf16 multiply-adds per cycle = 2048 flop/cycle = {amx:.0f} GFLOP/s per core")
    return fp32, amx, how


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--no-int8", action="store_true", help="skip the NNCF int8 variant (needs nncf)")
    args = ap.parse_args()

    from engine_faces import aligned_set

    before = load_average()
    t = time.perf_counter()
    import openvino as ov

    ov_import_s = time.perf_counter() - t
    import cv2

    models, cache_dir = _models()
    faces_set = aligned_set()
    lfw = faces_set.subset("lfw-gray").faces
    rng = np.random.RandomState(0)
    calib = lfw[rng.choice(len(lfw), 300, replace=False)]
    faces = faces_set.faces[rng.choice(len(faces_set.faces), 64, replace=False)]

    variants: dict[str, tuple] = {
        "ORT fp32": ("ort", models["sface_relu"], None),
        "OpenVINO fp32": ("ov", models["sface_prelu"], "f32"),
        "OpenVINO bf16": ("ov", models["sface_prelu"], "bf16"),
    }
    if not args.no_int8:
        variants["OpenVINO int8 (NNCF)"] = ("ov", int8_model(models["sface_prelu"], calib, cache_dir), "f32")
    runners = {}
    for name, (kind, model, hint) in variants.items():
        for threads in (1, 2):
            runners[name, threads] = ort_runner(model, threads) if kind == "ort" else ov_runner(model, hint, threads)

    # Compile vs cached start: what a pipeline pays once per process.
    t = time.perf_counter()
    compiled = ov_compiled(models["sface_prelu"], "bf16", 1, 2)
    compile_s = time.perf_counter() - t
    exported = compiled.export_model()
    t = time.perf_counter()
    ov.Core().import_model(exported, "CPU", {"INFERENCE_PRECISION_HINT": "bf16", "NUM_STREAMS": 2, "INFERENCE_NUM_THREADS": 2})
    import_s = time.perf_counter() - t

    sface: dict[tuple, list[float]] = {}
    sface_cpu: dict[tuple, list[float]] = {}
    for _ in range(args.rounds):
        for batch in BATCHES:
            x = blob(faces[:batch])
            for threads in (1, 2):
                for name in variants:
                    wall, cpu = per_call_ms(runners[name, threads], x)
                    sface.setdefault((name, batch, threads), []).append(wall / batch)
                    sface_cpu.setdefault((name, batch, threads), []).append(cpu / batch)

    # Two worker threads sharing one model, batch 8 (the batch worker's chunk): ORT one session, OpenVINO 2 streams.
    ort_sess = ort_runner(models["sface_relu"], 1)
    shared = {"ORT fp32": lambda: ort_sess}
    for name, (kind, model, hint) in variants.items():
        if kind == "ov":
            cm = ov_compiled(model, hint, 1, 2)
            shared[name] = (lambda cm=cm: (lambda req: (lambda x: req.infer({0: x})))(cm.create_infer_request()))
    rates: dict[str, list[tuple[float, float]]] = {}
    for _ in range(args.rounds):
        for name, make in shared.items():
            rates.setdefault(name, []).append(two_worker_rate(make, faces, 8))

    # YuNet on an ID-photo-sized and a VGA-sized image (padded to multiples of 32, as core.detect does).
    from engine_faces import faceset_dir

    root = faceset_dir()
    img = cv2.imread(str(root / "obama_1.jpg")) if root else np.full((480, 640, 3), 128, np.uint8)
    det_runners = {
        "ORT fp32": ort_runner(models["yunet"], 1),
        "OpenVINO fp32": ov_runner(models["yunet"], "f32", 1),
        "OpenVINO bf16": ov_runner(models["yunet"], "bf16", 1),
    }
    det: dict[tuple, list[float]] = {}
    for _ in range(args.rounds):
        for w, h in ((295, 413), (640, 480)):
            im = cv2.resize(img, (w, h))
            ph, pw = -(-h // 32) * 32, -(-w // 32) * 32
            x = np.zeros((1, 3, ph, pw), np.float32)
            x[0, :, :h, :w] = im.transpose(2, 0, 1)
            for name, r in det_runners.items():
                det.setdefault((name, f"{w}x{h}"), []).append(per_call_ms(r, x)[1])
    after = load_average()

    med = {k: float(np.median(v)) for k, v in sface.items()}
    med_cpu = {k: float(np.median(v)) for k, v in sface_cpu.items()}
    fp32_peak, amx_peak, how = cpu_peak()
    lines = [
        SECTION,
        "",
        "`python benchmarks/bench_engines.py --write` · " + machine_line() + f", openvino {ov.__version__}",
        f"Load average (1/5/15 min) before: {before}; after: {after}."
        + (" **Provisional: the machine was busy (1-minute load above 0.5); re-run in a quiet window.**" if float(before.split(" / ")[0]) > 0.5 else ""),
        "",
        f"SFace, one thread: **process-CPU ms per face** (median of {args.rounds} interleaved rounds; the same 64 aligned faces for every "
        "variant; CPU time is what the work costs, robust to other processes on the cores); in brackets the speed-up over ONNX "
        "Runtime fp32 in the same column:",
        "",
        "| variant | " + " | ".join(f"batch {b}" for b in BATCHES) + " |",
        "|---|" + "---:|" * len(BATCHES),
    ]
    for name in variants:
        cells = [f"{med_cpu[name, b, 1]:.1f} ({med_cpu['ORT fp32', b, 1] / med_cpu[name, b, 1]:.2f}x)" for b in BATCHES]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "SFace wall-clock ms per face, 1 and 2 threads per inference (noisy when the machine is busy):", "",
              "| variant | " + " | ".join(f"batch {b}, {t} thr" for b in BATCHES for t in (1, 2)) + " |",
              "|---|" + "---:|" * (2 * len(BATCHES))]
    for name in variants:
        cells = []
        for b in BATCHES:
            for t in (1, 2):
                v, ref = med[name, b, t], med["ORT fp32", b, t]
                cells.append(f"{v:.1f} ({ref / v:.2f}x)")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "Two worker threads sharing one model (batch 8; ONNX Runtime: one session, 1 intra-op thread; OpenVINO: 2 streams x 1 thread), faces/s:", ""]
    ref_rate = float(np.median([r for r, _ in rates["ORT fp32"]]))
    ref_cpu = float(np.median([c for _, c in rates["ORT fp32"]]))
    lines += ["| variant | faces/s (wall) | vs ORT fp32 | CPU ms per face | vs ORT fp32 |", "|---|---:|---:|---:|---:|"]
    for name, v in rates.items():
        r, c = float(np.median([r for r, _ in v])), float(np.median([c for _, c in v]))
        lines.append(f"| {name} | {r:.0f} | {r / ref_rate:.2f}x | {c:.1f} | {ref_cpu / c:.2f}x |")
    lines += ["", "YuNet detection, process-CPU ms per image, 1 thread (median of rounds):", "", "| engine | 295x413 | 640x480 |", "|---|---:|---:|"]
    for name in det_runners:
        lines.append(f"| {name} | {np.median(det[name, '295x413']):.2f} | {np.median(det[name, '640x480']):.2f} |")
    best_bf16 = min(med_cpu["OpenVINO bf16", b, 1] for b in BATCHES)
    best_fp32 = min(med_cpu["ORT fp32", b, 1] for b in BATCHES)
    best_ov32 = min(med_cpu["OpenVINO fp32", b, 1] for b in BATCHES)
    lines += [
        "",
        f"Start-up: `import openvino` {ov_import_s:.2f} s; compiling SFace bf16 from ONNX {compile_s:.2f} s; importing the cached compiled blob "
        f"{import_s:.2f} s (core.backends caches it).",
        "",
        f"Share of peak arithmetic, one thread, best batch, CPU time ({GFLOP_PER_FACE} GFLOP per face): ORT fp32 {best_fp32:.1f} ms/face = "
        f"{GFLOP_PER_FACE / best_fp32 * 1e3:.0f} GFLOP/s = {GFLOP_PER_FACE / best_fp32 * 1e3 / fp32_peak:.0%} of the fp32 peak; OpenVINO fp32 "
        f"{best_ov32:.1f} ms/face = {GFLOP_PER_FACE / best_ov32 * 1e3:.0f} GFLOP/s = {GFLOP_PER_FACE / best_ov32 * 1e3 / fp32_peak:.0%} of the fp32 peak; OpenVINO bf16 "
        f"{best_bf16:.1f} ms/face = {GFLOP_PER_FACE / best_bf16 * 1e3:.0f} GFLOP/s = "
        + (f"{GFLOP_PER_FACE / best_bf16 * 1e3 / amx_peak:.1%} of the AMX bf16 peak" if amx_peak else "n/a (no AMX)")
        + f" ({GFLOP_PER_FACE / best_bf16 * 1e3 / fp32_peak:.0%} of the fp32 peak). Peaks assumed: {how}. Small layers at "
        "112x112 and below, narrow channel counts and the element-wise passes between them keep AMX far from its peak.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section(text)


if __name__ == "__main__":
    main()
