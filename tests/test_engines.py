"""The recognizer's engine and precision: the picker table, overrides, bad values, `models info`, and the engine
this machine picks against the ONNX Runtime fp32 reference on real faces."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from verifier.common.reasons import VerifierError
from verifier.common.settings import Settings
from verifier.core.engines import (
    REFERENCE,
    TABLE,
    choose_engine,
    cpu_class,
    openvino_installed,
    pack_reference,
    pack_variants,
    parse_cpuinfo,
    read_cpu,
)

AMX = frozenset("avx2 fma avx512f avx512_vnni avx512_bf16 amx_tile amx_bf16 amx_int8".split())
VNNI = frozenset("avx2 fma avx512f avx512_vnni".split())
AVX512 = frozenset("avx2 fma avx512f".split())
AVX2 = frozenset("avx2 fma".split())
GATED = ("openvino/fp32", "openvino/bf16")
needs_openvino = pytest.mark.skipif(not openvino_installed(), reason="openvino is not installed")


def test_cpu_classes_follow_the_flags_that_change_the_kernels() -> None:
    assert [cpu_class(f) for f in (AMX, VNNI, AVX512, AVX2, frozenset())] == ["amx", "avx512_vnni", "avx512", "avx2", "other"]
    assert cpu_class(AMX - {"amx_tile"}) == "avx512_vnni", "amx_bf16 without tiles is not usable AMX"


def test_cpuinfo_is_parsed_from_the_first_processor() -> None:
    text = "processor\t: 0\nmodel name\t: Some CPU @ 2.1GHz\nflags\t\t: fpu avx2 amx_tile amx_bf16\n\nprocessor\t: 1\nflags\t: fpu\n"
    cpu = parse_cpuinfo(text)
    assert cpu.model == "Some CPU @ 2.1GHz" and cpu.flags == frozenset({"fpu", "avx2", "amx_tile", "amx_bf16"})
    assert parse_cpuinfo("").flags == frozenset()


def test_the_table_picks_the_measured_variant_per_class_and_the_reference_where_unmeasured() -> None:
    assert choose_engine(AMX, GATED).variant == "openvino/bf16"
    for flags in (VNNI, AVX512, AVX2, frozenset()):
        c = choose_engine(flags, GATED)
        assert c.variant == REFERENCE and c.source == "table" and c.cpu_class in c.why
    assert all(row.variants[-1] == REFERENCE for row in TABLE.values()), "every row must end with the reference"


def test_a_pack_without_gated_variants_keeps_its_reference_even_on_amx() -> None:
    c = choose_engine(AMX, ())
    assert c.variant == REFERENCE and "no openvino/bf16 variant" in c.why
    assert choose_engine(AMX, ("openvino/fp32",)).variant == "openvino/fp32"


def test_a_pack_calibrated_with_bf16_runs_only_where_bf16_runs() -> None:
    bf16 = {"reference": "openvino/bf16", "variants": {"openvino/bf16": "the reference"}}
    ref, variants = pack_reference(bf16), pack_variants(bf16)
    c = choose_engine(AMX, variants, reference=ref, pack_id="p")
    assert c.variant == "openvino/bf16" and c.source == "table"
    for flags in (VNNI, AVX2, frozenset()):
        with pytest.raises(VerifierError) as exc:
            choose_engine(flags, variants, reference=ref, pack_id="p")
        assert exc.value.reason.code == "ENGINE_UNAVAILABLE" and "onnxruntime/fp32" in exc.value.detail
    with pytest.raises(VerifierError):
        choose_engine(AMX, variants, engine="onnxruntime", reference=ref, pack_id="p")
    with pytest.raises(VerifierError):
        choose_engine(AMX, variants, reference=ref, have_openvino=False, pack_id="p")
    assert pack_reference({}) == REFERENCE


def test_the_shipped_bf16_pack_shares_the_files_and_names_its_own_thresholds() -> None:
    from verifier.core.packs import load_pack

    fp32, bf16 = load_pack("sface-yunet-int8"), load_pack("sface-yunet-int8-bf16")
    assert [f.sha256 for f in bf16.files.values()] == [f.sha256 for f in fp32.files.values()]
    assert pack_reference(bf16.recognizer) == "openvino/bf16" and pack_variants(bf16.recognizer) == ("openvino/bf16",)
    assert "openvino/bf16" not in pack_variants(fp32.recognizer), "bf16 failed the fp32 pack's gate"
    assert "OpenVINO bf16" in bf16.thresholds_source["data"] and "verifier calibrate" in bf16.thresholds_source["method"]
    assert (bf16.thresholds.accept, bf16.thresholds.reject) != (fp32.thresholds.accept, fp32.thresholds.reject), "calibrated, not copied"


def test_without_openvino_auto_falls_back_and_an_explicit_request_fails() -> None:
    c = choose_engine(AMX, GATED, have_openvino=False)
    assert c.variant == REFERENCE and "not installed" in c.why
    with pytest.raises(VerifierError) as exc:
        choose_engine(AMX, GATED, engine="openvino", have_openvino=False)
    assert exc.value.reason.code == "ENGINE_UNAVAILABLE"


def test_overrides_narrow_the_choice() -> None:
    assert choose_engine(AMX, GATED, engine="onnxruntime").variant == REFERENCE
    assert choose_engine(AMX, GATED, precision="fp32").variant == "openvino/fp32"
    c = choose_engine(AVX2, GATED, engine="openvino")
    assert c.variant == "openvino/fp32" and c.source == "override"
    assert choose_engine(AMX, GATED, engine="OpenVINO", precision="BF16").variant == "openvino/bf16"


@pytest.mark.parametrize(
    "flags, engine, precision, text",
    [
        (AVX2, "openvino", "bf16", "needs one of the CPU flags"),
        (AMX, "auto", "int8", "no openvino/int8 variant"),
        (AMX, "onnxruntime", "bf16", "no onnxruntime/bf16 variant"),
    ],
)
def test_a_request_that_cannot_be_honoured_is_refused_with_a_reason(flags, engine, precision, text) -> None:
    with pytest.raises(VerifierError) as exc:
        choose_engine(flags, GATED, engine=engine, precision=precision)
    assert exc.value.reason.code == "ENGINE_UNAVAILABLE" and text in exc.value.detail


@pytest.mark.parametrize("env", [{"VERIFIER_ENGINE": "tensorrt"}, {"VERIFIER_PRECISION": "fp16"}, {"VERIFIER_ENGINE": "onnx runtime"}])
def test_bad_setting_values_are_a_reason_code(env: dict[str, str]) -> None:
    with pytest.raises(VerifierError) as exc:
        Settings.from_env(env)
    assert exc.value.reason.code == "ENGINE_SETTING_INVALID" and next(iter(env)) in exc.value.detail
    with pytest.raises(VerifierError) as exc:
        choose_engine(AMX, GATED, engine="tensorrt")
    assert exc.value.reason.code == "ENGINE_SETTING_INVALID"


def test_settings_read_engine_and_precision_case_insensitively() -> None:
    s = Settings.from_env({"VERIFIER_ENGINE": " OpenVINO ", "VERIFIER_PRECISION": "FP32"})
    assert (s.engine, s.precision) == ("openvino", "fp32")
    assert (Settings.from_env({}).engine, Settings.from_env({}).precision) == ("auto", "auto")


def _expected_here():
    """What this machine should pick for the default pack, from its manifest's gated variants."""
    from verifier.core.engines import pack_variants
    from verifier.core.packs import load_pack

    pack = load_pack("sface-yunet-int8")
    return choose_engine(read_cpu().flags, pack_variants(pack.recognizer), have_openvino=openvino_installed(), pack_id=pack.id)


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "verifier", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **env}, cwd=Path(__file__).resolve().parent.parent)


