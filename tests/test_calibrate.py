"""Calibration (issue 8): metrics with known answers, duplicate arithmetic, pair building, the CLI end to end."""

from __future__ import annotations

import datetime as dt
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy import optimize, stats

from verifier.calibrate.metrics import (
    eer_sorted,
    equal_error_rate,
    fnmr_at_fmr,
    identity_bootstrap,
    needed_impostor_pairs,
    normal_cdf,
    probit,
    standard_statistic,
)
from verifier.calibrate.pairs import all_pairs, pairs_from_identity_folders, read_pairs_csv
from verifier.calibrate.thresholds import (
    TailModel,
    duplicate_arithmetic,
    fit_gpd,
    fit_normal,
    pairs_per_sweep,
    quality_aware_decision,
    recommend_accept,
    recommend_reject_fnmr,
    review_band,
    gpd_duplicate_intervals,
    tail_models,
)
from verifier.common.reasons import VerifierError
from verifier.core.results import Decision, Thresholds


def test_eer_of_two_unit_normals_one_apart():
    rng = np.random.default_rng(1)
    gen, imp = rng.normal(1, 1, 200_000), rng.normal(0, 1, 200_000)
    e = equal_error_rate(gen, imp)
    assert abs(e.eer - stats.norm.cdf(-0.5)) < 0.004
    assert abs(e.threshold - 0.5) < 0.02


def test_fnmr_at_fmr_matches_the_normal_quantiles():
    rng = np.random.default_rng(2)
    gen, imp = rng.normal(1, 1, 200_000), rng.normal(0, 1, 200_000)
    op = fnmr_at_fmr(gen, imp, 1e-2)
    assert op.supported and op.fmr <= 1e-2
    assert abs(op.threshold - stats.norm.isf(1e-2)) < 0.03
    assert abs(op.fnmr - stats.norm.cdf(stats.norm.isf(1e-2) - 1)) < 0.01


def test_small_impostor_samples_are_marked_unsupported():
    op = fnmr_at_fmr(np.array([0.8, 0.9]), np.linspace(-0.2, 0.3, 262), 1e-2)
    assert not op.supported and op.needed_impostor == 300 and "not supported" in op.note
    assert needed_impostor_pairs(1e-3) == 3000 and needed_impostor_pairs(1e-4) == 30000


def test_separated_scores_give_zero_eer_with_the_threshold_in_the_gap():
    e = equal_error_rate(np.array([0.5, 0.6, 0.7]), np.array([0.1, 0.2, 0.3]))
    assert e.eer == 0.0 and 0.3 < e.threshold < 0.5


def test_probit_inverts_the_normal_cdf():
    p = np.array([1e-6, 1e-3, 0.02, 0.5, 0.9, 0.999])
    assert np.allclose(probit(p), stats.norm.ppf(p), rtol=1e-8, atol=1e-8)
    assert np.allclose(normal_cdf(probit(p)), p, rtol=1e-7)


def _identity_sample(seed: int, n_id: int = 60, per_id: int = 4, effect: float = 0.5):
    """Genuine scores share a per-person offset (correlated pairs); impostors are independent."""
    rng = np.random.default_rng(seed)
    ids = np.repeat(np.arange(n_id), per_id)
    pairs = all_pairs([Path(f"{i}.jpg") for i in range(ids.size)], [str(i) for i in ids], "synthetic")
    same = pairs.same
    offset = rng.normal(0, effect, n_id)
    scores = np.where(same, 1 + offset[ids[pairs.idx_a]] + rng.normal(0, 1, same.size), rng.normal(0, 1, same.size))
    return scores, same, ids[pairs.idx_a], ids[pairs.idx_b]


def test_identity_bootstrap_interval_contains_the_true_eer():
    sd_gen = math.sqrt(1 + 0.5**2)
    t = optimize.brentq(lambda x: stats.norm.cdf((x - 1) / sd_gen) - stats.norm.sf(x), -3, 3)
    truth = stats.norm.sf(t)
    covered = 0

    def only_eer(gen, imp):
        return {"eer": eer_sorted(gen, imp).eer}

    for seed in range(12):
        scores, same, ia, ib = _identity_sample(seed)
        ci = identity_bootstrap(scores[same], ia[same], scores[~same], ia[~same], ib[~same], only_eer, n_boot=100, seed=seed)
        eer = ci["eer"]
        assert eer.low < eer.estimate < eer.high and eer.replicates == 100
        covered += eer.low <= truth <= eer.high
    assert covered >= 10, covered  # a 95 % interval: about 11 of 12 samples


