"""The labelled development face set (../shared/faces): file name = identity.

Used by tests, benchmarks and the demo; nothing from it is ever copied
into the repository.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def faces_dir() -> Path | None:
    """The face set folder: $VERIFIER_FACES, else ../shared/faces beside the checkout."""
    env = os.environ.get("VERIFIER_FACES")
    candidates = [Path(env)] if env else []
    here = Path(__file__).resolve().parents[2]  # the checkout (verifier/common/faceset.py)
    candidates += [here.parent / "shared" / "faces", Path.cwd().parent / "shared" / "faces"]
    for c in candidates:
        if c.is_dir() and any(c.glob("*_1.*")):
            return c
    return None


def identity_of(path: Path) -> str:
    """`obama_3.jpg` -> `obama`; names without a number (obama_partial_face) use their first token."""
    m = re.match(r"(.+?)_\d", path.name)
    return m.group(1) if m else path.stem.split("_")[0]


def single_face_images(root: Path) -> list[Path]:
    """The one-person photos (top level of the set), sorted."""
    return sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def group_images(root: Path) -> list[Path]:
    """Photos with two or more people (multi/)."""
    return sorted(p for p in (root / "multi").iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
