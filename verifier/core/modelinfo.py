"""What `verifier models info` reports: the CPU, the engine and precision picked and why, versions, model files."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from verifier.common.reasons import VerifierError
from verifier.common.settings import Settings
from verifier.core.engines import FLAGS_THAT_MATTER, TABLE, choose_engine, cpu_class, openvino_installed, pack_reference, pack_variants, read_cpu
from verifier.core.packs import load_pack, verify_pack


@dataclass
class ModelInfo:
    """One pack on this machine: CPU, the engine choice (or why none), versions and file checks."""

    pack: str
    cpu_model: str
    cpu_class: str
    cpu_flags: list[str]
    requested: dict[str, str]
    table_row: dict[str, Any]
    pack_variants: dict[str, str]
    choice: dict[str, str] | None
    error: str | None
    versions: dict[str, str | None]
    openvino_capabilities: list[str] | None
    files: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None and all(f["ok"] for f in self.files)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _openvino_capabilities() -> list[str] | None:
    """OpenVINO's own view of the CPU (OPTIMIZATION_CAPABILITIES), when openvino is installed."""
    if not openvino_installed():
        return None
    import openvino as ov

    return [str(c) for c in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")]


def model_info(pack_id: str | None = None, model_dir: Path | None = None, settings: Settings | None = None) -> ModelInfo:
    """Everything `models info` prints, for one pack (default: the settings' pack)."""
    settings = settings or Settings.from_env()
    pack = load_pack(pack_id or settings.pack)
    cpu = read_cpu()
    cls = cpu_class(cpu.flags)
    row = TABLE[cls]
    choice, error = None, None
    try:
        c = choose_engine(cpu.flags, pack_variants(pack.recognizer), settings.engine, settings.precision, openvino_installed(), pack.id, pack_reference(pack.recognizer))
        choice = {"engine": c.engine, "precision": c.precision, "source": c.source, "why": c.why}
    except VerifierError as exc:
        error = f"[{exc.reason.code}] {exc.reason.message_en}: {exc.detail}"
    versions = {d: _version(d) for d in ("verifier", "onnxruntime", "openvino")}
    files = [asdict(c) for c in verify_pack(pack, model_dir or settings.model_dir)]
    return ModelInfo(
        pack=pack.id,
        cpu_model=cpu.model,
        cpu_class=cls,
        cpu_flags=[f for f in FLAGS_THAT_MATTER if f in cpu.flags],
        requested={"engine": settings.engine, "precision": settings.precision},
        table_row={"cpu_class": row.cpu_class, "variants": list(row.variants), "why": row.why},
        pack_variants={pack_reference(pack.recognizer): "reference (thresholds calibrated with it)", **pack.recognizer.get("variants", {})},
        choice=choice,
        error=error,
        versions=versions,
        openvino_capabilities=_openvino_capabilities(),
        files=files,
    )
