"""Specification checks that need no model: file name, size, format by content, dimensions.

Dimensions come from the JPEG/PNG/BMP header (EXIF orientation applied), so no
pixel is decoded and thousands of photos are checked per second.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from verifier.core.decode import SUPPORTED_FORMATS, sniff_format
from verifier.photos.profiles import Profile
from verifier.common.reasons import Reason, reason

DEFAULT_MAX_PIXELS = 40_000_000
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_PROGRESSIVE_SOF = frozenset({0xC2, 0xC6, 0xCA, 0xCE})
_UNSAFE_NAME = re.compile(r"[/\\\x00-\x1f\x7f]")


class HeaderError(Exception):
    """The header cannot be parsed; `code` is IMAGE_TRUNCATED or IMAGE_CORRUPT."""

    def __init__(self, code: str, detail: str):
        super().__init__(detail)
        self.code = code


@dataclass(frozen=True)
class ImageHeader:
    """What the header says about an image, before any pixel is decoded."""

    format: str
    width: int  # upright, after EXIF orientation
    height: int
    components: int
    progressive: bool
    exif_orientation: int
    complete: bool  # an end-of-image marker follows the image data


def _exif_orientation(seg: bytes) -> int:
    """The orientation tag (1..8) of an APP1 Exif segment, 1 when absent or malformed."""
    tiff = seg[6:]
    if len(tiff) < 8 or tiff[:2] not in (b"II", b"MM"):
        return 1
    end = "<" if tiff[:2] == b"II" else ">"
    try:
        (ifd,) = struct.unpack_from(end + "I", tiff, 4)
        (count,) = struct.unpack_from(end + "H", tiff, ifd)
        for i in range(min(count, 512)):
            tag, typ, _, value = struct.unpack_from(end + "HHI4s", tiff, ifd + 2 + 12 * i)
            if tag == 0x0112 and typ == 3:
                (orient,) = struct.unpack_from(end + "H", value, 0)
                return orient if 1 <= orient <= 8 else 1
    except struct.error:
        return 1
    return 1


def jpeg_header(data: bytes) -> ImageHeader:
    """Walk the JPEG markers up to the first scan; raise HeaderError when broken."""
    n, pos = len(data), 2
    orientation, sof = 1, None
    while True:
        if pos + 4 > n:
            raise HeaderError("IMAGE_TRUNCATED", "header ends before the image data")
        if data[pos] != 0xFF:
            raise HeaderError("IMAGE_CORRUPT", f"expected a marker at byte {pos}")
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:
            pos += 2
            continue
        if marker == 0xD9:
            raise HeaderError("IMAGE_CORRUPT", "end of image before any image data")
        (length,) = struct.unpack_from(">H", data, pos + 2)
        if length < 2:
            raise HeaderError("IMAGE_CORRUPT", f"bad segment length at byte {pos}")
        end = pos + 2 + length
        if end > n:
            raise HeaderError("IMAGE_TRUNCATED", "header segment cut short")
        if marker == 0xE1 and data[pos + 4 : pos + 10] == b"Exif\x00\x00":
            orientation = _exif_orientation(data[pos + 4 : end])
        elif marker in _SOF_MARKERS:
            if length < 8:
                raise HeaderError("IMAGE_CORRUPT", "frame header too short")
            _, h, w, comps = struct.unpack_from(">BHHB", data, pos + 4)
            sof = (w, h, comps, marker in _PROGRESSIVE_SOF)
        elif marker == 0xDA:
            if sof is None:
                raise HeaderError("IMAGE_CORRUPT", "image data before the frame header")
            w, h, comps, progressive = sof
            if w == 0 or h == 0:
                raise HeaderError("IMAGE_CORRUPT", "zero width or height")
            complete = data.rfind(b"\xff\xd9", end) != -1
            if orientation >= 5:
                w, h = h, w
            return ImageHeader("jpeg", w, h, comps, progressive, orientation, complete)
        pos = end


def png_header(data: bytes) -> ImageHeader:
    """Width and height from the PNG IHDR chunk."""
    if len(data) < 33:
        raise HeaderError("IMAGE_TRUNCATED", "PNG header cut short")
    if data[12:16] != b"IHDR":
        raise HeaderError("IMAGE_CORRUPT", "PNG without IHDR")
    w, h = struct.unpack_from(">II", data, 16)
    if w == 0 or h == 0:
        raise HeaderError("IMAGE_CORRUPT", "zero width or height")
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(data[25], 0)
    return ImageHeader("png", w, h, channels, bool(data[28]), 1, data.rstrip(b"\x00").endswith(b"IEND\xaeB`\x82"))


def bmp_header(data: bytes) -> ImageHeader:
    """Width and height from a BMP's DIB header (OS/2 core header or BITMAPINFOHEADER and its successors)."""
    if len(data) < 26:
        raise HeaderError("IMAGE_TRUNCATED", "BMP header cut short")
    file_size, dib = struct.unpack_from("<I", data, 2)[0], struct.unpack_from("<I", data, 14)[0]
    if dib == 12:
        w, h = struct.unpack_from("<HH", data, 18)
        bits = struct.unpack_from("<H", data, 24)[0]
    elif dib >= 40:
        if len(data) < 30:
            raise HeaderError("IMAGE_TRUNCATED", "BMP header cut short")
        w, h = struct.unpack_from("<ii", data, 18)
        h = abs(h)  # negative: rows stored top-down
        bits = struct.unpack_from("<H", data, 28)[0]
    else:
        raise HeaderError("IMAGE_CORRUPT", f"unknown BMP header size {dib}")
    if w <= 0 or h == 0:
        raise HeaderError("IMAGE_CORRUPT", "zero width or height")
    return ImageHeader("bmp", w, h, 1 if bits <= 8 else 3, False, 1, len(data) >= file_size)


