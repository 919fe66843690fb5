"""A bad-input corpus made by the tests: each kind gets its own stable reason code, and the run goes on."""

from __future__ import annotations

import io
import os
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from verifier.photos.checks import check_paths, check_photo
from verifier.photos.profiles import admission
from verifier.photos.spec import display_name

KSH = "20210101000001"


def _pil(fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (295, 413), (180, 120, 90)).save(buf, fmt, **kw)
    return buf.getvalue()


def _bomb_jpeg(base: bytes) -> bytes:
    """A small JPEG whose frame header claims 60000 x 60000 pixels."""
    i = base.index(b"\xff\xc0")
    return base[: i + 5] + struct.pack(">HH", 60000, 60000) + base[i + 9 :]


def _bomb_png() -> bytes:
    raw = _pil("PNG")
    return raw[:16] + struct.pack(">II", 100000, 100000) + raw[24:]


def _jpeg(img: np.ndarray, q: int = 85) -> bytes:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, q])
    assert ok
    return buf.tobytes()


def _from_pillow(pixels: np.ndarray, **kw) -> bytes:
    img = Image.fromarray(pixels[:, :, ::-1].copy())
    mode = kw.pop("mode", None)
    if mode:
        img = img.convert(mode)
    buf = io.BytesIO()
    img.save(buf, "JPEG", **({"quality": 85} | kw))
    return buf.getvalue()


def _exif_rotated(pixels: np.ndarray) -> bytes:
    """Stored landscape, EXIF orientation 6: upright it is the portrait again."""
    stored = Image.fromarray(pixels[:, :, ::-1].copy()).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    stored.save(buf, "JPEG", quality=85, exif=exif.tobytes())
    return buf.getvalue()


# kind -> (file name, expected code in spec-only and full checks; None = must not fail)
KINDS: dict[str, tuple[str, str | None]] = {
    "zero_bytes": (f"{KSH}-empty.jpg", "FILE_EMPTY"),
    "truncated_jpeg": ("20210101000002.jpg", "IMAGE_TRUNCATED"),
    "truncated_header": ("20210101000003.jpg", "IMAGE_TRUNCATED"),
    "corrupt_header": ("20210101000004.jpg", "IMAGE_CORRUPT"),
    "png_named_jpg": ("20210101000005.jpg", "SPEC_FORMAT"),
    "gif_named_jpg": ("20210101000006.jpg", "IMAGE_FORMAT_UNSUPPORTED"),
    "webp_named_jpg": ("20210101000007.jpg", "IMAGE_FORMAT_UNSUPPORTED"),
    "bmp_named_jpg": ("20210101000008.jpg", "SPEC_FORMAT"),  # decodable (ID-card readers export BMP), not the admission format
    "heic_named_jpg": ("20210101000009.jpg", "IMAGE_FORMAT_UNSUPPORTED"),
    "tiff_named_jpg": ("20210101000010.jpg", "IMAGE_FORMAT_UNSUPPORTED"),
    "jpeg_bomb": ("20210101000011.jpg", "IMAGE_TOO_MANY_PIXELS"),
    "png_bomb": ("20210101000012.jpg", "IMAGE_TOO_MANY_PIXELS"),
    "text_file": ("20210101000013.jpg", "IMAGE_NOT_IMAGE"),
    "pdf_file": ("20210101000014.jpg", "IMAGE_NOT_IMAGE"),
    "zip_file": ("20210101000015.jpg", "IMAGE_NOT_IMAGE"),
    "directory_named_jpg": ("20210101000016.jpg", "FILE_IS_DIRECTORY"),
    "fifo": ("20210101000017.jpg", "FILE_UNREADABLE"),
    "dangling_symlink": ("20210101000018.jpg", "FILE_NOT_FOUND"),
    "too_large_to_read": ("20210101000019.jpg", "FILE_TOO_LARGE_TO_READ"),
    "gbk_name": ("\udcd5\udcc5\udcc8\udcfd.jpg", "FILE_NAME_NOT_UTF8"),
    "control_char_name": ("2021010100\n0020.jpg", "FILE_NAME_UNSAFE"),
    "name_not_ksh": ("zhangsan.jpg", "SPEC_NAME_PATTERN"),
    "wrong_extension": ("20210101000021.jpeg2", "SPEC_EXTENSION"),
    "over_50kb": ("20210101000022.jpg", "SPEC_FILE_TOO_LARGE"),
    "too_narrow": ("20210101000023.jpg", "SPEC_WIDTH"),
    "too_wide": ("20210101000024.jpg", "SPEC_WIDTH"),
    "landscape": ("20210101000025.jpg", "SPEC_LANDSCAPE"),
    "odd_aspect": ("20210101000026.jpg", "SPEC_SIZE_NOT_RECOMMENDED"),
    "tiny_image": ("20210101000027.jpg", "SPEC_WIDTH"),
    "exif_rotated": ("20210101000028.jpg", None),
    "cmyk_jpeg": ("20210101000029.jpg", None),
    "progressive_jpeg": ("20210101000030.jpg", None),
    "trailing_bytes": ("20210101000031.jpg", None),
}
# Kinds whose code only the decoder can find (spec-only sees a well-formed header).
FULL_ONLY = {"grayscale_jpeg": ("20210101000032.jpg", "QUALITY_NOT_COLOUR")}


