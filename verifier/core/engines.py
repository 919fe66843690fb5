"""Which inference engine and precision run the recognizer, chosen by CPU class from a measured table.

The one place that decides. `cpu_class` sorts a CPU by the flags that change the fastest kernels (AMX,
AVX-512 with VNNI, AVX-512, AVX2); `TABLE` lists per class the variants in the order measured fastest
(benchmarks/bench_engines.py, docs/BENCHMARKS.md "Inference engines (issue 20)"); a pack's manifest lists the
variants that passed the accuracy gate against its fp32 reference (benchmarks/engine_accuracy.py) and so keep
its thresholds. `choose_engine` is pure: flags, the pack's variants and the settings in, a choice out.
Nothing here imports an engine.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

from verifier.common.choices import ENGINE_CHOICES, PRECISION_CHOICES
from verifier.common.reasons import VerifierError

REFERENCE = "onnxruntime/fp32"  # the default reference: the variant a pack's thresholds were calibrated with
# Flags reported by `models info`: the ones that select kernels for these models.
FLAGS_THAT_MATTER = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8")
# The CPU support each precision needs to be worth running (OpenVINO falls back to fp32 silently without it).
PRECISION_NEEDS: dict[str, tuple[str, ...]] = {"fp32": (), "bf16": ("amx_bf16", "avx512_bf16"), "int8": ("amx_int8", "avx512_vnni", "avx_vnni")}


@dataclass(frozen=True)
class CpuInfo:
    """The CPU as /proc/cpuinfo names it: model name and flags."""

    model: str
    flags: frozenset[str]


@dataclass(frozen=True)
class TableRow:
    """One CPU class: its variants ("engine/precision") fastest first, and why, from the measurements."""

    cpu_class: str
    variants: tuple[str, ...]
    why: str


@dataclass(frozen=True)
class EngineChoice:
    """What a pipeline runs its recognizer with, and why."""

    engine: str
    precision: str
    cpu_class: str
    source: str  # "table" | "override"
    why: str

    @property
    def variant(self) -> str:
        return f"{self.engine}/{self.precision}"


TABLE: dict[str, TableRow] = {
    "amx": TableRow(
        "amx",
        ("openvino/bf16", "openvino/fp32", REFERENCE),
        "measured on a 2-core Xeon with AMX (docs/BENCHMARKS.md, Inference engines; CPU time per face): OpenVINO bf16 3.3-4.5x "
        "ONNX Runtime fp32 but its scores shift (it failed sface-yunet-int8's accuracy gate, so only a pack calibrated with it "
        "may list it); OpenVINO fp32 with PRelu kept 1.1-1.5x, within the gate; NNCF int8 2.1-2.6x but cosine down to 0.965",
    ),
    "avx512_vnni": TableRow("avx512_vnni", (REFERENCE,), "not measured on this CPU class: the safe default, ONNX Runtime fp32"),
    "avx512": TableRow("avx512", (REFERENCE,), "not measured on this CPU class: the safe default, ONNX Runtime fp32"),
    "avx2": TableRow(
        "avx2", (REFERENCE,),
        "not measured here; on an AVX2-only EPYC (issue 20) OpenVINO fp32 was within 6% of ONNX Runtime fp32 and there is no bf16: ONNX Runtime fp32",
    ),
    "other": TableRow("other", (REFERENCE,), "no AVX2: the safe default, ONNX Runtime fp32"),
}


def parse_cpuinfo(text: str) -> CpuInfo:
    """Model name and flag set of the first processor in /proc/cpuinfo text."""
    model = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    flags = re.search(r"^flags\s*:\s*(.+)$", text, re.M)
    return CpuInfo(model.group(1).strip() if model else "unknown CPU", frozenset(flags.group(1).split()) if flags else frozenset())


def read_cpu(path: Path = Path("/proc/cpuinfo")) -> CpuInfo:
    """This machine's CPU (unknown, no flags, where /proc/cpuinfo cannot be read)."""
    try:
        return parse_cpuinfo(path.read_text(errors="replace"))
    except OSError:
        return CpuInfo("unknown CPU", frozenset())