def test_models_info_reports_the_cpu_the_choice_and_the_verified_files(tmp_path: Path) -> None:
    res = _cli(["models", "info", "--json"], {"VERIFIER_CACHE_DIR": str(tmp_path)})
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    cpu = read_cpu()
    expected = _expected_here()
    assert info["cpu_model"] == cpu.model and info["cpu_class"] == cpu_class(cpu.flags)
    assert (info["choice"]["engine"], info["choice"]["precision"]) == (expected.engine, expected.precision)
    assert info["table_row"]["cpu_class"] == info["cpu_class"] and info["choice"]["why"]
    assert {f["role"] for f in info["files"]} == {"detector", "recognizer"}
    assert all(f["ok"] and f["actual"] == f["expected"] and len(f["actual"]) == 64 for f in info["files"])
    assert info["versions"]["onnxruntime"]
    text = _cli(["models", "info"], {"VERIFIER_CACHE_DIR": str(tmp_path)})
    assert text.returncode == 0 and f"picked: {expected.engine} {expected.precision}" in text.stdout


def test_models_info_names_a_refused_request_and_a_bad_value(tmp_path: Path) -> None:
    res = _cli(["models", "info", "--json"], {"VERIFIER_PRECISION": "int8", "VERIFIER_CACHE_DIR": str(tmp_path)})
    info = json.loads(res.stdout)
    assert res.returncode == 1 and info["choice"] is None and "ENGINE_UNAVAILABLE" in info["error"]
    bad = _cli(["models", "info"], {"VERIFIER_ENGINE": "cuda", "VERIFIER_CACHE_DIR": str(tmp_path)})
    assert bad.returncode == 2 and "[ENGINE_SETTING_INVALID]" in bad.stderr and "cuda" in bad.stderr