def read_header(data: bytes, fmt: str) -> ImageHeader:
    """Parse the header of a supported format."""
    return {"jpeg": jpeg_header, "png": png_header, "bmp": bmp_header}[fmt](data)


def name_reasons(file_name: str) -> list[Reason]:
    """FILE_NAME_NOT_UTF8 / FILE_NAME_UNSAFE for names that cannot be trusted as 考生号 file names."""
    try:
        file_name.encode("utf-8")
    except UnicodeEncodeError:
        return [reason("FILE_NAME_NOT_UTF8", measured=display_name(file_name))]
    if file_name in ("", ".", "..") or _UNSAFE_NAME.search(file_name) or file_name.startswith(".."):
        return [reason("FILE_NAME_UNSAFE", measured=file_name.encode("unicode_escape").decode("ascii"))]
    return []


def display_name(name: str) -> str:
    """A printable form of a name that may hold undecodable bytes (surrogate escapes)."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


@lru_cache(maxsize=32)
def _pattern(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def split_name(file_name: str) -> tuple[str, str]:
    """(stem, suffix) of a bare file name."""
    dot = file_name.rfind(".")
    return (file_name, "") if dot <= 0 else (file_name[:dot], file_name[dot:])


def ksh_from_name(file_name: str, profile: Profile) -> str | None:
    """The 考生号 a file name carries, or None when the name does not follow the profile's pattern."""
    if name_reasons(file_name):
        return None
    stem, _ = split_name(file_name)
    if profile.name_pattern is None or _pattern(profile.name_pattern).fullmatch(stem):
        return stem
    return None


def _check_name(file_name: str, profile: Profile, roster_ksh: set[str] | None) -> list[Reason]:
    bad = name_reasons(file_name)
    if bad:
        return bad
    out = []
    stem, suffix = split_name(file_name)
    if suffix.lower() not in profile.extensions:
        out.append(reason("SPEC_EXTENSION", measured=suffix, limit=list(profile.extensions)))
    if profile.name_pattern is not None and not _pattern(profile.name_pattern).fullmatch(stem):
        out.append(reason("SPEC_NAME_PATTERN", measured=stem, limit=profile.name_pattern))
    elif roster_ksh is not None and stem not in roster_ksh:
        out.append(reason("SPEC_KSH_NOT_ON_ROSTER", measured=stem))
    return out


def _check_dimensions(h: ImageHeader, profile: Profile) -> list[Reason]:
    out = []
    w, hh = h.width, h.height
    if not profile.min_width <= w <= profile.max_width:
        out.append(reason("SPEC_WIDTH", measured=w, limit=[profile.min_width, profile.max_width]))
    lo, hi = profile.min_height, profile.max_height
    if (lo is not None and hh < lo) or (hi is not None and hh > hi):
        out.append(reason("SPEC_HEIGHT", measured=hh, limit=[lo, hi]))
    if w > hh:
        out.append(reason("SPEC_LANDSCAPE", measured=[w, hh], limit="portrait"))
    elif profile.recommended_size is not None and (w, hh) != tuple(profile.recommended_size):
        ratio = hh / w
        if abs(ratio - profile.aspect) > profile.aspect_tolerance * profile.aspect:
            out.append(
                reason(
                    "SPEC_SIZE_NOT_RECOMMENDED",
                    measured={"size": [w, hh], "aspect": round(ratio, 3)},
                    limit={"size": list(profile.recommended_size), "aspect": round(profile.aspect, 3), "tolerance": profile.aspect_tolerance},
                )
            )
    return out


def check_spec(
    data: bytes,
    file_name: str,
    profile: Profile,
    roster_ksh: set[str] | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> tuple[list[Reason], dict[str, Any]]:
    """Check one photo's bytes and name against a profile, without decoding pixels."""
    reasons = _check_name(file_name, profile, roster_ksh)
    size = len(data)
    metrics: dict[str, Any] = {"bytes": size}
    if size == 0:
        reasons.append(reason("FILE_EMPTY", measured=0))
        return reasons, metrics
    if profile.max_bytes is not None and size > profile.max_bytes:
        reasons.append(reason("SPEC_FILE_TOO_LARGE", measured=size, limit=profile.max_bytes))
    if size < profile.min_bytes:
        reasons.append(reason("SPEC_FILE_TOO_SMALL", measured=size, limit=profile.min_bytes))
    fmt = sniff_format(data)
    metrics["format"] = fmt
    if fmt is None:
        reasons.append(reason("IMAGE_NOT_IMAGE"))
        return reasons, metrics
    if fmt not in SUPPORTED_FORMATS:
        reasons.append(reason("IMAGE_FORMAT_UNSUPPORTED", measured=fmt, limit=list(profile.formats)))
        return reasons, metrics
    if fmt not in profile.formats:
        reasons.append(reason("SPEC_FORMAT", measured=fmt, limit=list(profile.formats)))
    try:
        header = read_header(data, fmt)
    except HeaderError as exc:
        reasons.append(reason(exc.code, measured=str(exc)))
        return reasons, metrics
    metrics.update(
        width=header.width,
        height=header.height,
        components=header.components,
        progressive=header.progressive,
        exif_orientation=header.exif_orientation,
    )
    if header.width * header.height > max_pixels:
        reasons.append(reason("IMAGE_TOO_MANY_PIXELS", measured=header.width * header.height, limit=max_pixels))
        return reasons, metrics
    if not header.complete:
        reasons.append(reason("IMAGE_TRUNCATED", measured="no end-of-image marker"))
    reasons.extend(_check_dimensions(header, profile))
    return reasons, metrics
