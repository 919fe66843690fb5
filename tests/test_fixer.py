"""The photo fixer on the real face set: round-trip to upload-ready photos, refusals, untouched sources."""

from __future__ import annotations

import csv
import hashlib
import io
import shutil
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import pytest
from PIL import Image

from verifier.photos.fixer import CHECK_FAILED, FIXED, NOT_FIXED, REPORT_HEADERS, FixOptions, encode_baseline, encode_within, fix_folder, fix_photo, resolve_ksh
from verifier.photos.framing import frame_face
from verifier.common.reasons import VerifierError

LIMIT = 51_200


def ksh(n: int) -> str:
    return f"2021{n:010d}"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def jpeg_markers(data: bytes) -> set[int]:
    """The frame markers (SOFn) of a JPEG, walking the segment list up to the scan."""
    assert data[:2] == b"\xff\xd8"
    i, found = 2, set()
    while i + 4 <= len(data):
        assert data[i] == 0xFF, f"bad segment at {i}"
        marker = data[i + 1]
        if marker == 0xDA:
            break
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            found.add(marker)
        i += 2 + length
    return found


@pytest.fixture(scope="module")
def profile():
    from verifier.photos.profiles import load_profile

    return load_profile("admission")


@dataclass
class Run:
    src: Path
    out: Path
    report: object
    sources: dict[str, Path]  # source file name -> original face-set photo it was made from (None for non-faces)
    hashes_before: dict[Path, str]
    expect: dict[str, str]  # source file name -> expected status or reason code


