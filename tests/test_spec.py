"""Profiles and the model-free specification checks."""

from __future__ import annotations

import io
import json
import time

import cv2
import numpy as np
import pytest
from PIL import Image

from verifier.photos.checks import check_paths, check_photo
from verifier.photos.profiles import BUILTINS, admission, graduation, load_profile
from verifier.common.reasons import VerifierError
from verifier.photos.spec import check_spec, jpeg_header

KSH = "20210101000001"


def jpeg(width: int, height: int, quality: int = 85, noise: bool = False) -> bytes:
    """A synthetic JPEG: a smooth gradient, or noise to make it large."""
    if noise:
        img = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    else:
        y, x = np.mgrid[0:height, 0:width]
        img = np.dstack([x * 255 // max(1, width), y * 255 // max(1, height), np.full_like(x, 128)]).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buf.tobytes()


def codes(data: bytes, name: str = f"{KSH}.jpg", profile=admission, roster=None) -> list[str]:
    return [r.code for r in check_spec(data, name, profile, roster)[0]]


def test_builtin_profiles_hold_the_numbers_of_the_notice():
    assert admission.max_bytes == 51_200 and (admission.min_width, admission.max_width) == (90, 480)
    assert admission.recommended_size == (295, 413) and admission.formats == ("jpeg",)
    assert admission.name_pattern == r"^\d{14}$"
    assert (graduation.min_width, graduation.max_width, graduation.min_height, graduation.max_height) == (480, 480, 640, 640)
    assert graduation.min_bytes == 30 * 1024 and graduation.background == "blue"
    assert set(BUILTINS) == {"admission", "graduation", "id_card"}
    assert load_profile("admission") is admission
    json.dumps(admission.to_dict())


def test_profile_file_overrides_a_base(tmp_path):
    j = tmp_path / "p.json"
    j.write_text(json.dumps({"base": "admission", "max_bytes": 40960, "name_pattern": r"^\d{12}$", "max_roll": 8}), encoding="utf-8")
    p = load_profile(j)
    assert p.max_bytes == 40960 and p.name_pattern == r"^\d{12}$" and p.max_roll == 8.0 and p.max_width == 480
    t = tmp_path / "g.toml"
    t.write_text('base = "graduation"\nname = "grad-sh"\nmin_bytes = 20480\nrecommended_size = [480, 640]\n', encoding="utf-8")
    g = load_profile(str(t))
    assert g.name == "grad-sh" and g.min_bytes == 20480 and g.background == "blue" and g.recommended_size == (480, 640)


@pytest.mark.parametrize(
    "content",
    ['{"base": "admission", "no_such_field": 1}', '{"max_bytes": "big"}', "[1, 2]", "{not json", '{"base": "passport"}'],
)
def test_bad_profile_files_are_reported(tmp_path, content):
    f = tmp_path / "bad.json"
    f.write_text(content, encoding="utf-8")
    with pytest.raises(VerifierError) as exc:
        load_profile(f)
    assert exc.value.reason.code == "PROFILE_INVALID"


def test_unknown_profile_name():
    with pytest.raises(VerifierError) as exc:
        load_profile("passport")
    assert exc.value.reason.code == "PROFILE_INVALID"


def test_recommended_photo_passes_spec():
    data = jpeg(295, 413)
    reasons, metrics = check_spec(data, f"{KSH}.jpg", admission)
    assert reasons == []
    assert metrics["width"] == 295 and metrics["height"] == 413 and metrics["bytes"] == len(data) and metrics["format"] == "jpeg"


@pytest.mark.parametrize(
    "size,expected",
    [
        ((90, 126), []),
        ((480, 672), []),
        ((89, 125), ["SPEC_WIDTH"]),
        ((481, 673), ["SPEC_WIDTH"]),
        ((300, 300), ["SPEC_SIZE_NOT_RECOMMENDED"]),
        ((200, 400), ["SPEC_SIZE_NOT_RECOMMENDED"]),
        ((413, 295), ["SPEC_LANDSCAPE"]),
        ((600, 400), ["SPEC_WIDTH", "SPEC_LANDSCAPE"]),
    ],
)
def test_dimensions(size, expected):
    assert codes(jpeg(*size)) == expected


def test_size_not_recommended_is_a_warning_and_landscape_a_failure():
    warn = check_photo(jpeg(300, 300), admission, file_name=f"{KSH}.jpg")
    assert warn.status == "warn"
    fail = check_photo(jpeg(413, 295), admission, file_name=f"{KSH}.jpg")
    assert fail.status == "fail"
    r = fail.reasons[0]
    assert r.measured == [413, 295] and r.limit == "portrait"


def test_file_size_limit_reports_the_actual_size():
    data = jpeg(295, 413, quality=100, noise=True)
    assert len(data) > 51_200
    reasons, _ = check_spec(data, f"{KSH}.jpg", admission)
    big = [r for r in reasons if r.code == "SPEC_FILE_TOO_LARGE"][0]
    assert big.measured == len(data) and big.limit == 51_200
    assert "SPEC_FILE_TOO_SMALL" in codes(jpeg(480, 640), profile=graduation)


def test_names_and_roster():
    data = jpeg(295, 413)
    assert codes(data, "zhangsan.jpg") == ["SPEC_NAME_PATTERN"]
    assert codes(data, "2021010100000.jpg") == ["SPEC_NAME_PATTERN"]
    assert codes(data, f"{KSH}.png") == ["SPEC_EXTENSION"]
    assert codes(data, f"{KSH}.JPG") == []
    assert codes(data, f"{KSH}.jpg", roster={KSH}) == []
    assert codes(data, f"{KSH}.jpg", roster={"20210101000002"}) == ["SPEC_KSH_NOT_ON_ROSTER"]
    custom = load_profile_from(name_pattern=r"^[A-Z]\d{6}$")
    assert codes(data, "A123456.jpg", profile=custom) == []
    result = check_photo(data, custom, file_name="A123456.jpg")
    assert result.ksh == "A123456"


def load_profile_from(**values):
    from verifier.photos.profiles import override

    return override(admission, values)


def test_png_is_not_jpeg_by_content_whatever_the_name():
    buf = io.BytesIO()
    Image.new("RGB", (295, 413), (200, 100, 50)).save(buf, "PNG")
    reasons, metrics = check_spec(buf.getvalue(), f"{KSH}.jpg", admission)
    assert [r.code for r in reasons] == ["SPEC_FORMAT"] and reasons[0].measured == "png"
    assert metrics["width"] == 295


def test_header_reads_exif_orientation_and_progressive():
    img = Image.new("RGB", (413, 295), (90, 120, 200))
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif.tobytes(), progressive=True, quality=85)
    h = jpeg_header(buf.getvalue())
    assert (h.width, h.height, h.exif_orientation, h.progressive, h.complete) == (295, 413, 6, True, True)
    assert codes(buf.getvalue()) == []


def test_spec_only_is_fast(tmp_path):
    data = jpeg(295, 413)
    for i in range(400):
        (tmp_path / f"2021010100{i:04d}.jpg").write_bytes(data)
    t0 = time.perf_counter()
    results = list(check_paths([tmp_path], admission))
    rate = len(results) / (time.perf_counter() - t0)
    assert len(results) == 400 and all(r.status == "pass" for r in results)
    assert rate >= 1000, f"spec-only checks at {rate:.0f} photos/s"


def test_id_card_profile_accepts_a_reader_s_bmp_that_admission_refuses() -> None:
    """A 102x126 BMP chip photo meets the id_card specification; as an admission photo it is the wrong format."""
    data = cv2.imencode(".bmp", np.full((126, 102, 3), 200, np.uint8))[1].tobytes()
    reasons, metrics = check_spec(data, "20260000000001.bmp", load_profile("id_card"))
    assert reasons == [] and (metrics["width"], metrics["height"], metrics["format"]) == (102, 126, "bmp")
    codes = {r.code for r in check_spec(data, "20260000000001.bmp", load_profile("admission"))[0]}
    assert {"SPEC_FORMAT", "SPEC_EXTENSION"} <= codes