def test_standard_statistic_names_every_target():
    scores, same, ia, ib = _identity_sample(0, n_id=20)
    ci = identity_bootstrap(scores[same], ia[same], scores[~same], ia[~same], ib[~same], standard_statistic((1e-2, 1e-3)), n_boot=20)
    assert {"eer", "eer_threshold", "fnmr@0.01", "threshold@0.01", "fnmr@0.001", "threshold@0.001"} <= set(ci)


def test_duplicate_arithmetic_for_a_known_normal_tail():
    model = TailModel("normal", 1000, mean=0.1, sd=0.1)
    a = duplicate_arithmetic([model], 100_000, 1.0, current=0.5)
    assert a.pairs == pairs_per_sweep(100_000) == 4_999_950_000
    assert a.per_pair_fmr == pytest.approx(1 / 4_999_950_000)
    exact = 0.1 + 0.1 * stats.norm.isf(1 / 4_999_950_000)
    assert exact <= a.threshold < exact + 0.001  # rounded up to 0.001
    assert a.expected_at_threshold <= 1.0
    assert a.expected_at_current == pytest.approx(a.pairs * stats.norm.sf(4.0))
    assert any("N(N-1)/2" in line for line in a.lines())
    sizes = [row["gallery_size"] for row in a.table]
    thresholds = [row["threshold"] for row in a.table]
    assert sizes == sorted(sizes) and thresholds == sorted(thresholds)


def test_gpd_tail_needs_enough_exceedances_and_tracks_a_normal_tail():
    rng = np.random.default_rng(4)
    assert fit_gpd(rng.normal(0.1, 0.1, 262)) is None
    scores = rng.normal(0.1, 0.1, 50_000)
    gpd, normal = fit_gpd(scores), fit_normal(scores)
    assert gpd is not None and gpd.kind == "gpd"
    for p in (1e-3, 1e-5):
        assert abs(gpd.isf(p) - normal.isf(p)) < 0.05
    a = duplicate_arithmetic([normal, gpd], 10_000, 1.0, current=0.5)
    assert set(a.per_model) == {"normal", "gpd"} and a.threshold >= max(a.per_model.values()) - 1e-9


def test_reject_is_set_from_the_genuine_distribution_at_the_target_fnmr():
    rng = np.random.default_rng(7)
    genuine = rng.normal(0.65, 0.1, 20_000)
    r = recommend_reject_fnmr(genuine, 1e-3, accept=0.5)
    assert r.basis == "measured" and (genuine < r.value).mean() <= 1e-3
    assert (genuine < r.value + 0.002).mean() > 0.5e-3  # the highest such threshold, not just any low one
    capped = recommend_reject_fnmr(genuine, 0.2, accept=0.5)
    assert capped.value == 0.5  # never above accept
    few = recommend_reject_fnmr(genuine[:300], 1e-3, accept=0.5)
    assert few.basis == "lowest-supported" and (genuine[:300] < few.value).mean() <= 3 / 300 and "3,000" in few.why_en


def test_accept_falls_back_to_the_lowest_supported_fmr_or_the_tail_model():
    rng = np.random.default_rng(8)
    imp, gen = rng.normal(0.1, 0.1, 50_000), rng.normal(0.7, 0.1, 5_000)
    measured = recommend_accept(gen, imp, 1e-4, 0.363, tail_models(imp))
    assert measured.basis == "measured" and (imp >= measured.value).mean() <= 1e-4
    strict = recommend_accept(gen, imp, 1e-6, 0.363, tail_models(imp))
    assert strict.basis == "lowest-supported" and (imp >= strict.value).mean() <= 3 / imp.size
    assert strict.value >= measured.value and strict.value >= min(m.isf(1e-6) for m in tail_models(imp)) - 0.001


