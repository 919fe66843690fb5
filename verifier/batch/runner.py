"""The batch comparison runner: roster in, every student decided, reports out.

Streaming and resumable: students are planned one at a time from the
roster and the store; only photos whose bytes (SHA-256) or pack are new go
to the workers (threads here, or Ray actors with `ray_address`); each result is committed in its own transaction,
so a killed run loses at most the chunks in flight, and the same command
resumes it. Reports are computed from the store at the end, which makes a
resumed run's reports equal an uninterrupted run's.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import signal
import stat
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from sqlalchemy import Row, select

from verifier.cluster.session import import_ray
from verifier.photos.checks import read_photo
from verifier.common.files import run_report_dir
from verifier.core.packs import load_pack
from verifier.common.parallel import chunked, map_chunks
from verifier.photos.profiles import Profile, load_profile
from verifier.common.reasons import VerifierError
from verifier.photos.roster import RosterLimits, RosterLoad, load_roster
from verifier.photos.roster import Student as RosterStudent
from verifier.common.settings import Settings, cpu_count
from verifier.store import embeddings
from verifier.store.cases import open_case
from verifier.store.comparisons import record_comparison
from verifier.store.db import Database
from verifier.store.connect import open_database
from verifier.store.models import Photo, Student
from verifier.store.photos import add_photo, current_photo, set_check_result
from verifier.store.photostore import PhotoStore, sha256_hex
from verifier.store.runs import finish_run, latest_runs, start_run, update_counts
from verifier.store.students import import_roster
from verifier.batch.decision import Outcome, PhotoFindings, StudentDecision, decide_student, spec_issues
from verifier.batch.pairing import GRADUATION, Pairing
from verifier.batch.report import BatchRow, write_reports
from verifier.batch.snapshot import BLOCK, Snapshot, load_snapshot
from verifier.batch.worker import PhotoJob, PhotoWork, StudentJob, init_worker, process_students
from verifier.batch.writer import StoreWriter

log = logging.getLogger(__name__)
T = TypeVar("T")

RUN_KIND = GRADUATION.run_kind
PHOTO_SUFFIXES = (".jpg", ".JPG", ".jpeg", ".JPEG", ".png", ".PNG", ".bmp", ".BMP")
STORE_DECISION = {
    StudentDecision.PASS: "match",
    StudentDecision.REVIEW: "review",
    StudentDecision.FAIL: "mismatch",
    StudentDecision.PHOTO_UNUSABLE: "unusable",
}
# Students written per transaction: a killed run loses at most these (and the chunks in flight).
COMMIT_EVERY = 8


@dataclass(frozen=True)
class BatchOptions:
    """Everything `verifier batch compare` (or `verifier intake check`) was asked to do.

    `graduation_dir` and `graduation_profile` are the probe photos' folder and profile: graduation photos, or
    ID-card photos with the INTAKE pairing (the profile then defaults to id_card).
    """

    roster: Path
    admission_dir: Path
    graduation_dir: Path
    out_dir: Path | None = None
    db_url: str | None = None
    workers: int | None = None
    pack_id: str | None = None
    graduation_key: str = "ksh"
    admission_profile: str = "admission"
    graduation_profile: str | None = None
    actor: str = "batch"
    pairing: Pairing = GRADUATION
    ray_address: str | None = None  # run the workers on this Ray cluster ("local": a loopback one); not part of the key

    @property
    def probe_profile(self) -> str:
        """The probe photos' profile: as given, else the built-in one of the probe's kind."""
        return self.graduation_profile or self.pairing.probe

    def key(self) -> str:
        """Identity of the job: the same command resumes the same run."""
        data = {
            "roster": str(self.roster.resolve()),
            "admission_dir": str(self.admission_dir.resolve()),
            "graduation_dir": str(self.graduation_dir.resolve()),
            "pack": self.pack_id,
            "graduation_key": self.graduation_key,
            "profiles": [self.admission_profile, self.probe_profile],
        }
        if self.pairing != GRADUATION:
            data["probe"] = self.pairing.probe
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class BatchSummary:
    """How a run went."""

    run_id: int
    resumed: bool
    students: int
    processed: int
    unchanged: int
    decisions: Counter = field(default_factory=Counter)
    reports: list[Path] = field(default_factory=list)
    out_dir: Path | None = None
    interrupted: bool = False
    seconds: float = 0.0


def first_then(items: Iterator[T]) -> Iterator[T] | None:
    """The same stream, or None when it is empty (so a run with nothing to do never loads the models)."""
    for first in items:
        return itertools.chain((first,), items)
    return None


def photo_files(folder: Path, stem: str) -> list[Path]:
    """Files named `<stem>.<photo suffix>` directly in a folder (no directory listing held in memory).

    One os.stat per suffix on plain strings: pathlib's joins and is_file cost ten times more, twice per student.
    """
    base = os.path.join(folder, stem)
    found = []
    for suffix in PHOTO_SUFFIXES:
        try:
            if stat.S_ISREG(os.stat(base + suffix).st_mode):
                found.append(Path(base + suffix))
        except (OSError, ValueError):
            continue
    return found


# A photo as the store gave it: an ORM row in a write transaction, a snapshot's column tuple otherwise.
StoredPhoto = Photo | Row[Any]


def findings_of(photo: StoredPhoto | None) -> PhotoFindings | None:
    """What the stored check found on a photo, for the decision."""
    return None if photo is None else PhotoFindings(photo.kind, tuple(photo.check_codes or ()))


class Progress:
    """A tqdm bar on a terminal, a plain log line every `every` seconds otherwise."""

    def __init__(self, total: int, every: float = 10.0, desc: str = GRADUATION.progress):
        self.total, self.done, self.every = total, 0, every
        self.start = self.last = time.monotonic()
        self.bar = None
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="人", desc=desc, file=sys.stderr)

    def update(self, n: int = 1) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            return
        now = time.monotonic()
        if now - self.last >= self.every or self.done == self.total:
            rate = self.done / max(now - self.start, 1e-9)
            eta = (self.total - self.done) / rate if rate > 0 else float("inf")
            print(f"batch: {self.done}/{self.total} students, {rate:.1f}/s, ETA {eta:.0f} s", file=sys.stderr, flush=True)
            self.last = now

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class BatchRunner:
    """One invocation of the batch comparison."""

    def __init__(self, options: BatchOptions, settings: Settings | None = None):
        self.opt = options
        self.pairing = options.pairing
        self.probe = options.pairing.probe
        self.settings = settings or Settings.from_env()
        self.pack = load_pack(options.pack_id or self.settings.pack)
        self.thresholds = self.pack.thresholds_for(self.probe)
        self.profiles: dict[str, Profile] = {
            "admission": load_profile(options.admission_profile),
            self.probe: load_profile(options.probe_profile),
        }
        self.store = PhotoStore.for_home(self.settings.home)
        self._stop = False
        self._lock = threading.Lock()

    def _graduation_stem(self, s: RosterStudent) -> str | None:
        return s.ksh if self.opt.graduation_key == "ksh" else (s.student_no or None)

    def _files(self, s: RosterStudent) -> dict[str, list[Path]]:
        grad = self._graduation_stem(s)
        return {
            "admission": photo_files(self.opt.admission_dir, s.ksh),
            self.probe: photo_files(self.opt.graduation_dir, grad) if grad else [],
        }

    def _blocks(self, db: Database, roster: RosterLoad) -> Iterator[tuple[Snapshot, list[RosterStudent]]]:
        """Roster students block by block, each block with one bulk read of its store state."""
        for block in chunked(roster.students.values(), BLOCK):
            kshs = [s.ksh for s in block]
            yield db.read(lambda session: load_snapshot(session, kshs, self.pack.id, self.probe)), block

    def _plan(self, db: Database, roster: RosterLoad, counters: Counter, progress: Progress) -> Iterator[StudentJob]:
        """Students whose photos or comparison still need work, with the bytes read for them; block by block."""
        for snap, block in self._blocks(db, roster):
            for s in block:
                student = snap.students.get(s.ksh)
                files = self._files(s)
                jobs: list[PhotoJob] = []
                photos: dict[str, StoredPhoto | None] = {}
                for kind, paths in files.items():
                    photos[kind] = cur = snap.photo(student, kind)
                    if not paths:
                        continue
                    try:
                        data = read_photo(paths[0])
                    except VerifierError:
                        continue  # reported from the folder at report time
                    done = (
                        cur is not None
                        and sha256_hex(data) in (cur.sha256, cur.origin_sha256)
                        and cur.check_status != "unchecked"
                        and (bool(findings_of(cur).blocking) or snap.vector(cur) is not None)
                    )
                    if not done:
                        jobs.append(PhotoJob(s.ksh, kind, paths[0].name, data, str(paths[0])))
                        photos[kind] = None
                adm, grad = photos.get("admission"), photos.get(self.probe)
                compared = snap.compared_pair(adm, grad)
                needs_compare = not compared and bool(files["admission"] or adm) and bool(files[self.probe] or grad)
                if jobs or needs_compare:
                    yield StudentJob(s.ksh, jobs)
                else:
                    with self._lock:
                        counters["unchanged"] += 1
                        progress.update()

    def _commit_and_count(self, db: Database, done: list[tuple[StudentJob, list[PhotoWork]]], run_id: int, counters: Counter, progress: Progress) -> None:
        """The writer thread's step: commit a group, advance the progress, and every ~500 students save the counts."""
        self._commit(db, done, run_id)
        with self._lock:
            counters["processed"] += len(done)
            progress.update(len(done))
            save = counters["processed"] % 500 < len(done)
            snapshot = dict(counters)
        if save:
            db.transaction(lambda s: update_counts(s, run_id, snapshot))

    def _commit(self, db: Database, done: list[tuple[StudentJob, list[PhotoWork]]], run_id: int) -> None:
        """Store a few students' photos, embeddings, comparisons and cases in one transaction.

        The photo files go first, all of them made durable together (PhotoStore.put_many), so a committed
        row never points at a file that a crash could lose.
        """
        pack_id = self.pack.id
        stored_bytes = [w.stored_bytes(pj.data) for job, works in done for pj, w in zip(job.photos, works, strict=True)]
        datas = [d for d in stored_bytes if d is not None]
        files = {f.sha256: f for f in self.store.put_many(datas)} if datas else {}

        def write_one(session, student: Student, job: StudentJob, works: list[PhotoWork]) -> None:
            photos: dict[str, Photo | None] = {}
            vectors: dict[str, np.ndarray | None] = {}
            for pj, work in zip(job.photos, works, strict=True):
                data = work.stored_bytes(pj.data)
                stored = files.get(sha256_hex(data)) if data is not None else None
                photo = add_photo(
                    session, self.store, student, pj.kind, data, pj.source, work.status, work.codes, work.width, work.height,
                    actor=self.opt.actor, stored=stored, origin_sha256=work.origin_sha256,
                )
                set_check_result(session, photo, work.status, work.codes, actor=self.opt.actor)
                if work.embedding is not None:
                    embeddings.put(session, photo.id, pack_id, work.embedding)
                photos[pj.kind], vectors[pj.kind] = photo, work.embedding
            for kind in ("admission", self.probe):
                if kind not in photos:
                    photos[kind] = current_photo(session, student.id, kind)
                    vectors[kind] = embeddings.get_or_none(session, photos[kind].id, pack_id) if photos[kind] else None
            adm, grad = photos["admission"], photos[self.probe]
            if adm is None or grad is None:
                return
            outcome = self._decide(adm, grad, vectors["admission"], vectors[self.probe])
            rec = record_comparison(session, adm, grad, pack_id, outcome.score, STORE_DECISION[outcome.decision], [r.code for r in outcome.reasons], run_id)
            case_type = self.pairing.cases.get(outcome.decision)
            if case_type and rec.created:
                open_case(session, case_type, "comparison", rec.comparison.id, student.id, actor=self.opt.actor)

        def write(session) -> None:
            kshs = [job.ksh for job, _ in done]
            students = {st.ksh: st for st in session.scalars(select(Student).where(Student.ksh.in_(kshs)))}
            for job, works in done:
                write_one(session, students[job.ksh], job, works)

        db.transaction(write)

    def _decide(self, adm: StoredPhoto | None, grad: StoredPhoto | None, a: np.ndarray | None, b: np.ndarray | None) -> Outcome:
        """The decision from stored photos, their checks and embeddings (the same at run and report time)."""
        score = float(a @ b) if adm is not None and grad is not None and a is not None and b is not None else None
        return decide_student(findings_of(adm), findings_of(grad), score, self.thresholds, self.probe)

    def _find_run(self, db: Database) -> tuple[int, bool]:
        key = self.opt.key()
        run_kind = self.pairing.run_kind
        for run in db.read(lambda session: latest_runs(session, run_kind, limit=50)):
            if run.parameters.get("key") == key and run.status in ("running", "interrupted"):
                return run.id, True
        params = {"key": key, "pack": self.pack.id, "workers": self.opt.workers, "graduation_key": self.opt.graduation_key}
        if self.opt.ray_address is not None:
            params["ray"] = self.opt.ray_address
        return db.transaction(lambda s: start_run(s, run_kind, params, actor=self.opt.actor).id), False

    def _out_dir(self) -> Path:
        folder = "batch" if self.pairing == GRADUATION else "intake"
        return run_report_dir(self.settings.home, self.opt.out_dir, folder, "BATCH_OUT_UNWRITABLE")

    def report_rows(self, db: Database, roster: RosterLoad) -> Iterator[BatchRow]:
        """One report row per roster student, from the store and the folders, block by block."""
        for snap, block in self._blocks(db, roster):
            for s in block:
                student = snap.students.get(s.ksh)
                files = self._files(s)
                adm, grad = snap.photo(student, "admission"), snap.photo(student, self.probe)
                outcome = self._decide(adm, grad, snap.vector(adm), snap.vector(grad))
                reasons = [r.code for r in outcome.reasons]
                if outcome.decision is StudentDecision.MISSING_PHOTO:
                    unreadable = [self._read_error(files[k]) for k, p in (("admission", adm), (self.probe, grad)) if p is None and files[k]]
                    if unreadable:
                        outcome, reasons = Outcome(StudentDecision.PHOTO_UNUSABLE, None), unreadable
                issues = spec_issues([findings_of(adm), findings_of(grad)])
                issues += [f"{k}:BATCH_SEVERAL_FILES" for k, paths in files.items() if len(paths) > 1]
                yield BatchRow(
                    s.ksh, s.student_no or "", s.name, s.college or "", s.centre or "", outcome.decision, outcome.score, reasons, issues,
                    adm.sha256 if adm is not None and adm.file_path else None,
                    grad.sha256 if grad is not None and grad.file_path else None,
                    student.registration if student is not None else "pending",
                )

    @staticmethod
    def _read_error(paths: list[Path]) -> str:
        try:
            read_photo(paths[0])
        except VerifierError as exc:
            return exc.reason.code
        return "BATCH_NOT_PROCESSED"

    def _photo_bytes(self, sha: str | None) -> bytes | None:
        if sha is None:
            return None
        try:
            return self.store.read(sha)
        except (OSError, VerifierError):
            return None

    def request_stop(self, *_args) -> None:
        """First Ctrl-C: finish the photos in flight, then stop."""
        if self._stop:
            raise KeyboardInterrupt
        self._stop = True
        print("\n正在停止：完成处理中的照片后退出 / stopping after the photos in flight…", file=sys.stderr, flush=True)

    def run(self) -> BatchSummary:
        """Do the whole job; raise VerifierError when it cannot proceed."""
        t0 = time.monotonic()
        for folder in (self.opt.admission_dir, self.opt.graduation_dir):
            if not folder.is_dir():
                raise VerifierError("BATCH_FOLDER_MISSING", detail=str(folder))
        if self.opt.ray_address is not None:
            import_ray()  # say so before any work, even when nothing is left to compute
        roster = load_roster(self.opt.roster, limits=RosterLimits.from_settings(self.settings))
        out_dir = self._out_dir()
        db = open_database(self.opt.db_url, settings=self.settings)
        try:
            key = self.settings.id_key_bytes()
            db.transaction(lambda s: import_roster(s, roster, key, actor=self.opt.actor))
            run_id, resumed = self._find_run(db)
            summary = BatchSummary(run_id, resumed, len(roster.students), 0, 0, out_dir=out_dir)
            counters: Counter = Counter()
            progress = Progress(len(roster.students), desc=self.pairing.progress)
            previous = signal.signal(signal.SIGINT, self.request_stop)
            workers = self.opt.workers or (0 if self.opt.ray_address is not None else cpu_count())
            args = (self.pack.id, str(self.settings.model_dir) if self.settings.model_dir else None, self.profiles)
            writer: StoreWriter[tuple[StudentJob, list[PhotoWork]]] = StoreWriter(
                lambda done: self._commit_and_count(db, done, run_id, counters, progress), COMMIT_EVERY
            )
            stop = lambda: self._stop or writer.failed  # noqa: E731
            finished = False
            try:
                items = first_then(self._plan(db, roster, counters, progress))
                if items is not None:
                    for result in map_chunks(items, process_students, workers, init_worker, args, 4, stop=stop, ray_address=self.opt.ray_address):
                        writer.put(result)
                finished = True
            finally:
                signal.signal(signal.SIGINT, previous)
                try:
                    writer.close(abort=not finished)
                finally:
                    progress.close()
            summary.processed, summary.unchanged = counters["processed"], counters["unchanged"]
            if self._stop:
                summary.interrupted = True
                db.transaction(lambda s: finish_run(s, run_id, "interrupted", dict(counters)))
                return summary
            label = f"run {run_id} · pack {self.pack.id} · {datetime.now():%Y-%m-%d %H:%M}"
            summary.reports, decisions = write_reports(self.report_rows(db, roster), out_dir, self._photo_bytes, label, self.pairing)
            summary.decisions = Counter({d.value: n for d, n in decisions.items()})
            final = {**counters, **{f"decision_{k}": v for k, v in summary.decisions.items()}, "students": len(roster.students)}
            db.transaction(lambda s: finish_run(s, run_id, "completed", final))
            summary.seconds = time.monotonic() - t0
            return summary
        finally:
            db.dispose()
