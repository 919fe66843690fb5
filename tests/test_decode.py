"""Safe decoding: formats by content, EXIF, colour modes, bombs, truncation."""

from __future__ import annotations

import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from bombs import jpeg_claiming

from verifier.core.decode import decode_image, sniff_format
from verifier.common.reasons import VerifierError


def _jpeg(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", **kw)
    return buf.getvalue()


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def _code(data: bytes, **kw) -> str:
    with pytest.raises(VerifierError) as exc:
        decode_image(data, **kw)
    return exc.value.reason.code


def _gradient(w: int = 64, h: int = 48) -> Image.Image:
    x = np.linspace(0, 255, w, dtype=np.uint8)
    arr = np.stack([np.tile(x, (h, 1)), np.tile(x[::-1], (h, 1)), np.full((h, w), 128, np.uint8)], axis=2)
    return Image.fromarray(arr, "RGB")


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def test_png_bomb_is_refused_before_decoding():
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + _png_chunk(b"IEND", b"")
    assert _code(data) == "IMAGE_TOO_MANY_PIXELS"


def test_jpeg_bomb_is_refused_before_decoding():
    data = bytearray(_jpeg(_gradient()))
    sof = data.find(b"\xff\xc0")
    assert sof > 0
    data[sof + 5 : sof + 9] = struct.pack(">HH", 60_000, 60_000)
    assert _code(bytes(data)) == "IMAGE_TOO_MANY_PIXELS"


def test_pixel_cap_is_configurable():
    data = _jpeg(_gradient(200, 100))
    assert _code(data, max_pixels=10_000) == "IMAGE_TOO_MANY_PIXELS"
    assert decode_image(data, max_pixels=20_000).width == 200


@pytest.mark.parametrize("cut", [0.3, 0.6, 0.9])
def test_truncated_jpeg(cut):
    data = _jpeg(_gradient(256, 256), quality=95)
    assert _code(data[: int(len(data) * cut)]) in ("IMAGE_TRUNCATED",)


def test_truncated_png():
    data = _png(_gradient(256, 256))
    assert _code(data[: len(data) // 2]) in ("IMAGE_TRUNCATED", "IMAGE_CORRUPT")


@pytest.mark.parametrize(
    "data, code",
    [
        (b"", "FILE_EMPTY"),
        (b"hello, this is text and not an image at all", "IMAGE_NOT_IMAGE"),
        (b"GIF89a" + b"\0" * 40, "IMAGE_FORMAT_UNSUPPORTED"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 " + b"\0" * 40, "IMAGE_FORMAT_UNSUPPORTED"),
        (b"BM" + b"\0" * 60, "IMAGE_CORRUPT"),
        (b"\x00\x00\x00\x18ftypheic" + b"\0" * 40, "IMAGE_FORMAT_UNSUPPORTED"),
        (b"\xff\xd8\xff\x00" + b"\x13" * 200, "IMAGE_CORRUPT"),
        (b"\xff\xd8\xff\xe0" + b"\x13" * 200, "IMAGE_TRUNCATED"),
    ],
)
def test_bad_bytes_get_reason_codes(data, code):
    assert _code(data) == code


def test_tiny_image_is_refused():
    assert _code(_jpeg(_gradient(8, 8))) == "IMAGE_TOO_SMALL"


@pytest.mark.parametrize("mode", ["L", "CMYK", "RGBA", "P", "I;16"])
def test_colour_modes_become_bgr(mode):
    img = _gradient().convert(mode) if mode != "I;16" else Image.fromarray((np.arange(64 * 48).reshape(48, 64) * 20).astype(np.uint16))
    data = _png(img) if mode in ("RGBA", "P", "I;16") else _jpeg(img)
    out = decode_image(data)
    assert out.pixels.shape == (48, 64, 3) and out.pixels.dtype == np.uint8
    assert out.source_mode in (mode, "I;16", "I")


def test_rgba_transparency_becomes_white():
    img = Image.new("RGBA", (40, 30), (255, 0, 0, 0))
    out = decode_image(_png(img))
    assert out.pixels[0, 0].tolist() == [255, 255, 255]


def test_progressive_jpeg():
    out = decode_image(_jpeg(_gradient(), progressive=True))
    assert out.progressive and out.format == "jpeg"


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_is_applied(orientation):
    upright = _gradient(64, 48)
    ops = {
        1: [],
        2: [Image.Transpose.FLIP_LEFT_RIGHT],
        3: [Image.Transpose.ROTATE_180],
        4: [Image.Transpose.FLIP_TOP_BOTTOM],
        5: [Image.Transpose.TRANSPOSE],
        6: [Image.Transpose.ROTATE_90],
        7: [Image.Transpose.TRANSVERSE],
        8: [Image.Transpose.ROTATE_270],
    }[orientation]
    stored = upright
    for op in ops:
        stored = stored.transpose(op)
    exif = Image.Exif()
    exif[0x0112] = orientation
    out = decode_image(_jpeg(stored, quality=100, exif=exif.tobytes()))
    assert (out.width, out.height) == (64, 48)
    ref = np.asarray(upright)[:, :, ::-1].astype(int)
    assert np.abs(out.pixels.astype(int) - ref).mean() < 6


def test_sniff_format_by_content_not_name():
    assert sniff_format(_png(_gradient())) == "png"
    assert sniff_format(_jpeg(_gradient())) == "jpeg"


def test_jpeg_claiming_far_more_pixels_than_its_bytes_hold_is_refused():
    """The probe's file: a few hundred bytes whose SOF claims 4000x4000 decoded to 16 Mpx of filler (under the pixel cap)."""
    data = jpeg_claiming(4000, 4000)
    assert len(data) < 1000 and 4000 * 4000 <= 16_000_000
    assert _code(data, max_pixels=16_000_000) == "IMAGE_SIZE_CLAIM_IMPLAUSIBLE"
    assert _code(jpeg_claiming(1200, 1600)) == "IMAGE_SIZE_CLAIM_IMPLAUSIBLE"
    assert decode_image(jpeg_claiming(16, 16)).width == 16  # the same file with its true size is fine


def test_png_claiming_far_more_pixels_than_its_bytes_hold_is_refused():
    ihdr = struct.pack(">IIBBBBB", 4000, 4000, 8, 2, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(b"\0" * 100)) + _png_chunk(b"IEND", b"")
    assert _code(data) == "IMAGE_SIZE_CLAIM_IMPLAUSIBLE"


@pytest.mark.parametrize("mode", ["L", "RGB"])
@pytest.mark.parametrize("progressive", [False, True])
def test_the_most_compressible_honest_images_still_decode(mode: str, progressive: bool):
    """A flat grey 4000x4000 at quality 1 is the smallest real JPEG of that size; it, and a flat PNG, must pass the claim check."""
    flat = Image.new(mode, (4000, 4000), 128 if mode == "L" else (128, 128, 128))
    assert decode_image(_jpeg(flat, quality=1, progressive=progressive, optimize=True)).width == 4000
    one_bit = io.BytesIO()
    Image.new("1", (4000, 4000), 0).save(one_bit, "PNG", optimize=True)
    assert decode_image(one_bit.getvalue()).height == 4000


def test_every_face_set_photo_still_decodes(faces):
    photos = [p for p in sorted(faces.iterdir()) if p.suffix.lower() in (".jpg", ".jpeg", ".png")]
    assert photos
    for p in photos:
        assert decode_image(p.read_bytes()).width >= 16, p.name


def test_bmp_from_an_id_card_reader_decodes_and_its_header_is_read() -> None:
    """ID-card readers export the chip photo as a 24-bit BMP: decoded to the same pixels, header read without decoding."""
    from verifier.photos.spec import read_header

    rng = np.random.default_rng(5)
    img = rng.integers(0, 255, size=(126, 102, 3), dtype=np.uint8)
    data = cv2.imencode(".bmp", img)[1].tobytes()
    decoded = decode_image(data)
    assert decoded.format == "bmp" and (decoded.width, decoded.height) == (102, 126)
    assert np.array_equal(decoded.pixels, img)
    header = read_header(data, "bmp")
    assert (header.width, header.height, header.complete) == (102, 126, True)
    assert read_header(data[:-10], "bmp").complete is False