def test_review_band_counts_the_reviewers_workload():
    th = Thresholds(0.5, 0.2, 0.7)
    band = review_band(np.array([0.1, 0.3, 0.6, 0.9]), np.array([0.0, 0.1, 0.25, 0.55]), th)
    assert (band.genuine_match, band.genuine_review, band.genuine_mismatch) == (0.5, 0.25, 0.25)
    assert (band.impostor_match, band.impostor_review, band.impostor_mismatch) == (0.25, 0.25, 0.5)
    assert band.reviews_per_1000_graduates == 250


def test_gpd_duplicate_intervals_bracket_the_estimate():
    scores = np.random.default_rng(9).normal(0.1, 0.1, 200_000)
    ci = gpd_duplicate_intervals(scores, 1.0, sizes=(10_000, 1_000_000), n_boot=30)
    gpd = fit_gpd(scores)
    for n, (lo, hi) in ci.items():
        est = gpd.isf(1.0 / pairs_per_sweep(n))
        assert lo <= est <= hi and hi - lo < 0.2
    assert ci[1_000_000][0] > ci[10_000][0]  # a larger gallery needs a stricter threshold


def test_quality_aware_decision_sends_poor_photos_to_review():
    th = Thresholds(0.363, 0.28, 0.665)
    assert quality_aware_decision(0.1, th, quality_ok=True) is Decision.MISMATCH
    assert quality_aware_decision(0.1, th, quality_ok=False) is Decision.REVIEW
    assert quality_aware_decision(0.5, th, quality_ok=False) is Decision.REVIEW  # no pass on a doubtful photo
    assert quality_aware_decision(0.9, th, quality_ok=False) is Decision.MATCH  # above the strict threshold


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_pairs_from_folder_per_identity(tmp_path):
    for name in ("ann/1.jpg", "ann/2.jpg", "ann/3.png", "bo/1.jpg", "cy/a.jpg", "cy/notes.txt"):
        _touch(tmp_path / name)
    ps = pairs_from_identity_folders(tmp_path)
    assert len(ps.images) == 5 and ps.n_identities == 3
    assert ps.n_genuine == 3 and ps.n_impostor == 10 - 3
    assert "folder-per-identity" in ps.notes[0]


def test_pairs_from_identity_file_names_ignore_subfolders(tmp_path):
    for name in ("obama_1.jpg", "obama_2.jpg", "obama_partial_face.jpg", "biden_1.jpg", "multi/group.jpg"):
        _touch(tmp_path / name)
    ps = pairs_from_identity_folders(tmp_path)
    assert sorted(set(ps.identities)) == ["biden", "obama"]
    assert ps.n_genuine == 3 and ps.n_impostor == 3
    assert any("multi" in n for n in ps.notes)
    sampled = pairs_from_identity_folders(tmp_path, max_impostor_pairs=1)
    assert sampled.n_genuine == 3 and sampled.n_impostor == 1


def test_pairs_csv_derives_identities_from_genuine_rows(tmp_path):
    csv = tmp_path / "PAIRS.csv"
    csv.write_text("file_a,file_b,same\na1.jpg,a2.jpg,1\na2.jpg,a3.jpg,1\nb1.jpg,a1.jpg,0\nc1.jpg,b1.jpg,0\n", encoding="utf-8")
    ps = read_pairs_csv(csv)
    assert [p.name for p in ps.images] == ["a1.jpg", "a2.jpg", "a3.jpg", "b1.jpg", "c1.jpg"]
    ids = ps.identities
    assert ids[0] == ids[1] == ids[2] and len({ids[0], ids[3], ids[4]}) == 3
    assert ps.n_genuine == 2 and ps.n_impostor == 2
    assert ps.images[0] == tmp_path / "a1.jpg"


