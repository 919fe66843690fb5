"""Safe image decoding: bytes in, an upright 8-bit BGR array out, or a reason code.

Format is judged by content (magic bytes), never by file name. The pixel
count is checked from the header before any pixel is decoded, so a crafted
"decompression bomb" costs nothing; so is the header's claim against the file's
size (a few hundred bytes cannot hold 16 Mpx). EXIF orientation is applied; grayscale,
palette, CMYK and alpha images become plain BGR.
"""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from verifier.common.reasons import VerifierError

# BMP: what ID-card readers export (身份证照片); the admission profile still refuses it by its format rule.
SUPPORTED_FORMATS = ("jpeg", "png", "bmp")
_PIL_FORMATS = {"jpeg": "JPEG", "png": "PNG", "bmp": "BMP"}
MIN_SIDE = 16

# We enforce our own cap before decoding; Pillow's warning would be noise.
Image.MAX_IMAGE_PIXELS = None


@dataclass(frozen=True)
class DecodedImage:
    """An upright BGR image plus what decoding learned about the file."""

    pixels: np.ndarray  # H x W x 3, uint8, BGR
    format: str  # "jpeg" | "png" | "bmp"
    source_mode: str  # Pillow mode before conversion, e.g. "RGB", "L", "CMYK"
    exif_orientation: int  # 1 = upright; 2..8 were rotated/flipped here
    progressive: bool

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])


def sniff_format(data: bytes) -> str | None:
    """Name the container format from the first bytes, or None if unknown."""
    head = data[:32]
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:2] == b"BM":
        return "bmp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"avif", b"avis"):
            return "avif"
        if brand in (b"heic", b"heix", b"hevc", b"hevx", b"mif1", b"msf1", b"heim", b"heis"):
            return "heic"
        return "isobmff"
    if head.startswith(b"\x00\x00\x00\x0cjP  ") or head.startswith(b"\xff\x4f\xff\x51"):
        return "jpeg2000"
    if head[:4] == b"\x00\x00\x01\x00":
        return "ico"
    return None


def _to_bgr(img: Image.Image) -> np.ndarray:
    """Flatten any Pillow mode to 8-bit BGR; transparent areas become white."""
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    if img.mode != "RGB":
        img = img.convert("RGB")
    rgb = np.asarray(img, dtype=np.uint8)
    return np.ascontiguousarray(rgb[:, :, ::-1])


# EXIF orientation -> the array operation that makes the picture upright (as Pillow's exif_transpose).
_UPRIGHT = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: np.rot90(a, 2).transpose(1, 0, 2),
    8: lambda a: np.rot90(a, 1),
}


def _fast_decode(data: bytes, img: Image.Image, fmt: str, orientation: int) -> np.ndarray | None:
    """OpenCV's decoder for plain 8-bit RGB/gray JPEG and PNG (about 3x faster); None: use Pillow.

    OpenCV returns None on truncated or broken data, and Pillow then names the problem.
    """
    if fmt == "bmp" or img.mode not in ("RGB", "L") or (fmt == "png" and "transparency" in img.info):
        return None
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if arr is None or arr.shape[:2] != (img.size[1], img.size[0]):
        return None
    if orientation in _UPRIGHT:
        arr = np.ascontiguousarray(_UPRIGHT[orientation](arr))
    return arr


# Deflate cannot shrink data by more than about 1032:1; PNG rows are at least 1 bit per pixel plus a filter byte.
_DEFLATE_MAX_RATIO = 1032


def min_plausible_bytes(fmt: str, width: int, height: int) -> int:
    """Fewest bytes a complete image of this size can take; a file below it claims pixels it cannot hold.

    JPEG (Huffman, baseline or progressive) spends at least one bit per 8x8 luma block on its DC symbol,
    so a flat grey 4000x4000 photo needs 31 KB (real ones are about 60x more); the 689-byte file that
    claimed 4000x4000 decoded to 16 Mpx of filler. PNG: one bit per pixel deflated at the best possible
    ratio, halved for slack. Arithmetic-coded JPEGs that small are refused too.
    """
    if fmt == "jpeg":
        return ((width + 7) // 8) * ((height + 7) // 8) // 8
    if fmt == "png":
        return height * (1 + (width + 7) // 8) // _DEFLATE_MAX_RATIO // 2
    if fmt == "bmp":  # RLE8 at its best: 2 bytes per run of 255 pixels and an end-of-line per row, after the 54-byte header
        return 54 + height * 2 * (2 + width // 255) // 2
    return 0


def decode_image(data: bytes, max_pixels: int = 40_000_000) -> DecodedImage:
    """Decode JPEG, PNG or BMP bytes safely; raise VerifierError with a reason code."""
    if not data:
        raise VerifierError("FILE_EMPTY", measured=0)
    fmt = sniff_format(data)
    if fmt is None:
        raise VerifierError("IMAGE_NOT_IMAGE")
    if fmt not in SUPPORTED_FORMATS:
        raise VerifierError("IMAGE_FORMAT_UNSUPPORTED", detail=fmt, measured=fmt, limit=list(SUPPORTED_FORMATS))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img = Image.open(io.BytesIO(data), formats=[_PIL_FORMATS[fmt]])
            width, height = img.size
            if width * height > max_pixels:
                raise VerifierError("IMAGE_TOO_MANY_PIXELS", measured=width * height, limit=max_pixels)
            if min(width, height) < MIN_SIDE:
                raise VerifierError("IMAGE_TOO_SMALL", measured=[width, height], limit=MIN_SIDE)
            needed = min_plausible_bytes(fmt, width, height)
            if len(data) < needed:
                raise VerifierError("IMAGE_SIZE_CLAIM_IMPLAUSIBLE", detail=f"{width}x{height} in {len(data)} bytes", measured=len(data), limit=needed)
            progressive = bool(img.info.get("progressive") or img.info.get("progression"))
            source_mode = img.mode
            orientation = int(img.getexif().get(0x0112, 1) or 1)
            orientation = orientation if 1 <= orientation <= 8 else 1
            fast = _fast_decode(data, img, fmt, orientation)
            if fast is not None:
                return DecodedImage(fast, fmt, source_mode, orientation, progressive)
            # Re-asserted on every call: some libraries (face_recognition) switch it on at import.
            ImageFile.LOAD_TRUNCATED_IMAGES = False
            img.load()
            if orientation != 1:
                img = ImageOps.exif_transpose(img)
            pixels = _to_bgr(img)
    except VerifierError:
        raise
    except Image.DecompressionBombError as exc:
        raise VerifierError("IMAGE_TOO_MANY_PIXELS", detail=str(exc), limit=max_pixels) from None
    except UnidentifiedImageError:
        raise VerifierError("IMAGE_CORRUPT", detail="header not recognised") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error) as exc:
        msg = str(exc)
        code = "IMAGE_TRUNCATED" if "truncated" in msg.lower() or isinstance(exc, EOFError) else "IMAGE_CORRUPT"
        raise VerifierError(code, detail=msg[:200]) from None
    except MemoryError:
        raise VerifierError("IMAGE_TOO_MANY_PIXELS", detail="out of memory while decoding", limit=max_pixels) from None
    return DecodedImage(pixels, fmt, source_mode, orientation, progressive)