def _variants(single_faces: list[Path], src: Path, pipeline) -> tuple[dict[str, Path], dict[str, str]]:
    """Non-compliant variants of face-set photos, written into SRC; returns their origins and expectations."""
    by_stem = {p.stem: p for p in single_faces}
    origin, expect = {}, {}
    base = by_stem["obama_1"]
    rgb = Image.open(base).convert("RGB")

    name = f"{ksh(900)}.png"  # large PNG (over 4 MP)
    rgb.resize((rgb.width * 2, rgb.height * 2), Image.LANCZOS).save(src / name, "PNG")
    origin[name], expect[name] = base, FIXED

    name = f"{ksh(901)}.jpg"  # stored on its side, EXIF orientation 6 turns it upright
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.open(by_stem["rose_leslie_2"]).convert("RGB").transpose(Image.Transpose.ROTATE_90).save(src / name, "JPEG", quality=92, exif=exif)
    origin[name], expect[name] = by_stem["rose_leslie_2"], FIXED

    name = f"{ksh(902)}.jpg"  # landscape: the portrait put on a wide canvas
    img = cv2.imread(str(by_stem["adams_1"]))
    wide = cv2.copyMakeBorder(img, 0, 0, img.shape[1] // 2, img.shape[1] // 2, cv2.BORDER_REPLICATE)
    assert wide.shape[1] > wide.shape[0]
    cv2.imwrite(str(src / name), wide, [cv2.IMWRITE_JPEG_QUALITY, 92])
    origin[name], expect[name] = by_stem["adams_1"], FIXED

    name = f"{ksh(903)}.jpg"  # already 295x413 but progressive and far over 50 KB
    analysis = pipeline.analyze(by_stem["carell_1"])
    portrait = frame_face(pipeline.decode(by_stem["carell_1"]).pixels, analysis.face)
    Image.fromarray(portrait[:, :, ::-1]).save(src / name, "JPEG", quality=100, progressive=True, subsampling=0)
    assert (src / name).stat().st_size > LIMIT
    origin[name], expect[name] = by_stem["carell_1"], FIXED

    name = f"{ksh(904)}.jpg"  # tiny face: the whole photo shrunk to a thumbnail
    small = cv2.resize(cv2.imread(str(by_stem["obama_2"])), None, fx=0.18, fy=0.18, interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(src / name), small, [cv2.IMWRITE_JPEG_QUALITY, 95])
    expect[name] = "FIX_FACE_TOO_SMALL"

    name = "张三的照片.jpg"  # not a 考生号, no roster
    shutil.copyfile(by_stem["biden_1"], src / name)
    expect[name] = "FIX_KSH_UNKNOWN"

    name = f"{ksh(905)}.jpg"  # not an image at all
    (src / name).write_bytes(b"%PDF-1.4 not a photo\n")
    expect[name] = "IMAGE_NOT_IMAGE"

    for ext in ("jpg", "png"):  # two files claim one 考生号
        name = f"{ksh(906)}.{ext}"
        Image.open(by_stem["lennon_2"]).convert("RGB").save(src / name, "JPEG" if ext == "jpg" else "PNG")
        expect[name] = "FIX_KSH_DUPLICATE"
    return origin, expect


@pytest.fixture(scope="module")
def run(single_faces, group_faces, pipeline, profile, tmp_path_factory) -> Run:
    base = tmp_path_factory.mktemp("fixer")
    src, out = base / "src", base / "out"
    src.mkdir()
    sources: dict[str, Path] = {}
    expect: dict[str, str] = {}
    for i, p in enumerate(single_faces):
        name = f"{ksh(i)}{p.suffix.lower()}"
        shutil.copyfile(p, src / name)
        sources[name] = p
    for i, p in enumerate(group_faces):
        name = f"{ksh(500 + i)}{p.suffix.lower()}"
        shutil.copyfile(p, src / name)
        expect[name] = "FACE_MULTIPLE"
    origin, more = _variants(single_faces, src, pipeline)
    sources.update(origin)
    expect.update(more)
    for f in src.iterdir():
        f.chmod(0o444)
    hashes = {f: sha256(f) for f in src.iterdir()}
    report = fix_folder(src, out, pipeline, profile)
    return Run(src, out, report, sources, hashes, expect)


def by_source(run: Run) -> dict:
    return {r.source: r for r in run.report.results}


def test_every_source_gets_exactly_one_row(run):
    names = [r.source for r in run.report.results]
    assert sorted(names) == sorted(f.name for f in run.src.iterdir())
    assert len(names) == len(set(names))


def test_sources_are_untouched(run):
    after = {f: sha256(f) for f in run.src.iterdir()}
    assert after == run.hashes_before


def test_expected_outcomes(run):
    rows = by_source(run)
    for name, want in run.expect.items():
        r = rows[name]
        if want == FIXED:
            assert r.status == FIXED, (name, r.status, [x.code for x in r.reasons], r.check)
        else:
            assert r.status == NOT_FIXED and r.output is None, (name, r.status)
            assert [x.code for x in r.reasons] == [want], name


def test_group_photos_are_refused_and_not_written(run, group_faces):
    rows = by_source(run)
    groups = [r for n, r in rows.items() if run.expect.get(n) == "FACE_MULTIPLE"]
    assert len(groups) == len(group_faces) >= 1
    for r in groups:
        assert r.reasons[0].measured >= 2
        assert not (run.out / f"{r.ksh}.jpg").exists()


def test_tiny_face_is_refused_with_measured_upscale(run):
    rows = by_source(run)
    tiny = rows[f"{ksh(904)}.jpg"]
    assert tiny.reasons[0].measured > tiny.reasons[0].limit == FixOptions().max_upscale
    assert not (run.out / f"{ksh(904)}.jpg").exists()
    low_res = next(r for n, r in rows.items() if run.sources.get(n, Path()).stem == "obama_5_240p")
    assert low_res.status == NOT_FIXED and low_res.reasons[0].code == "FIX_FACE_TOO_SMALL"


def test_most_real_photos_are_fixed(run):
    fixed = [r for r in run.report.results if r.status == FIXED]
    assert len(fixed) >= 20, {r.source: [x.code for x in r.reasons] for r in run.report.results if r.status != FIXED}


def test_fixed_photos_meet_the_specification(run, pipeline, profile):
    from verifier.photos.checks import check_photo

    written = [r for r in run.report.results if r.output]
    assert written
    for r in written:
        path = run.out / r.output
        assert r.output == f"{r.ksh}.jpg" and len(r.ksh) == 14 and r.ksh.isdigit()
        data = path.read_bytes()
        assert len(data) == r.output_bytes <= LIMIT
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        img = Image.open(io.BytesIO(data))
        assert img.format == "JPEG" and img.size == (295, 413)
        assert not img.info.get("progressive") and not img.info.get("progression")
        assert jpeg_markers(data) & {0xC0, 0xC1} and not jpeg_markers(data) & {0xC2, 0xC6, 0xCA, 0xCE}
        if r.status == FIXED:
            result = check_photo(path, profile, pipeline=pipeline).to_dict()
            assert result["status"] in ("pass", "warn"), (r.source, result["reasons"])
            assert result["ksh"] == r.ksh


def test_fixed_photos_still_match_their_source_face(run, pipeline):
    accept = pipeline.thresholds.accept
    low = {}
    for r in run.report.results:
        if r.status != FIXED:
            continue
        a, b = pipeline.analyze_many([run.src / r.source, run.out / r.output])
        score = float(a.embedding @ b.embedding)
        if score < accept:
            low[r.source] = (run.sources[r.source].name, round(score, 3))
    assert low == {}, f"accept={accept}"


def test_zip_holds_exactly_the_passing_photos(run, pipeline, profile):
    from verifier.photos.checks import check_photo

    with zipfile.ZipFile(run.out / "upload.zip") as zf:
        names = sorted(zf.namelist())
        for n in names:
            assert zf.read(n) == (run.out / n).read_bytes()
    passing = sorted(
        r.output for r in run.report.results if r.output and check_photo(run.out / r.output, profile, pipeline=pipeline).to_dict()["status"] != "fail"
    )
    assert names == passing == sorted(run.report.zipped)
    assert stat.S_IMODE((run.out / "upload.zip").stat().st_mode) == 0o600


def test_reports_have_chinese_headers_and_one_row_per_source(run):
    raw = (run.out / "fix_report.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert tuple(rows[0]) == REPORT_HEADERS
    assert len(rows) - 1 == len(run.report.results)
    by_name = {row[0]: row for row in rows[1:]}
    assert by_name[f"{ksh(904)}.jpg"][2] == "未修复" and "FIX_FACE_TOO_SMALL" in by_name[f"{ksh(904)}.jpg"][3]
    from openpyxl import load_workbook

    ws = load_workbook(run.out / "fix_report.xlsx").active
    sheet = [list(r) for r in ws.iter_rows(values_only=True)]
    assert tuple(sheet[0]) == REPORT_HEADERS and len(sheet) == len(rows)


def test_check_failures_are_written_but_not_zipped(run):
    for r in run.report.results:
        if r.status == CHECK_FAILED:
            assert (run.out / r.output).exists() and r.output not in run.report.zipped and r.reasons


def test_out_inside_src_or_unusable_is_refused(tmp_path, pipeline, profile, single_faces):
    src = tmp_path / "src"
    src.mkdir()
    shutil.copyfile(single_faces[0], src / f"{ksh(1)}.jpg")
    before = sorted(p.name for p in src.rglob("*"))
    for out in (src / "out", src, tmp_path):
        with pytest.raises(VerifierError) as e:
            fix_folder(src, out, pipeline, profile)
        assert e.value.reason.code == "FIX_OUT_INSIDE_SRC"
    assert sorted(p.name for p in src.rglob("*")) == before
    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(VerifierError) as e:
        fix_folder(src, tmp_path / "file", pipeline, profile)
    assert e.value.reason.code == "FIX_OUT_UNUSABLE"


def test_roster_maps_student_numbers_to_ksh(tmp_path, pipeline, profile, single_faces):
    from verifier.photos.roster import load_roster

    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    obama = next(p for p in single_faces if p.stem == "obama_1")
    shutil.copyfile(obama, src / "2021050123.jpg")  # named by 学号
    shutil.copyfile(obama, src / "9999.jpg")  # neither
    roster_path = tmp_path / "roster.csv"
    roster_path.write_text(f"考生号,姓名,学号\n{ksh(77)},张三,2021050123\n", encoding="gbk")
    report = fix_folder(src, out, pipeline, profile, load_roster(roster_path))
    rows = by_source_report(report)
    assert rows["2021050123.jpg"].ksh == ksh(77) and rows["2021050123.jpg"].output == f"{ksh(77)}.jpg"
    assert rows["2021050123.jpg"].status == FIXED
    assert rows["9999.jpg"].reasons[0].code == "FIX_KSH_UNKNOWN"


def test_a_bmp_admission_photo_is_fixed_into_a_compliant_jpeg(tmp_path, pipeline, profile, single_faces):
    """BMP (what ID-card and some camera tools export) fails the admission format rule; the fixer turns it into the JPEG."""
    from verifier.photos.spec import check_spec

    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    obama = next(p for p in single_faces if p.stem == "obama_1")
    cv2.imwrite(str(src / f"{ksh(5)}.bmp"), cv2.imread(str(obama)))
    assert "SPEC_FORMAT" in {r.code for r in check_spec((src / f"{ksh(5)}.bmp").read_bytes(), f"{ksh(5)}.bmp", profile)[0]}
    rows = by_source_report(fix_folder(src, out, pipeline, profile))
    assert rows[f"{ksh(5)}.bmp"].status == FIXED and rows[f"{ksh(5)}.bmp"].output == f"{ksh(5)}.jpg"
    assert check_spec((out / f"{ksh(5)}.jpg").read_bytes(), f"{ksh(5)}.jpg", profile)[0] == []


def by_source_report(report) -> dict:
    return {r.source: r for r in report.results}


def test_resolve_ksh_prefers_roster_then_student_number_then_pattern():
    pattern = r"^\d{14}$"
    assert resolve_ksh(ksh(1), pattern, None, {}) == ksh(1)
    assert resolve_ksh("abc", pattern, None, {}) is None
    assert resolve_ksh("s01", pattern, {ksh(2)}, {"s01": ksh(2)}) == ksh(2)
    assert resolve_ksh(ksh(3), pattern, {ksh(3)}, {ksh(3): ksh(4)}) == ksh(3)


def test_encode_within_finds_the_highest_fitting_quality(single_faces, pipeline):
    analysis = pipeline.analyze(single_faces[0])
    portrait = frame_face(pipeline.decode(single_faces[0]).pixels, analysis.face)
    sizes = {q: len(encode_baseline(portrait, q)) for q in range(30, 96)}
    limit = sorted(sizes.values())[len(sizes) // 2]
    data, q = encode_within(portrait, limit)
    assert data is not None and len(data) <= limit
    assert all(sizes[k] > limit for k in range(q + 1, 96)) or q == 95
    assert encode_within(portrait, 100) == (None, 30)


def test_fix_photo_writes_nothing(tmp_path, pipeline, profile, single_faces):
    src = tmp_path / f"{ksh(5)}.jpg"
    shutil.copyfile(single_faces[0], src)
    r = fix_photo(src, pipeline, profile, ksh(5), FixOptions(run_checks=False))
    assert r.status == FIXED and r.data and r.output is None
    assert sorted(p.name for p in tmp_path.iterdir()) == [src.name]


def test_cli_fix(tmp_path, single_faces, group_faces, capsys):
    import json

    from verifier.cli.main import main

    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    shutil.copyfile(next(p for p in single_faces if p.stem == "biden_2"), src / f"{ksh(1)}.jpg")
    assert main(["photos", "fix", str(src), str(out), "--json", "--workers", "1"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.strip()]
    assert [x["status"] for x in lines] == [FIXED]
    shutil.copyfile(group_faces[0], src / f"{ksh(2)}.jpg")
    assert main(["photos", "fix", str(src), str(out), "--workers", "2"]) == 1
    assert main(["photos", "fix", str(src), str(src / "out")]) == 2
    assert not (src / "out").exists()
    assert main(["photos", "fix", str(src), str(out), "--roster", str(tmp_path / "missing.csv")]) == 2


def test_workers_give_the_same_results(run, pipeline, profile, tmp_path):
    report = fix_folder(run.src, tmp_path / "out2", pipeline, profile, workers=2)
    one = [(r.source, r.ksh, r.status, [x.code for x in r.reasons], r.output, r.quality) for r in run.report.results]
    two = [(r.source, r.ksh, r.status, [x.code for x in r.reasons], r.output, r.quality) for r in report.results]
    assert one == two
    for name in report.zipped:
        assert (tmp_path / "out2" / name).read_bytes() == (run.out / name).read_bytes()


def test_hostile_file_names_do_not_break_the_reports(tmp_path, pipeline, profile):
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    (src / "=cmd|calc\x01\x0b.jpg").write_bytes(b"not an image")
    report = fix_folder(src, out, pipeline, profile)
    assert len(report.results) == 1
    from openpyxl import load_workbook

    wb = load_workbook(out / "fix_report.xlsx", read_only=True)
    name = list(wb.active.iter_rows(values_only=True))[1][0]
    assert name.startswith("'=") and "\x01" not in name
