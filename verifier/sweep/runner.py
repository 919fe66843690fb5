"""The nightly duplicate-face sweep: one face under two students → a `duplicate_face` review case.

Steps: embed current photos that lack an embedding under the pack; load or build the face
index (`verifier.sweep.index`); search either everything (`--full`, or when no usable index of this
pack, photo kinds and database exists) or only the photos added or replaced since the last
completed sweep against all; drop pairs of one student's own photos; store every pair as a
duplicate candidate; leave pairs already adjudicated (a resolved case covers them) alone;
join the rest into groups of students (connected components) and give each group one case;
write report.csv / report.xlsx / report.html and the run record; save the index last.

Which candidates and students a case covers is stored in `case_pairs` and `case_members`
(`verifier.store.members`) and noted in the audit log (action `duplicate.members`). A pair is
adjudicated only when both its students carry a reviewer's verdict in a case covering it, so a
partly decided group, or a verdict given by a key that could not see some members, leaves the
other pairs to be raised again.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from verifier.common.files import private_folder, run_report_dir
from verifier.cluster.session import ClusterInfo
from verifier.sweep.index import EXACT_LIMIT, FaceIndex, PairSet, choose_params, set_threads
from verifier.core.packs import load_pack
from verifier.sweep.photo_import import embed_missing
from verifier.sweep.ray_search import ShardedSearch, ray_pairs
from verifier.common.reasons import VerifierError
from verifier.common.settings import Settings
from verifier.store import audit, members
from verifier.store.cases import append_note, open_case
from verifier.store.db import Database, safe_url
from verifier.store.connect import open_database
from verifier.store.duplicates import record_candidate
from verifier.common.choices import SWEEP_KINDS
from verifier.store.models import PHOTO_KINDS, DuplicateCandidate, Embedding, Photo, ReviewCase
from verifier.store.photostore import PhotoStore
from verifier.store.runs import finish_run, start_run

log = logging.getLogger(__name__)

RUN_KIND = "sweep"
CASE_TYPE = "duplicate_face"
MEMBERS_ACTION = "duplicate.members"
WRITE_BATCH = 500
ID_CHUNK = 900


@dataclass(frozen=True)
class SweepOptions:
    """What `verifier sweep` was asked to do; `force_approximate`/`exact_limit` exist for tests and benchmarks.

    `ray` (an address, or "local") runs the embedding and a sharded search (`shards` shards, default one
    per CPU of the cluster) on a Ray cluster; the pairs, and so everything written, are the same.
    """

    db_url: str | None = None
    kinds: tuple[str, ...] = SWEEP_KINDS
    threshold: float | None = None
    full: bool = False
    exact: bool = False
    out_dir: Path | None = None
    pack_id: str | None = None
    workers: int | None = None
    actor: str = "sweep"
    force_approximate: bool = False
    exact_limit: int = EXACT_LIMIT
    ray: str | None = None
    shards: int | None = None


@dataclass
class PairRow:
    """One pair found by this sweep, as the reports show it."""

    candidate_id: int
    score: float
    status: str  # new | again | adjudicated
    group: int | None
    case_id: int | None
    photo_a: int
    photo_b: int


@dataclass
class SweepSummary:
    """How a sweep went: the run record's counts, plus where the reports are."""

    run_id: int
    mode: str
    why: str
    threshold: float
    threshold_source: str
    index: str
    counts: Counter = field(default_factory=Counter)
    timings: dict[str, float] = field(default_factory=dict)
    reports: list[Path] = field(default_factory=list)
    out_dir: Path | None = None
    seconds: float = 0.0


def _db_key(url: str) -> str:
    """A short fingerprint of the database (no password), so an index is never reused against another database."""
    return hashlib.sha256(safe_url(url).encode()).hexdigest()[:16]


