"""Aligned 112x112 faces for the engine benchmarks and the accuracy gate, aligned once with the current pipeline.

Every engine variant is then fed the SAME aligned faces, so any difference between variants is the recognizer's
alone. The faces come from the development face set (../shared/faces) and all of ../shared/eval/lfw-gray
(less docs/accuracy/lfw-gray-exclusions.txt); the array is cached under the verifier cache folder (0600),
never in the repository.
"""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
EXCLUSIONS = REPO / "docs" / "accuracy" / "lfw-gray-exclusions.txt"
ALIGN_VERSION = 1


@dataclass
class AlignedSet:
    """Aligned faces (N x 112 x 112 x 3 uint8 BGR) with their image name, identity and source set."""

    names: list[str]
    identities: list[str]
    sources: list[str]  # "faceset" | "lfw-gray"
    faces: np.ndarray

    def subset(self, source: str) -> "AlignedSet":
        keep = [i for i, s in enumerate(self.sources) if s == source]
        return AlignedSet([self.names[i] for i in keep], [self.identities[i] for i in keep], [source] * len(keep), self.faces[keep])


def lfw_dir() -> Path | None:
    """../shared/eval/lfw-gray beside the main checkout, or $VERIFIER_LFW_GRAY."""
    for c in (os.environ.get("VERIFIER_LFW_GRAY"), REPO.parent / "shared/eval/lfw-gray", Path("/work/shared/eval/lfw-gray")):
        if c and Path(c).is_dir():
            return Path(c)
    return None


def faceset_dir() -> Path | None:
    """The development face set (verifier.common.faceset), falling back to /work/shared/faces."""
    from verifier.common.faceset import faces_dir

    root = faces_dir()
    if root is None and Path("/work/shared/faces").is_dir():
        root = Path("/work/shared/faces")
    return root


def _inputs() -> list[tuple[Path, str, str]]:
    from verifier.common.faceset import identity_of, single_face_images

    out: list[tuple[Path, str, str]] = []
    root = faceset_dir()
    if root is not None:
        out += [(p, identity_of(p), "faceset") for p in single_face_images(root)]
    lfw = lfw_dir()
    if lfw is not None:
        lines = EXCLUSIONS.read_text().splitlines() if EXCLUSIONS.exists() else []
        excluded = {ln.split("#")[0].strip() for ln in lines} - {""}
        for p in sorted(lfw.glob("*.jpg")):
            if p.name not in excluded:
                out.append((p, p.stem.rsplit("_", 1)[0], "lfw-gray"))
    return out


def aligned_set(limit: int | None = None, verbose: bool = True) -> AlignedSet:
    """Align every input once (decode, detect, choose the face, align) with the fp32 reference pipeline; cached."""
    from verifier.common.files import write_output
    from verifier.common.settings import Settings

    inputs = _inputs()[:limit] if limit else _inputs()
    key = hashlib.sha256(("\n".join(f"{p}:{p.stat().st_size}" for p, _, _ in inputs) + f"v{ALIGN_VERSION}").encode()).hexdigest()[:16]
    cache = Settings.from_env().cache_dir / "bench" / f"aligned-{key}.npz"
    if cache.exists():
        z = np.load(cache, allow_pickle=False)
        return AlignedSet(list(z["names"]), list(z["identities"]), list(z["sources"]), z["faces"])
    from verifier.core.pipeline import Pipeline

    pipe = Pipeline.load(settings=Settings.from_env())
    names, idents, sources, faces = [], [], [], []
    for i, (path, ident, source) in enumerate(inputs):
        _, crop = pipe._locate(path)
        if crop is not None:
            names.append(path.name)
            idents.append(ident)
            sources.append(source)
            faces.append(crop)
        if verbose and i % 1000 == 0:
            print(f"aligned {i}/{len(inputs)}", flush=True)
    buf = io.BytesIO()
    np.savez(buf, names=np.array(names), identities=np.array(idents), sources=np.array(sources), faces=np.stack(faces))
    write_output(cache, buf.getvalue())
    return AlignedSet(names, idents, sources, np.stack(faces))
