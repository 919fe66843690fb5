"""Photo specification profiles: every number of a specification and of the quality rules, in one frozen object.

Built-ins: `admission` (the university's notice for 录取照片), `graduation`
(a common provincial requirement for 毕业照片 image collection) and `id_card` (the 身份证 chip photo). A JSON or
TOML file overrides fields of a base profile, e.g. `{"base": "admission",
"max_bytes": 40960}`.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from verifier.common.reasons import VerifierError


@dataclass(frozen=True)
class Profile:
    """A versioned photo specification plus the thresholds of the quality checks."""

    name: str
    version: str
    # Specification (no model needed)
    formats: tuple[str, ...] = ("jpeg",)
    extensions: tuple[str, ...] = (".jpg",)
    min_bytes: int = 0
    max_bytes: int | None = 51_200
    min_width: int = 90
    max_width: int = 480
    min_height: int | None = None
    max_height: int | None = None
    recommended_size: tuple[int, int] | None = (295, 413)
    aspect: float = 413 / 295  # height / width of a portrait
    aspect_tolerance: float = 0.05  # relative
    name_pattern: str | None = r"^\d{14}$"  # applied to the file stem (the 考生号)
    # Quality (needs the face detector)
    min_face_score: float = 0.80
    min_face_share: float = 0.10  # face box area / image area
    max_face_share: float = 0.60
    max_center_offset: float = 0.15  # horizontal offset of the face centre, share of the width
    min_edge_margin: float = 0.02  # face box to image edge, share of the image side
    max_yaw: float = 30.0  # degrees, estimated from the 5 landmarks (about ±5° noise): catches clearly turned heads
    max_pitch: float = 25.0
    max_roll: float = 12.0
    min_sharpness: float = 30.0  # variance of the Laplacian on the face, at a fixed face size
    min_brightness: float = 70.0  # mean luma of the face region, 0..255
    max_brightness: float = 215.0
    max_clipped_share: float = 0.05  # share of face pixels at >= 250 luma
    require_colour: bool = True
    min_colourfulness: float = 12.0  # rg-chromaticity spread x1000; grayscale ~0, sepia 5..10, colour photos 16+
    background: str | None = None  # None = any plain background; else "white" | "blue" | "red" | "light"
    max_background_std: float = 28.0  # luma standard deviation of the border strips
    background_severity: str = "warn"
    min_inter_eye: float = 30.0  # pixels in the photo as submitted

    def to_dict(self) -> dict[str, Any]:
        """Every field as JSON-ready values (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))


admission = Profile(name="admission", version="2024.1")

graduation = Profile(
    name="graduation",
    version="2024.1",
    min_bytes=30 * 1024,
    max_bytes=None,
    min_width=480,
    max_width=480,
    min_height=640,
    max_height=640,
    recommended_size=(480, 640),
    aspect=640 / 480,
    name_pattern=None,
    background="blue",
    min_inter_eye=60.0,
)

# The 身份证 chip photo as card readers export it (about 102x126, BMP or JPEG; PNG from some tools), or the
# portrait cropped from a scan of the card's front. Rules for what the chip holds: a tiny colour photo on a
# white ground with the head filling most of it; no size cap beyond the reader's (a BMP is ~39 KB), no name rule
# beyond the 考生号 the office names it by.
id_card = Profile(
    name="id_card",
    version="2026.1",
    formats=("jpeg", "bmp", "png"),
    extensions=(".jpg", ".jpeg", ".bmp", ".png"),
    max_bytes=1024 * 1024,
    min_width=80,
    max_width=480,
    recommended_size=(102, 126),
    aspect=126 / 102,
    aspect_tolerance=0.12,
    min_face_score=0.70,
    min_face_share=0.15,
    max_face_share=0.80,
    max_center_offset=0.18,
    min_edge_margin=0.0,
    min_sharpness=15.0,
    min_inter_eye=18.0,
)

BUILTINS: dict[str, Profile] = {p.name: p for p in (admission, graduation, id_card)}

_TUPLE_FIELDS = {"formats", "extensions", "recommended_size"}


def _read_mapping(path: Path) -> dict[str, Any]:
    """Parse a JSON or TOML profile file into a dict."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise VerifierError("PROFILE_INVALID", detail=f"{path.name}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise VerifierError("PROFILE_INVALID", detail=f"{path.name}: not UTF-8") from None
    try:
        data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise VerifierError("PROFILE_INVALID", detail=f"{path.name}: {exc}") from None
    if not isinstance(data, dict):
        raise VerifierError("PROFILE_INVALID", detail=f"{path.name}: top level must be an object")
    return data


def override(base: Profile, values: dict[str, Any]) -> Profile:
    """A copy of `base` with the given fields replaced, type-checked against the base."""
    known = {f.name: f for f in dataclasses.fields(Profile)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise VerifierError("PROFILE_INVALID", detail=f"unknown fields: {', '.join(unknown)}")
    clean: dict[str, Any] = {}
    for key, value in values.items():
        if key in _TUPLE_FIELDS and isinstance(value, list):
            value = tuple(value)
        current = getattr(base, key)
        if value is not None and current is not None and not isinstance(value, type(current)):
            if not (isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool)):
                raise VerifierError("PROFILE_INVALID", detail=f"{key}: expected {type(current).__name__}")
            value = float(value)
        clean[key] = value
    if clean.get("background_severity", base.background_severity) not in ("warn", "fail"):
        raise VerifierError("PROFILE_INVALID", detail="background_severity must be 'warn' or 'fail'")
    return dataclasses.replace(base, **clean)


def load_profile(name_or_path: str | Path) -> Profile:
    """A built-in profile by name, or a JSON/TOML file overriding its `base` (default admission)."""
    if isinstance(name_or_path, str) and name_or_path in BUILTINS:
        return BUILTINS[name_or_path]
    path = Path(name_or_path)
    if not path.is_file():
        raise VerifierError("PROFILE_INVALID", detail=f"not a built-in profile or a file: {name_or_path}")
    data = _read_mapping(path)
    base_name = data.pop("base", "admission")
    if base_name not in BUILTINS:
        raise VerifierError("PROFILE_INVALID", detail=f"unknown base profile {base_name!r}")
    data.setdefault("name", f"{base_name}:{path.stem}")
    return override(BUILTINS[base_name], data)
