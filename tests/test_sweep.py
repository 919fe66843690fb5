"""The duplicate sweep end to end: real models, real SQLite store, ID photos cut from the face set."""

from __future__ import annotations

import csv
import os
import stat
import random
from pathlib import Path

import numpy as np
import pytest
from imaging import encode_jpeg
from openpyxl import load_workbook
from sqlalchemy import select

from verifier.photos.framing import Framing, frame_face
from verifier.sweep.index import FaceIndex, choose_params
from verifier.demo.cohort import _vary
from verifier.common.settings import Settings
from verifier.store import cases
from verifier.store.connect import open_database
from verifier.store.models import DuplicateCandidate, ReviewCase, Student
from verifier.store.photos import add_photo
from verifier.store.photostore import PhotoStore
from verifier.store.runs import latest_runs
from verifier.store.schema import upgrade
from verifier.core.packs import load_pack
from verifier.sweep.runner import Sweep, SweepOptions, case_members

# Student number -> (admission source, graduation source or None). Sources are face-set stems.
# 1 and 2: one face (kit_harington 1 and 3 score ~0.8) under two students: a planted duplicate.
# 3, 4, 5: obama 1, 3 and 6 (pairwise >= 0.83): three students sharing one face, one group.
# 6: the same photo framed as admission and graduation photo: a student's own pair, never a duplicate.
# 7..12: one person each, nobody else shares their face.
PLAN = {
    1: ("kit_harington_1", None),
    2: ("kit_harington_3", None),
    3: ("obama_1", None),
    4: ("obama_3", None),
    5: ("obama_6_small", None),
    6: ("rose_leslie_1", "rose_leslie_1"),
    7: ("adams_1", None),
    8: ("biden_1", None),
    9: ("carell_1", None),
    10: ("lennon_1", None),
    11: ("lin_manuel_miranda_1", None),
    12: ("clapton_1", None),
}
KSH = {n: f"2021{n:010d}" for n in PLAN}
DUPLICATE = load_pack("sface-yunet-int8").thresholds.duplicate
ADMISSION = Framing(295, 413)


@pytest.fixture(scope="module")
def sources(pipeline, single_faces):
    """Decoded face-set photos with their chosen face, by file stem."""
    out = {}
    for path in single_faces:
        a = pipeline.analyze(path)
        if a.face is not None:
            out[path.stem] = (pipeline.decode(path).pixels, a.face)
    return out


def portrait(sources, stem: str, framing: Framing = ADMISSION, seed: int | None = None) -> bytes:
    """A JPEG ID photo of a face-set picture; with a seed, a jittered crop (new bytes, same face)."""
    image, face = sources[stem]
    pixels = frame_face(image, face, framing) if seed is None else _vary(image, face, framing, random.Random(seed))
    return encode_jpeg(pixels, 85)


@pytest.fixture
def home(tmp_path, cache_dir) -> Settings:
    settings = Settings(home=tmp_path / "home", cache_dir=cache_dir, id_key="test-key-0123456789abcdef")
    upgrade(settings.resolve_db_url())
    return settings


def populate(settings: Settings, sources) -> dict[int, int]:
    """Students 1..12 with their photos stored unchecked (the sweep embeds them); returns student number -> id."""
    db = open_database(settings.resolve_db_url())
    store = PhotoStore.for_home(settings.home)

    def write(s) -> dict[int, int]:
        ids = {}
        for n, (adm, grad) in PLAN.items():
            st = Student(ksh=KSH[n], name=f"学生{n}", student_no=f"S{n:04d}", college="文学院")
            s.add(st)
            s.flush()
            add_photo(s, store, st, "admission", portrait(sources, adm), source=f"{KSH[n]}.jpg")
            if grad:
                add_photo(s, store, st, "graduation", portrait(sources, grad, Framing(480, 640)), source=f"{KSH[n]}.jpg")
            ids[n] = st.id
        return ids

    try:
        return db.transaction(write)
    finally:
        db.dispose()


def sweep(settings: Settings, out: Path, **kw) -> object:
    return Sweep(SweepOptions(out_dir=out, workers=1, **kw), settings).run()


def student_pairs(settings: Settings) -> set[frozenset[int]]:
    db = open_database(settings.resolve_db_url())
    try:
        with db.session() as s:
            return {frozenset((c.student_a_id, c.student_b_id)) for c in s.scalars(select(DuplicateCandidate))}
    finally:
        db.dispose()