def _make(kind: str, folder: Path, good: bytes, pixels: np.ndarray) -> None:
    name = (KINDS | FULL_ONLY)[kind][0]
    path = folder / name
    contents = {
        "zero_bytes": b"",
        "truncated_jpeg": good[: len(good) // 2],
        "truncated_header": good[:300],
        "corrupt_header": b"\xff\xd8\xff\xe0\x00\x04ab" + b"\x17" * 500,
        "png_named_jpg": _pil("PNG"),
        "gif_named_jpg": _pil("GIF"),
        "webp_named_jpg": _pil("WEBP"),
        "bmp_named_jpg": _pil("BMP"),
        "heic_named_jpg": b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(500),
        "tiff_named_jpg": _pil("TIFF"),
        "jpeg_bomb": _bomb_jpeg(good),
        "png_bomb": _bomb_png(),
        "text_file": "考生号,姓名\n20210101000001,张三\n".encode("utf-8"),
        "pdf_file": b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n%%EOF\n",
        "zip_file": b"PK\x03\x04" + bytes(200),
        "name_not_ksh": good,
        "wrong_extension": good,
        "control_char_name": good,
        "gbk_name": good,
        "over_50kb": _jpeg(np.random.default_rng(1).integers(0, 256, (413, 295, 3), dtype=np.uint8), 100),
        "too_narrow": _jpeg(cv2.resize(pixels, (80, 112))),
        "too_wide": _jpeg(cv2.resize(pixels, (590, 826))),
        "landscape": _jpeg(cv2.resize(pixels, (413, 295))),
        "odd_aspect": _jpeg(cv2.resize(pixels, (295, 295))),
        "tiny_image": _jpeg(cv2.resize(pixels, (12, 16))),
        "exif_rotated": _exif_rotated(pixels),
        "cmyk_jpeg": _from_pillow(pixels, mode="CMYK", quality=50),
        "progressive_jpeg": _from_pillow(pixels, progressive=True),
        "trailing_bytes": good + b"\x00" * 64 + b"trailer",
        "grayscale_jpeg": _from_pillow(pixels, mode="L"),
    }
    if kind in contents:
        with open(os.fsencode(path), "wb") as fh:
            fh.write(contents[kind])
    elif kind == "directory_named_jpg":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "dangling_symlink":
        path.symlink_to(folder / "no-such-target.jpg")
    elif kind == "too_large_to_read":
        with open(path, "wb") as fh:
            fh.truncate(50 * 1024 * 1024 + 1)


@pytest.fixture(scope="module")
def corpus(id_photos, tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """The corpus folder and, per kind, the `file` its result will carry."""
    folder = tmp_path_factory.mktemp("bad-input")
    good_path = id_photos.get("obama_1") or next(iter(id_photos.values()))
    good = good_path.read_bytes()
    pixels = cv2.imdecode(np.frombuffer(good, np.uint8), cv2.IMREAD_COLOR)
    shown = {}
    for kind in KINDS | FULL_ONLY:
        _make(kind, folder, good, pixels)
        shown[kind] = display_name(str(folder / (KINDS | FULL_ONLY)[kind][0]))
    return folder, shown


@pytest.fixture(scope="module")
def spec_results(corpus):
    folder, _ = corpus
    return {r.file: r for r in check_paths([folder], admission)}


@pytest.fixture(scope="module")
def full_results(corpus, pipeline):
    folder, _ = corpus
    return {r.file: r for r in check_paths([folder], admission, pipeline, workers=1)}


def test_corpus_is_big_enough():
    assert len(KINDS) + len(FULL_ONLY) >= 25


def test_every_input_gives_exactly_one_result(corpus, spec_results, full_results):
    folder, shown = corpus
    assert set(spec_results) == set(shown.values()) == set(full_results)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_spec_only_codes(kind, corpus, spec_results):
    _, shown = corpus
    result = spec_results[shown[kind]]
    _assert_code(kind, KINDS[kind][1], result)


@pytest.mark.parametrize("kind", sorted(KINDS | FULL_ONLY))
def test_full_check_codes(kind, corpus, full_results):
    _, shown = corpus
    result = full_results[shown[kind]]
    _assert_code(kind, (KINDS | FULL_ONLY)[kind][1], result)


def _assert_code(kind: str, code: str | None, result) -> None:
    found = [r.code for r in result.reasons]
    if code is None:
        assert result.status != "fail", (kind, found, result.metrics)
    else:
        assert code in found, (kind, found)
        assert result.status == ("warn" if code == "SPEC_SIZE_NOT_RECOMMENDED" else "fail"), (kind, found)


def test_handled_variants_are_decoded_upright(full_results, corpus):
    _, shown = corpus
    rotated = full_results[shown["exif_rotated"]].metrics
    assert rotated["exif_orientation"] == 6 and (rotated["width"], rotated["height"]) == (295, 413)
    assert rotated["face_count"] == 1 and abs(rotated["roll"]) < 12
    assert full_results[shown["cmyk_jpeg"]].metrics["source_mode"] == "CMYK"
    assert full_results[shown["progressive_jpeg"]].metrics["progressive"] is True


def test_formats_are_named(spec_results, corpus):
    _, shown = corpus
    for kind, fmt in (("png_named_jpg", "png"), ("gif_named_jpg", "gif"), ("webp_named_jpg", "webp"), ("bmp_named_jpg", "bmp"), ("heic_named_jpg", "heic")):
        reasons = spec_results[shown[kind]].reasons
        assert any(r.measured == fmt for r in reasons), (kind, reasons)


def test_path_traversal_names_from_uploads(id_photos):
    data = next(iter(id_photos.values())).read_bytes()
    for name in ("../../etc/20210101000001.jpg", "..\\..\\20210101000001.jpg", "/abs/20210101000001.jpg", "..", "a\x00b.jpg"):
        result = check_photo(data, admission, file_name=name)
        assert [r.code for r in result.reasons] == ["FILE_NAME_UNSAFE"], name
        assert result.ksh is None


def test_permission_denied_is_unreadable(tmp_path, monkeypatch, id_photos):
    """Tests run as root, so chmod 000 would not stop a read: simulate EACCES at open()."""
    target = tmp_path / f"{KSH}.jpg"
    target.write_bytes(next(iter(id_photos.values())).read_bytes())
    real_open = os.open

    def denying_open(path, flags, *args, **kw):
        if os.fsdecode(path) == str(target):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args, **kw)

    monkeypatch.setattr(os, "open", denying_open)
    results = list(check_paths([tmp_path], admission))
    assert [r.code for r in results[0].reasons] == ["FILE_UNREADABLE"]
    assert results[0].reasons[0].measured == "Permission denied"


def test_missing_path_given_directly():
    result = check_photo(Path("/no/such/dir/20210101000001.jpg"), admission)
    assert [r.code for r in result.reasons] == ["FILE_NOT_FOUND"] and result.status == "fail"