# ---- real models on real faces ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def aligned(faces: Path, pipeline) -> tuple[list[str], list[np.ndarray]]:
    """Face-set photos aligned once by the reference pipeline; every variant embeds these same crops."""
    from verifier.common.faceset import single_face_images

    names, crops = [], []
    for p in single_face_images(faces):
        _, crop = pipeline._locate(p)
        if crop is not None:
            names.append(p.name)
            crops.append(crop)
    assert len(crops) >= 20
    return names, crops


def _embed(engine: str, precision: str, crops: list[np.ndarray], cache: Path):
    from verifier.core.pipeline import Pipeline

    settings = replace(Settings.from_env(), engine=engine, precision=precision, cache_dir=cache)
    pipe = Pipeline.load("sface-yunet-int8", settings=settings)
    return pipe, pipe.embedder.embed(crops)


def _decisions(emb: np.ndarray, thresholds) -> list[str]:
    from verifier.core.score import decide

    return [decide(float(emb[i] @ emb[j]), thresholds).value for i, j in itertools.combinations(range(len(emb)), 2)]


def test_the_engine_picked_here_matches_the_reference_on_real_faces(aligned, tmp_path_factory) -> None:
    names, crops = aligned
    cache = tmp_path_factory.mktemp("engine-cache")
    ref_pipe, ref = _embed("onnxruntime", "fp32", crops, cache)
    picked_pipe, picked = _embed("auto", "auto", crops, cache)
    expected = _expected_here()
    backend = picked_pipe.embedder.backend
    assert f"{backend.engine}/{backend.precision}" == expected.variant
    cos = (ref * picked).sum(1)
    assert cos.min() >= 0.995, f"lowest cosine {cos.min():.4f} ({names[int(cos.argmin())]})"
    th = ref_pipe.thresholds
    assert _decisions(picked, th) == _decisions(ref, th)
    assert {"match", "review"} <= set(_decisions(ref, th)), "the face set must hold genuine and impostor pairs"


@needs_openvino
def test_openvino_compiled_model_is_cached_0600_and_a_corrupt_entry_is_rebuilt(aligned, tmp_path: Path) -> None:
    _, crops = aligned
    _, first = _embed("openvino", "fp32", crops[:4], tmp_path)
    blobs = list((tmp_path / "models").glob("*.ovblob"))
    assert len(blobs) == 1 and (blobs[0].stat().st_mode & 0o777) == 0o600
    _, warm = _embed("openvino", "fp32", crops[:4], tmp_path)
    np.testing.assert_allclose(warm, first, atol=1e-6)
    blobs[0].write_bytes(blobs[0].read_bytes()[: 1000])
    _, rebuilt = _embed("openvino", "fp32", crops[:4], tmp_path)
    np.testing.assert_allclose(rebuilt, first, atol=1e-6)
    digest = blobs[0].with_suffix(".sha256").read_text().strip()
    import hashlib

    assert hashlib.sha256(blobs[0].read_bytes()).hexdigest() == digest, "the rebuilt entry replaced the corrupt one"


@needs_openvino
def test_openvino_backend_is_safe_for_worker_threads_sharing_one_pipeline(aligned, tmp_path: Path) -> None:
    _, crops = aligned
    pipe, serial = _embed("openvino", "fp32", crops, tmp_path)
    results: dict[int, np.ndarray] = {}

    def work(k: int) -> None:
        for _ in range(3):
            results[k] = pipe.embedder.embed(crops[k::2] if k < 2 else crops)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    np.testing.assert_allclose(results[0], serial[0::2], atol=1e-5)
    np.testing.assert_allclose(results[1], serial[1::2], atol=1e-5)
    np.testing.assert_allclose(results[2], serial, atol=1e-5)