def test_pairs_csv_rejects_contradictions_and_bad_flags(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("file_a,file_b,same\na.jpg,b.jpg,1\nb.jpg,a.jpg,0\n", encoding="utf-8")
    with pytest.raises(VerifierError, match="contradict"):
        read_pairs_csv(bad)
    bad.write_text("file_a,file_b,same\na.jpg,b.jpg,maybe\n", encoding="utf-8")
    with pytest.raises(VerifierError):
        read_pairs_csv(bad)
    bad.write_text("file_a,file_b\na.jpg,b.jpg\n", encoding="utf-8")
    with pytest.raises(VerifierError):
        read_pairs_csv(bad)
    ids = tmp_path / "ids.csv"
    ids.write_text("file_a,file_b,same,id_a,id_b\na.jpg,b.jpg,0,ann,bo\na.jpg,c.jpg,0,ann,cy\n", encoding="utf-8")
    assert read_pairs_csv(ids).identities == ["ann", "bo", "cy"]


@pytest.fixture(scope="module")
def calibrated(faces, cache_dir, tmp_path_factory):
    """One real run on the face set: quality study, dlib when installed, --write-pack on a copy of the manifest."""
    from verifier.cli.main import main
    from verifier.core.packs import load_pack

    installed = load_pack("sface-yunet-int8").path
    before = installed.read_bytes()
    work = tmp_path_factory.mktemp("calibrate")
    manifest = work / "sface-yunet-int8.json"
    shutil.copyfile(installed, manifest)
    out = work / "out"
    mp = pytest.MonkeyPatch()
    mp.setenv("VERIFIER_CACHE_DIR", str(cache_dir))
    try:
        code = main(["calibrate", "--identity-folders", str(faces), "--out", str(out), "--manifest", str(manifest),
                     "--quality-study", "--write-pack", "--bootstrap", "200"])
    finally:
        mp.undo()
    assert code == 0
    assert installed.read_bytes() == before, "the installed manifest must not change"
    return out, manifest, json.loads(installed.read_text(encoding="utf-8"))


@pytest.mark.slow
def test_cli_writes_plots_reports_and_metrics(calibrated):
    out, _, _ = calibrated
    for name in ("roc.png", "det.png", "histogram.png", "quality.png", "quality_levels.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    md = (out / "report.md").read_text(encoding="utf-8")
    page = (out / "report.html").read_text(encoding="utf-8")
    for text in (md, page):
        assert "等错误率" in text and "EER" in text
        assert "clapton" in text and "N(N-1)/2" in text and "smoke set" in text
    assert page.startswith("<!DOCTYPE html>") and "<img src=\"roc.png\"" in page
    m = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    own = m["systems"][0]
    assert own["genuine"] == 38 and own["impostor"] == 262 and own["eer"] == 0.0
    assert all(not op["supported"] for op in own["operating_points"])
    # 262 impostor pairs cannot measure FMR 1e-5: the lowest supported FMR (3/262) or the tail model, whichever is stricter
    assert m["recommended"]["accept"]["basis"] == "lowest-supported"
    assert m["recommended"]["accept"]["value"] >= own["highest_impostor"]
    assert m["review_band"]["recommended"]["impostor_match"] == 0.0
    assert own["ten_fold_accuracy"]["mean"] > 0.9
    assert m["intervals"]["eer"]["low"] <= m["intervals"]["eer"]["high"]


@pytest.mark.slow
def test_write_pack_updates_only_the_copy_and_keeps_the_rest(calibrated):
    out, manifest, original = calibrated
    m = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    doc = json.loads(manifest.read_text(encoding="utf-8"))
    th = doc["thresholds"]
    for name in ("accept", "reject", "duplicate"):
        assert th[name] == m["recommended"][name]["value"]
    assert th["reject"] <= th["accept"] <= th["duplicate"]
    assert th["source"]["date"] == dt.date.today().isoformat()
    assert "25 images of 10 people" in th["source"]["data"] and "verifier calibrate" in th["source"]["method"]
    assert th["source"]["previous"]["accept"] == original["thresholds"]["accept"]
    assert {k: v for k, v in doc.items() if k != "thresholds"} == {k: v for k, v in original.items() if k != "thresholds"}
    assert list(doc) == list(original)


@pytest.mark.slow
def test_quality_study_sends_low_quality_genuine_pairs_to_review(calibrated):
    out, _, _ = calibrated
    m = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    band = m["band_check"]
    assert band["match"] + band["review"] + band["mismatch"] > 1000
    assert band["review"] > 0
    # Reject is set at the lowest FNMR these ~1,100 genuine pairs support (3/n): at most that share of the pairs whose
    # photos pass the quality floor fall below it; the rest below reject have a photo under the floor (routed to review).
    total = band["match"] + band["review"] + band["mismatch"]
    assert band["mismatch"] - band["routed_by_quality"] <= 3
    assert all(p["level"] != "mild" or p["below_floor"] for p in band["failing"])
    assert band["mismatch"] <= 0.02 * total
    assert band["impostor_review"] <= 0.02 * band["impostor_pairs"]
    summary = {(r["degradation"], r["level"]): r for r in m["quality_study"]["summary"]}
    assert summary[("blur", "severe")]["mean_drop"] > summary[("blur", "mild")]["mean_drop"]


@pytest.fixture(scope="module")
def id_card_calibrated(faces, cache_dir, tmp_path_factory):
    """`calibrate --id-card` on the face set, --write-pack on a copy of the manifest."""
    from verifier.cli.main import main
    from verifier.core.packs import load_pack

    installed = load_pack("sface-yunet-int8").path
    work = tmp_path_factory.mktemp("calibrate-id")
    manifest = work / "sface-yunet-int8.json"
    shutil.copyfile(installed, manifest)
    mp = pytest.MonkeyPatch()
    mp.setenv("VERIFIER_CACHE_DIR", str(cache_dir))
    try:
        code = main(["calibrate", "--id-card", "--identity-folders", str(faces), "--out", str(work / "out"), "--manifest", str(manifest),
                     "--write-pack", "--bootstrap", "50", "--no-dlib"])
    finally:
        mp.undo()
    assert code == 0
    return work / "out", manifest, json.loads(installed.read_text(encoding="utf-8"))


def test_id_card_calibration_scores_pairs_at_both_sizes_and_writes_only_thresholds_id_card(id_card_calibrated):
    out, manifest, original = id_card_calibrated
    m = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert m["systems"][0]["name"].endswith("admission vs ID card")
    assert m["systems"][0]["genuine"] == 38 and m["systems"][0]["impostor"] == 262  # every pair of the face set, once
    fig = m["id_card"]
    assert set(fig["tar_at_far"]) == set(fig["full_size_tar_at_far"]) and 0 <= fig["eer"] <= 1 and 0 <= fig["full_size_eer"] <= 1
    th = json.loads(manifest.read_text(encoding="utf-8"))["thresholds"]
    assert {k: th[k] for k in ("accept", "reject", "duplicate")} == {k: original["thresholds"][k] for k in ("accept", "reject", "duplicate")}
    assert th["source"] == original["thresholds"]["source"]
    card = th["id_card"]
    assert card["accept"] == m["recommended"]["accept"]["value"] and card["reject"] == m["recommended"]["reject"]["value"]
    assert card["reject"] <= card["accept"]
    assert "102x126 ID-card BMP" in card["source"]["data"] and card["source"]["figures"]["full_size_tar_at_far"]


def test_id_card_renderings_are_what_offices_upload(pipeline, single_faces):
    """The admission side meets the admission spec (JPEG <= 50 KB, 295x413); the ID-card side is a 102x126 BMP."""
    from verifier.calibrate.id_card import admission_bytes, id_card_bytes
    from verifier.photos.profiles import load_profile
    from verifier.photos.spec import check_spec

    src = single_faces[0]
    analysis, pixels = pipeline.analyze(src), pipeline.decode(src).pixels
    adm, card = admission_bytes(pixels, analysis), id_card_bytes(pixels, analysis)
    assert [r.code for r in check_spec(adm, "20260000000001.jpg", load_profile("admission"))[0]] == []
    reasons, metrics = check_spec(card, "20260000000001.bmp", load_profile("id_card"))
    assert reasons == [] and (metrics["format"], metrics["width"], metrics["height"]) == ("bmp", 102, 126)


def test_committed_id_card_thresholds_are_calibrated():
    """The default pack carries thresholds.id_card from a calibration run (its source names the data and the date)."""
    from verifier.core.packs import load_pack

    pack = load_pack("sface-yunet-int8")
    t = pack.thresholds_for("id_card")
    src = pack.raw["thresholds"]["id_card"]["source"]
    assert t.reject < t.accept and "lfw-gray" in src["data"] and src["figures"]["pairs"]["impostor"] >= 1_000_000
    assert t.duplicate == pack.thresholds.duplicate  # a sweep's threshold is the pack's, whatever the probe