def cpu_class(flags: frozenset[str] | set[str]) -> str:
    """The TABLE key for a flag set: amx > avx512_vnni > avx512 > avx2 > other."""
    if {"amx_tile", "amx_bf16"} <= flags:
        return "amx"
    if "avx512f" in flags and "avx512_vnni" in flags:
        return "avx512_vnni"
    if "avx512f" in flags:
        return "avx512"
    if "avx2" in flags:
        return "avx2"
    return "other"


def openvino_installed() -> bool:
    """Whether the openvino package can be imported (found without importing it)."""
    try:
        return importlib.util.find_spec("openvino") is not None
    except (ImportError, ValueError):
        return False


def _why_not(variant: str, flags: frozenset[str], allowed: set[str], have_openvino: bool, pack_id: str) -> str | None:
    engine, precision = variant.split("/")
    if variant not in allowed:
        return f"pack {pack_id!r} has no {variant} variant that passed its accuracy gate (it lists {', '.join(sorted(allowed))})"
    if engine == "openvino" and not have_openvino:
        return "the openvino package is not installed (pip install openvino)"
    needs = PRECISION_NEEDS[precision]
    if needs and not flags & set(needs):
        return f"{precision} needs one of the CPU flags {', '.join(needs)}"
    return None


def choose_engine(
    flags: frozenset[str] | set[str],
    pack_variants: tuple[str, ...] | list[str] = (),
    engine: str = "auto",
    precision: str = "auto",
    have_openvino: bool = True,
    pack_id: str = "",
    reference: str = REFERENCE,
) -> EngineChoice:
    """The engine and precision for a CPU's flags, a pack's gated variants and the settings (pure).

    auto/auto takes the first variant of the CPU class's row that the pack allows and this machine can run;
    an explicit engine or precision narrows the candidates, and one that cannot be honoured is an error
    (ENGINE_UNAVAILABLE), never a silent change of what was asked for. Every row ends with the reference,
    which a pack calibrated with ONNX Runtime fp32 allows, so auto/auto always finds one for such a pack; a pack
    calibrated with another variant (`recognizer.reference`, e.g. openvino/bf16) runs only where that variant can.
    """
    engine, precision = engine.strip().lower(), precision.strip().lower()
    if engine not in ENGINE_CHOICES or precision not in PRECISION_CHOICES:
        raise VerifierError("ENGINE_SETTING_INVALID", detail=f"engine={engine!r} precision={precision!r}; engines: {', '.join(ENGINE_CHOICES)}; precisions: {', '.join(PRECISION_CHOICES)}")
    flags = frozenset(flags)
    cls = cpu_class(flags)
    row = TABLE[cls]
    allowed = {reference, *pack_variants}
    everything = [f"{e}/{p}" for e in ENGINE_CHOICES[1:] for p in PRECISION_CHOICES[1:]]
    candidates = [*row.variants, *(v for v in everything if v not in row.variants)]
    if engine == "auto" and precision == "auto":
        candidates = list(row.variants)
    wanted = [v for v in candidates if engine in ("auto", v.split("/")[0]) and precision in ("auto", v.split("/")[1])]
    refusals = []
    for v in wanted:
        why_not = _why_not(v, flags, allowed, have_openvino, pack_id)
        if why_not is None:
            e, p = v.split("/")
            source = "table" if engine == precision == "auto" else "override"
            skipped = f" ({'; '.join(refusals)})" if refusals else ""
            return EngineChoice(e, p, cls, source, f"CPU class {cls}: {row.why}{skipped}")
        refusals.append(f"{v} skipped: {why_not}")
    raise VerifierError("ENGINE_UNAVAILABLE", detail=f"engine={engine} precision={precision}: " + ("; ".join(refusals) or "no such variant"))


def pack_reference(recognizer_cfg: dict) -> str:
    """The variant a pack's thresholds were calibrated with (`recognizer.reference`; ONNX Runtime fp32 unless named)."""
    return str(recognizer_cfg.get("reference", REFERENCE))


def pack_variants(recognizer_cfg: dict) -> tuple[str, ...]:
    """The recognizer variants a pack's manifest lists as gated ("engine/precision" keys of `variants`)."""
    return tuple(recognizer_cfg.get("variants", {}).keys())