def duplicate_cases(settings: Settings) -> list[tuple[ReviewCase, set[int]]]:
    """Every duplicate_face case with the set of students its candidates cover."""
    db = open_database(settings.resolve_db_url())
    try:
        with db.session() as s:
            rows = list(s.scalars(select(ReviewCase).where(ReviewCase.case_type == "duplicate_face").order_by(ReviewCase.id)))
            members = case_members(s, [c.id for c in rows])
            cands = {c.id: c for c in s.scalars(select(DuplicateCandidate))}
            return [(c, {x for m in members[c.id] for x in (cands[m].student_a_id, cands[m].student_b_id)}) for c in rows]
    finally:
        db.dispose()


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def resolve(settings: Settings, case_id: int, outcome: str = "dismissed") -> None:
    db = open_database(settings.resolve_db_url())
    try:
        db.transaction(lambda s: cases.start_review(s, case_id, "reviewer"))
        db.transaction(lambda s: cases.resolve(s, case_id, outcome, "reviewer", "checked in person"))
    finally:
        db.dispose()


def test_planted_duplicates_found_group_of_three_one_case_own_pair_not(home, sources, tmp_path):
    ids = populate(home, sources)
    summary = sweep(home, tmp_path / "out")
    assert summary.mode == "full" and summary.index == "flat (exact)"
    assert summary.threshold == DUPLICATE and "thresholds.duplicate" in summary.threshold_source
    assert summary.counts["embed_embedded"] == 13 and summary.counts["photos"] == 13
    assert summary.counts["same_student_pairs"] == 1  # student 6's own admission/graduation pair, dropped
    s = {n: ids[n] for n in PLAN}
    assert student_pairs(home) == {frozenset((s[1], s[2])), frozenset((s[3], s[4])), frozenset((s[3], s[5])), frozenset((s[4], s[5]))}
    found = duplicate_cases(home)
    assert sorted(map(len, (m for _, m in found))) == [2, 3]
    assert {frozenset(m) for _, m in found} == {frozenset((s[1], s[2])), frozenset((s[3], s[4], s[5]))}
    assert summary.counts["groups"] == 2 and summary.counts["groups_3plus"] == 1 and summary.counts["cases_opened"] == 2

    rows = read_csv(tmp_path / "out" / "report.csv")
    assert len(rows) == 4 and {r["status"] for r in rows} == {"new"}
    assert all(float(r["score"]) >= DUPLICATE for r in rows)
    sheet = load_workbook(tmp_path / "out" / "report.xlsx").worksheets[0]
    assert [c.value for c in next(sheet.iter_rows(max_row=1))][:4] == ["组号", "案件号", "状态", "相似度"]
    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert page.count("data:image/jpeg;base64,") == 8 and KSH[1] in page

    db = open_database(home.resolve_db_url())
    with db.session() as session:
        run = latest_runs(session, "sweep", 1)[0]
    db.dispose()
    assert run.status == "completed" and run.ended_at is not None
    for key in ("photos", "new_photos", "pairs", "groups", "index", "threshold", "threshold_source"):
        assert key in run.counts, key
    assert run.parameters["threshold"] == DUPLICATE

    again = sweep(home, tmp_path / "out2")
    assert again.mode == "incremental" and again.counts["new_photos"] == 0 and again.counts["pairs"] == 0
    assert len(duplicate_cases(home)) == 2


def test_resolved_pair_not_raised_again_until_a_photo_changes(home, sources, tmp_path):
    ids = populate(home, sources)
    sweep(home, tmp_path / "o1")
    pair_case = next(c for c, m in duplicate_cases(home) if m == {ids[1], ids[2]})
    resolve(home, pair_case.id)

    full = sweep(home, tmp_path / "o2", full=True)
    assert full.counts["pairs"] == 4 and full.counts["adjudicated_pairs"] == 1 and full.counts["cases_opened"] == 0
    statuses = {r["ksh_a"] + r["ksh_b"]: r["status"] for r in read_csv(tmp_path / "o2" / "report.csv")}
    assert statuses[KSH[1] + KSH[2]] == "adjudicated"
    assert len(duplicate_cases(home)) == 2

    # Student 1 sends a new admission photo (same face, new picture): the pair is checked and raised again.
    db = open_database(home.resolve_db_url())
    store = PhotoStore.for_home(home.home)
    db.transaction(lambda s: add_photo(s, store, s.get(Student, ids[1]), "admission", portrait(sources, "kit_harington_1", seed=7)))
    db.dispose()
    inc = sweep(home, tmp_path / "o3")
    assert inc.mode == "incremental" and inc.counts["new_photos"] == 1 and inc.counts["removed_photos"] == 1
    assert inc.counts["new_pairs"] == 1 and inc.counts["cases_opened"] == 1 and inc.counts["adjudicated_pairs"] == 0
    open_cases = [(c, m) for c, m in duplicate_cases(home) if c.state != "resolved"]
    assert {frozenset(m) for _, m in open_cases} == {frozenset((ids[1], ids[2])), frozenset((ids[3], ids[4], ids[5]))}