def _current_ids(session: Session, pack_id: str, kinds: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Photo and student ids of every current, embedded photo of these kinds (sorted by photo id)."""
    q = (
        select(Embedding.photo_id, Photo.student_id)
        .join(Photo, Photo.id == Embedding.photo_id)
        .where(Embedding.pack_id == pack_id, Photo.is_current.is_(True), Photo.file_path.is_not(None), Photo.kind.in_(kinds))
        .order_by(Embedding.photo_id)
    )
    rows = session.execute(q).all()
    ids = np.fromiter((r[0] for r in rows), np.int64, len(rows))
    students = np.fromiter((r[1] for r in rows), np.int64, len(rows))
    return ids, students


def _vectors_of(session: Session, pack_id: str, photo_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vectors of the given photos under the pack, in chunks of ids (returned sorted by photo id)."""
    got_ids: list[int] = []
    chunks: list[np.ndarray] = []
    for i in range(0, len(photo_ids), ID_CHUNK):
        part = [int(x) for x in photo_ids[i : i + ID_CHUNK]]
        q = select(Embedding.photo_id, Embedding.dim, Embedding.vector).where(Embedding.pack_id == pack_id, Embedding.photo_id.in_(part))
        for pid, dim, blob in session.execute(q):
            got_ids.append(pid)
            chunks.append(np.frombuffer(blob, dtype="<f4", count=dim))
    ids = np.asarray(got_ids, np.int64)
    order = np.argsort(ids)
    matrix = np.vstack(chunks).astype(np.float32)[order] if chunks else np.zeros((0, 0), np.float32)
    return ids[order], matrix


def _all_vectors(session: Session, pack_id: str, kinds: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(photo ids, student ids, vectors) of every current embedded photo of these kinds, streamed from the store."""
    q = (
        select(Embedding.photo_id, Photo.student_id, Embedding.dim, Embedding.vector)
        .join(Photo, Photo.id == Embedding.photo_id)
        .where(Embedding.pack_id == pack_id, Photo.is_current.is_(True), Photo.file_path.is_not(None), Photo.kind.in_(kinds))
        .order_by(Embedding.photo_id)
    )
    ids: list[int] = []
    students: list[int] = []
    matrix: np.ndarray | None = None
    n = 0
    for pid, sid, dim, blob in session.execute(q).yield_per(5000):
        if matrix is None:
            matrix = np.empty((1024, dim), np.float32)
        elif dim != matrix.shape[1]:
            raise VerifierError("STORE_EMBEDDING_INVALID", detail=f"mixed dimensions under pack {pack_id}", measured=dim, limit=matrix.shape[1])
        if n == len(matrix):
            matrix = np.resize(matrix, (2 * n, matrix.shape[1]))
        matrix[n] = np.frombuffer(blob, dtype="<f4", count=dim)
        ids.append(pid)
        students.append(sid)
        n += 1
    vectors = matrix[:n].copy() if matrix is not None else np.zeros((0, 0), np.float32)
    return np.asarray(ids, np.int64), np.asarray(students, np.int64), vectors


def case_members(session: Session, case_ids: list[int]) -> dict[int, set[int]]:
    """Candidate ids each duplicate case covers."""
    return members.candidates_by_case(session, case_ids)


def _duplicate_cases(session: Session) -> tuple[dict[int, int], set[int]]:
    """Open cases by candidate id (lowest case id wins) and the candidates adjudicated outside any open case."""
    open_by_candidate = members.open_pairs(session, CASE_TYPE)
    return open_by_candidate, members.adjudicated(session) - set(open_by_candidate)


def components(edges: list[tuple[int, int]]) -> list[list[int]]:
    """Connected components of an undirected graph given as edges between arbitrary int nodes (each sorted)."""
    nodes = sorted({n for e in edges for n in e})
    if not nodes:
        return []
    from scipy.sparse import coo_matrix  # only when there are pairs to group (scipy takes a while to import)
    from scipy.sparse.csgraph import connected_components

    pos = {n: i for i, n in enumerate(nodes)}
    a = np.fromiter((pos[e[0]] for e in edges), np.int64, len(edges))
    b = np.fromiter((pos[e[1]] for e in edges), np.int64, len(edges))
    graph = coo_matrix((np.ones(len(edges)), (a, b)), shape=(len(nodes), len(nodes)))
    _, labels = connected_components(graph, directed=False)
    groups: dict[int, list[int]] = defaultdict(list)
    for node, label in zip(nodes, labels, strict=True):
        groups[int(label)].append(node)
    return sorted(groups.values(), key=lambda g: g[0])


class Sweep:
    """One invocation of the duplicate sweep."""

    def __init__(self, options: SweepOptions, settings: Settings | None = None):
        self.opt = options
        self.settings = settings or Settings.from_env()
        self.pack = load_pack(options.pack_id or self.settings.pack)
        bad = [k for k in options.kinds if k not in PHOTO_KINDS]
        if bad or not options.kinds:
            raise VerifierError("STORE_PHOTO_KIND_INVALID", detail=",".join(bad) or "no kind")
        self.kinds = tuple(k for k in PHOTO_KINDS if k in options.kinds)
        if options.threshold is not None:
            self.threshold, self.threshold_source = float(options.threshold), "--threshold"
        else:
            self.threshold, self.threshold_source = float(self.pack.thresholds.duplicate), f"pack {self.pack.id} thresholds.duplicate"
        if not 0.0 < self.threshold <= 1.0:
            raise VerifierError("SWEEP_THRESHOLD_INVALID", measured=self.threshold, limit="(0, 1]")
        self.store = PhotoStore.for_home(self.settings.home)
        self.cluster: ClusterInfo | None = None
        self.sharded: ShardedSearch | None = None

    def index_dir(self) -> Path:
        """Where this pack's and kinds' index lives: `<home>/index/<pack>-<kinds>`."""
        return self.settings.home / "index" / f"{self.pack.id}-{'+'.join(self.kinds)}"

    def _params(self, n: int):
        return choose_params(n, exact=self.opt.exact, force_approximate=self.opt.force_approximate, exact_limit=self.opt.exact_limit)

    def _index_meta(self, db: Database) -> dict[str, Any]:
        return {"pack": self.pack.id, "kinds": list(self.kinds), "db": _db_key(db.url)}

    def _usable(self, index: FaceIndex | None, db: Database) -> tuple[FaceIndex | None, str]:
        """The saved index when it belongs to this pack, kinds and database; else None and why not."""
        if index is None:
            return None, "no saved index"
        if index.n == 0:
            return None, "saved index is empty"
        if float(index.meta.get("threshold", self.threshold)) > self.threshold:
            return None, "threshold lowered since the last sweep"
        want = self._index_meta(db)
        for key in ("pack", "kinds", "db"):
            if index.meta.get(key) != want[key]:
                return None, f"saved index is for another {key}"
        return index, ""

    def _search(self, db: Database, summary: SweepSummary) -> tuple[FaceIndex, PairSet]:
        """Load or build the index and find the pairs: everything (full) or the new photos against all."""
        t0 = time.monotonic()
        cur_ids, cur_students = db.read(lambda session: _current_ids(session, self.pack.id, self.kinds))
        saved, why = self._usable(None if self.opt.full else FaceIndex.load(self.index_dir()), db)
        summary.counts["photos"] = int(cur_ids.size)
        if self.opt.full or saved is None:
            summary.mode, summary.why = "full", "--full" if self.opt.full else why
            ids, students, vectors = db.read(lambda session: _all_vectors(session, self.pack.id, self.kinds))
            summary.timings["load"] = time.monotonic() - t0
            index = FaceIndex.build(ids, students, vectors, self._params(len(ids)))
            summary.timings["build"] = time.monotonic() - t0 - summary.timings["load"]
            summary.counts["new_photos"] = int(ids.size)
            t1 = time.monotonic()
            pairs = self._pairs(index, None)
            summary.timings["search"] = time.monotonic() - t1
            return index, pairs
        summary.mode, summary.why = "incremental", f"since the index of sweep run {saved.meta.get('run_id')}"
        new_mask = ~np.isin(cur_ids, saved.ids)
        new_ids = cur_ids[new_mask]
        summary.counts["new_photos"] = int(new_ids.size)
        summary.counts["removed_photos"] = int((~np.isin(saved.ids, cur_ids)).sum())
        got_ids, new_vectors = db.read(lambda session: _vectors_of(session, self.pack.id, new_ids))
        new_students = cur_students[new_mask][np.searchsorted(new_ids, got_ids)] if got_ids.size else np.zeros(0, np.int64)
        summary.timings["load"] = time.monotonic() - t0
        t1 = time.monotonic()
        params = self._params(int(cur_ids.size))
        if saved.needs_rebuild(int(cur_ids.size), params):
            keep = np.isin(saved.ids, cur_ids)
            ids = np.concatenate([saved.ids[keep], got_ids])
            vectors = np.concatenate([saved.vectors[keep], new_vectors.reshape(-1, saved.vectors.shape[1])]) if got_ids.size else saved.vectors[keep]
            index = FaceIndex.build(ids, np.concatenate([saved.students[keep], new_students]), vectors, params)
            is_new = np.isin(index.ids, got_ids)
            summary.counts["index_rebuilt"] = 1
        else:
            index = saved
            is_new = index.update(cur_ids, got_ids, new_students, new_vectors if got_ids.size else np.zeros((0, saved.vectors.shape[1]), np.float32))
        summary.timings["build"] = time.monotonic() - t1
        t2 = time.monotonic()
        pairs = self._pairs(index, is_new) if got_ids.size else PairSet.empty()
        summary.timings["search"] = time.monotonic() - t2
        return index, pairs

    def _pairs(self, index: FaceIndex, is_new: np.ndarray | None) -> PairSet:
        """All pairs (is_new None) or those with a new row: here, or sharded on the Ray cluster."""
        if self.cluster is None:
            return index.all_pairs(self.threshold) if is_new is None else index.pairs_with(is_new, self.threshold)
        shards = max(1, self.opt.shards or self.cluster.cpus)
        return ray_pairs(index, shards, self.threshold, is_new, report=self.sharded)

    def _record(self, db: Database, index: FaceIndex, pairs: PairSet, run_id: int, counts: Counter) -> list[PairRow]:
        """Store candidates (different students only); mark which are new, seen before, or adjudicated."""
        photo_a, photo_b = index.ids[pairs.a], index.ids[pairs.b]
        same = index.students[pairs.a] == index.students[pairs.b]
        counts["same_student_pairs"] = int(same.sum())
        todo = [(int(a), int(b), float(s)) for a, b, s in zip(photo_a[~same], photo_b[~same], pairs.score[~same], strict=True)]
        rows: list[PairRow] = []
        for i in range(0, len(todo), WRITE_BATCH):
            batch = todo[i : i + WRITE_BATCH]

            def write(session: Session, batch=batch) -> list[PairRow]:
                out = []
                photos = {p.id: p for p in session.scalars(select(Photo).where(Photo.id.in_({x for a, b, _ in batch for x in (a, b)})))}
                for a, b, score in batch:
                    rec = record_candidate(session, photos[a], photos[b], self.pack.id, score, run_id)
                    out.append(PairRow(rec.candidate.id, score, "new" if rec.created else "again", None, None, rec.candidate.photo_a_id, rec.candidate.photo_b_id))
                return out

            rows.extend(db.transaction(write))
        counts["pairs"] = len(rows)
        counts["new_pairs"] = sum(r.status == "new" for r in rows)
        return rows

    def _cases(self, db: Database, rows: list[PairRow], counts: Counter) -> None:
        """Group the raised pairs by student (with pairs of open cases they touch) and give each group one case."""

        def write(session: Session) -> None:
            open_by_cand, adjudicated = _duplicate_cases(session)
            raised = []
            for r in rows:
                if r.candidate_id in adjudicated:
                    r.status = "adjudicated"
                else:
                    raised.append(r)
            counts["adjudicated_pairs"] = len(rows) - len(raised)
            if not raised:
                return
            cands: dict[int, DuplicateCandidate] = {}
            wanted = {r.candidate_id for r in raised} | set(open_by_cand)
            ordered = sorted(wanted)
            for i in range(0, len(ordered), ID_CHUNK):
                for c in session.scalars(select(DuplicateCandidate).where(DuplicateCandidate.id.in_(ordered[i : i + ID_CHUNK]))):
                    cands[c.id] = c
            edges = [(min(c.student_a_id, c.student_b_id), max(c.student_a_id, c.student_b_id)) for c in cands.values()]
            by_student: dict[int, list[int]] = defaultdict(list)
            for c in cands.values():
                by_student[c.student_a_id].append(c.id)
            raised_ids = {r.candidate_id for r in raised}
            group_no = 0
            case_of_candidate: dict[int, tuple[int, int]] = {}
            for students in components(edges):
                group = sorted({cid for s in students for cid in by_student.get(s, [])})
                if not raised_ids.intersection(group):
                    continue
                group_no += 1
                counts["groups"] += 1
                counts["groups_3plus"] += len(students) >= 3
                existing = sorted({open_by_cand[c] for c in group if c in open_by_cand})
                if existing:
                    case = session.get(ReviewCase, existing[0])
                    assert case is not None
                    grown = members.add_pairs(session, case, [cands[c] for c in group], self.opt.actor)
                    if grown.pairs:
                        counts["cases_grown"] += 1
                        counts["verdicts_reopened"] += grown.reopened
                        append_note(session, case, self.opt.actor, f"新增 {grown.pairs} 对 / {grown.pairs} more pair(s), {len(students)} students")
                        audit.record(session, self.opt.actor, MEMBERS_ACTION, "case", case.id, after={"candidates": list(grown.added), "students": len(students)})
                else:
                    note = f"重复人脸：{len(students)} 名学生，{len(group)} 对照片 / duplicate face: {len(students)} students, {len(group)} photo pair(s)"
                    opened = open_case(session, CASE_TYPE, "duplicate", group[0], min(students), actor=self.opt.actor, note=note)
                    case = opened.case
                    counts["cases_opened"] += opened.created
                    members.add_pairs(session, case, [cands[c] for c in group], self.opt.actor)
                    audit.record(session, self.opt.actor, MEMBERS_ACTION, "case", case.id, after={"candidates": group, "students": len(students)})
                for c in group:
                    case_of_candidate[c] = (group_no, case.id)
            for r in raised:
                r.group, r.case_id = case_of_candidate.get(r.candidate_id, (None, None))

        db.transaction(write)

    def _out_dir(self) -> Path:
        return run_report_dir(self.settings.home, self.opt.out_dir, "sweep", "SWEEP_OUT_UNWRITABLE")

    def _lock(self) -> int:
        """Hold `<home>/index/.sweep.lock` for the sweep so two sweeps never write one index at once."""
        folder = private_folder(self.settings.home / "index")
        fd = os.open(folder / ".sweep.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise VerifierError("SWEEP_ALREADY_RUNNING", detail=str(folder)) from None
        return fd

    def run(self) -> SweepSummary:
        """Do the whole sweep; the run ends completed (exit 0) or failed with the error re-raised."""
        lock = self._lock()
        try:
            return self._run()
        finally:
            os.close(lock)

    def _run(self) -> SweepSummary:
        t0 = time.monotonic()
        set_threads(self.opt.workers)
        out_dir = self._out_dir()
        db = open_database(self.opt.db_url, settings=self.settings)
        try:
            params = {
                "pack": self.pack.id,
                "kinds": list(self.kinds),
                "threshold": self.threshold,
                "threshold_source": self.threshold_source,
                "full": self.opt.full,
                "exact": self.opt.exact,
                "ray": self.opt.ray,
                "shards": self.opt.shards,
            }
            run_id = db.transaction(lambda s: start_run(s, RUN_KIND, params, actor=self.opt.actor).id)
            summary = SweepSummary(run_id, "", "", self.threshold, self.threshold_source, "", out_dir=out_dir)
            try:
                self._sweep(db, summary)
            except BaseException as exc:
                status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
                db.transaction(lambda s: finish_run(s, run_id, status, self._record_counts(summary)))
                raise
            summary.seconds = time.monotonic() - t0
            db.transaction(lambda s: finish_run(s, run_id, "completed", self._record_counts(summary)))
            return summary
        finally:
            db.dispose()

    def _sweep(self, db: Database, summary: SweepSummary) -> None:
        if self.opt.ray is None:
            self._steps(db, summary)
            return
        from verifier.cluster.session import ray_cluster

        with ray_cluster(self.opt.ray, self.opt.workers) as cluster:
            self.cluster, self.sharded = cluster, ShardedSearch(0)
            try:
                self._steps(db, summary)
            finally:
                summary.counts["ray_cpus"], summary.counts["ray_nodes"] = cluster.cpus, cluster.nodes
                summary.counts["shards"], summary.counts["shard_tasks"] = self.sharded.shards, self.sharded.tasks
                summary.counts["shard_bytes_moved"] = self.sharded.bytes_moved
                self.cluster = None

    def _steps(self, db: Database, summary: SweepSummary) -> None:
        t = time.monotonic()
        embedded = embed_missing(db, self.store, self.pack.id, self.kinds, self.settings, self.opt.workers, self.opt.actor, ray_address=self.opt.ray)
        summary.counts.update({f"embed_{k}": v for k, v in embedded.items()})
        summary.timings["embed"] = time.monotonic() - t
        index, pairs = self._search(db, summary)
        summary.index = index.params.describe(incremental=summary.mode == "incremental")
        t = time.monotonic()
        rows = self._record(db, index, pairs, summary.run_id, summary.counts)
        self._cases(db, rows, summary.counts)
        summary.timings["store"] = time.monotonic() - t
        t = time.monotonic()
        from verifier.sweep.report import write_sweep_reports

        label = f"run {summary.run_id} · pack {self.pack.id} · {summary.mode} · {summary.index} · threshold {self.threshold} ({self.threshold_source})"
        summary.reports = write_sweep_reports(db, self.store, rows, summary.out_dir, label)
        summary.timings["reports"] = time.monotonic() - t
        t = time.monotonic()
        index.save(self.index_dir(), {**self._index_meta(db), "run_id": summary.run_id, "threshold": self.threshold})
        summary.timings["save_index"] = time.monotonic() - t

    def _record_counts(self, summary: SweepSummary) -> dict[str, Any]:
        """What the run record keeps: counts, mode, index, threshold and where it came from, timings."""
        return {
            **{k: int(v) for k, v in summary.counts.items()},
            "mode": summary.mode,
            "why": summary.why,
            "index": summary.index,
            "threshold": summary.threshold,
            "threshold_source": summary.threshold_source,
            "seconds": {k: round(v, 2) for k, v in summary.timings.items()},
            "reports": str(summary.out_dir) if summary.out_dir else None,
        }