def test_new_student_joins_an_open_group_case(home, sources, tmp_path):
    ids = populate(home, sources)
    sweep(home, tmp_path / "o1")
    db = open_database(home.resolve_db_url())
    store = PhotoStore.for_home(home.home)

    def add(s):
        st = Student(ksh="20210000000099", name="学生99", student_no="S0099", college="法学院")
        s.add(st)
        s.flush()
        add_photo(s, store, st, "graduation", portrait(sources, "obama_1", Framing(480, 640), seed=3))
        return st.id

    new_id = db.transaction(add)
    db.dispose()
    inc = sweep(home, tmp_path / "o2")
    assert inc.counts["new_photos"] == 1 and inc.counts["new_pairs"] == 3
    assert inc.counts["cases_opened"] == 0 and inc.counts["cases_grown"] == 1
    groups = [m for _, m in duplicate_cases(home)]
    assert {ids[3], ids[4], ids[5], new_id} in groups and len(groups) == 2


def test_approximate_sweep_agrees_with_exact_on_the_face_set(home, sources, tmp_path):
    populate(home, sources)
    exact = sweep(home, tmp_path / "e", exact=True)
    approx = sweep(home, tmp_path / "a", full=True, force_approximate=True)
    assert approx.index.startswith("ivf") and exact.index.startswith("flat")
    assert approx.counts["pairs"] == exact.counts["pairs"] == 4
    assert student_pairs(home) and len(duplicate_cases(home)) == 2


def test_ivf_equals_exact_on_face_embeddings_among_random_vectors(pipeline, single_faces, id_photos):
    """Face-set embeddings (originals and ID crops) mixed into 3,000 random unit vectors: IVF finds every exact pair."""
    faces = [a.embedding for a in (pipeline.analyze(p) for p in [*single_faces, *id_photos.values()]) if a.embedding is not None]
    rng = np.random.default_rng(5)
    noise = rng.standard_normal((3000, len(faces[0]))).astype(np.float32)
    vectors = np.vstack([np.asarray(faces, np.float32), noise])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = rng.permutation(len(vectors)).astype(np.int64) + 1
    exact = FaceIndex.build(ids, ids, vectors, choose_params(len(ids))).all_pairs(DUPLICATE)
    params = choose_params(len(ids), force_approximate=True)
    approx = FaceIndex.build(ids, ids, vectors, params).all_pairs(DUPLICATE)
    assert params.kind == "ivf" and params.nprobe < params.nlist
    assert len(exact) > 20
    assert set(approx.keys().tolist()) == set(exact.keys().tolist())


def test_index_persists_and_updates_incrementally(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4000, 128)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    for a, b in ((3, 10), (20, 3500), (3100, 3900)):  # near-duplicates among old rows, old-new and new-new
        x[b] = 0.85 * x[a] + 0.5 * x[b]
        x[b] /= np.linalg.norm(x[b])
    ids = np.arange(4000, dtype=np.int64) * 2 + 1
    for force in (False, True):
        params = choose_params(4000, force_approximate=force)
        index = FaceIndex.build(ids[:3000], ids[:3000], x[:3000], params)
        index.save(tmp_path / "ix", {"pack": "p"})
        loaded = FaceIndex.load(tmp_path / "ix")
        assert loaded is not None and loaded.meta["pack"] == "p" and loaded.n == 3000 and loaded.params == params
        keep = ids[5:3000]  # photos 0..4 replaced or purged
        is_new = loaded.update(keep, ids[3000:], ids[3000:], x[3000:])
        assert loaded.n == 3995 and int(is_new.sum()) == 1000
        full = FaceIndex.build(ids[5:], ids[5:], x[5:], params).all_pairs(0.6)
        full_keys = {(int(ids[5:][a]), int(ids[5:][b])) for a, b in zip(full.a, full.b, strict=True)}
        inc = loaded.pairs_with(is_new, 0.6)
        inc_keys = {(int(loaded.ids[a]), int(loaded.ids[b])) for a, b in zip(inc.a, inc.b, strict=True)}
        assert inc_keys == {k for k in full_keys if k[0] >= ids[3000] or k[1] >= ids[3000]}
        assert len(inc_keys) >= 2 and (int(ids[20]), int(ids[3500])) in inc_keys
    (tmp_path / "ix" / "meta.json").write_text("{broken")
    assert FaceIndex.load(tmp_path / "ix") is None


def test_cli_import_sweep_and_last_run(home, sources, tmp_path, monkeypatch, capsys):
    from verifier.cli.main import main

    folder = tmp_path / "adm"
    folder.mkdir()
    for n in (1, 2, 7):
        (folder / f"{KSH[n]}.jpg").write_bytes(portrait(sources, PLAN[n][0]))
    (folder / "20219999999999.jpg").write_bytes(portrait(sources, "biden_1"))
    roster = tmp_path / "roster.csv"
    roster.write_text("考生号,姓名,学号,学院\n" + "".join(f"{KSH[n]},学生{n},S{n},文学院\n" for n in (1, 2, 7)), encoding="utf-8-sig")
    monkeypatch.setenv("VERIFIER_HOME", str(home.home))
    monkeypatch.setenv("VERIFIER_CACHE_DIR", str(home.cache_dir))
    monkeypatch.setenv("VERIFIER_ID_KEY", "test-key-0123456789abcdef")
    assert main(["photos", "import", str(folder), "--kind", "admission", "--roster", str(roster), "--workers", "1"]) == 1
    out = capsys.readouterr().out
    assert "RECON_NOT_ON_ROSTER" in out and "added 3" in out
    assert main(["photos", "import", str(folder), "--kind", "admission", "--workers", "1"]) == 1
    out = capsys.readouterr().out
    assert "unchanged 3" in out and "STORE_STUDENT_UNKNOWN" in out
    assert main(["sweep", "--out", str(tmp_path / "rep"), "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "pairs 1" in out and "cases opened 1" in out
    assert main(["runs", "last", "--kind", "sweep"]) == 0
    assert '"status": "completed"' in capsys.readouterr().out
    assert (tmp_path / "rep" / "report.xlsx").is_file()


def test_second_sweep_on_the_same_home_is_refused_while_one_runs(home, tmp_path):
    import fcntl
    import os

    from verifier.common.reasons import VerifierError

    (home.home / "index").mkdir(parents=True, exist_ok=True)
    fd = os.open(home.home / "index" / ".sweep.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        with pytest.raises(VerifierError) as err:
            sweep(home, tmp_path / "busy")
        assert err.value.reason.code == "SWEEP_ALREADY_RUNNING"
    finally:
        os.close(fd)
    with pytest.raises(VerifierError) as err:
        Sweep(SweepOptions(threshold=1.5), home)
    assert err.value.reason.code == "SWEEP_THRESHOLD_INVALID"


def _loose(root: Path) -> list[str]:
    """Everything under root that others could read: files not 0600, folders not 0700."""
    bad = []
    for p in [root, *root.rglob("*")]:
        mode = stat.S_IMODE(p.lstat().st_mode)
        want = 0o700 if p.is_dir() else 0o600
        if mode != want:
            bad.append(f"{oct(mode)} {p.relative_to(root)}")
    return bad


def test_sweep_writes_index_and_reports_private_even_into_folders_made_loose(home, sources):
    """The FAISS index (vectors.npy, ids.npy, students.npy, meta.json) and <home>/reports are 0600 / 0700.

    `<home>/reports` and `<home>/index` that an operator (mkdir -p) or an older version made 0755 are
    tightened: they hold face embeddings and names.
    """
    populate(home, sources)
    for name in ("reports", "index"):
        (home.home / name).mkdir(mode=0o755)
        os.chmod(home.home / name, 0o755)
    summary = Sweep(SweepOptions(workers=1), home).run()
    assert summary.out_dir is not None and summary.out_dir.parent == home.home / "reports"
    index_files = {p.name for p in (home.home / "index").rglob("*") if p.is_file()}
    assert {"vectors.npy", "ids.npy", "students.npy", "meta.json"} <= index_files, index_files
    assert not _loose(home.home / "index") and not _loose(home.home / "reports"), _loose(home.home)
