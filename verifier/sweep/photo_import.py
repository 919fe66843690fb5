"""`verifier photos import` and the sweep's embedding step: check, store and embed photos with the batch machinery.

Files are named `<考生号>.<jpg|jpeg|png>`; each is checked against the profile of its kind
(admission or graduation), stored as the student's current photo of that kind (the previous
one stays in the correction chain), and embedded under the pack. Work runs in the batch
worker (`verifier.batch.worker`) through `verifier.common.parallel.map_chunks`, on Ray actors
with `ray_address` (jobs carry the photo bytes, so the nodes need no shared file system); each
photo is committed here in its own transaction, so an interrupted import resumes by running the
same command, and a photo whose bytes, check and embedding are already stored is skipped.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from verifier.batch.runner import PHOTO_SUFFIXES, findings_of
from verifier.batch.worker import PhotoJob, PhotoWork, StudentJob, init_worker, process_chunk, process_students
from verifier.cluster.session import import_ray
from verifier.photos.checks import iter_photo_paths, read_photo
from verifier.core.packs import load_pack
from verifier.common.parallel import map_chunks
from verifier.photos.profiles import load_profile
from verifier.common.reasons import VerifierError
from verifier.common.settings import Settings, cpu_count
from verifier.store import embeddings
from verifier.store.db import Database
from verifier.store.connect import open_database
from verifier.store.models import PHOTO_KINDS, Photo
from verifier.store.photos import add_photo, current_photo, set_check_result
from verifier.store.photostore import PhotoStore, sha256_hex
from verifier.store.students import get_student, import_roster

log = logging.getLogger(__name__)
CHUNK = 8


@dataclass(frozen=True)
class ImportOptions:
    """What `verifier photos import` was asked to do."""

    folder: Path
    kind: str
    roster: Path | None = None
    db_url: str | None = None
    workers: int | None = None
    pack_id: str | None = None
    actor: str = "photos-import"
    ray_address: str | None = None


@dataclass
class ImportSummary:
    """Counts per outcome (added, replaced, unchanged, check status) and the files not stored, with their reason code."""

    counts: Counter = field(default_factory=Counter)
    rejected: list[tuple[str, str]] = field(default_factory=list)


def _worker_setup(pack_id: str, settings: Settings, workers: int | None, ray_address: str | None = None) -> tuple[int, tuple]:
    """Worker count and initializer arguments; one in-process pipeline when a single local worker is asked for.

    On Ray every actor loads its own pipeline (none is shipped) and no count means one actor per cluster CPU.
    """
    profiles = {kind: load_profile(kind) for kind in PHOTO_KINDS}
    model_dir = str(settings.model_dir) if settings.model_dir else None
    if ray_address is not None:
        import_ray()
        return workers or 0, (pack_id, model_dir, profiles)
    workers = workers or cpu_count()
    if workers <= 1:
        from verifier.core.pipeline import Pipeline

        return 1, (pack_id, model_dir, profiles, Pipeline.load(pack_id, settings.model_dir, threads=1, settings=settings))
    return workers, (pack_id, model_dir, profiles)


def _already_done(session, photo: Photo | None, sha: str, pack_id: str) -> bool:
    """Same bytes stored, checked, and embedded (or not embeddable): nothing to do."""
    return (
        photo is not None
        and sha in (photo.sha256, photo.origin_sha256)
        and photo.check_status != "unchecked"
        and (bool(findings_of(photo).blocking) or embeddings.get_or_none(session, photo.id, pack_id) is not None)
    )


def import_photos(options: ImportOptions, settings: Settings | None = None) -> ImportSummary:
    """Check, store and embed every photo in a folder (streamed); idempotent."""
    settings = settings or Settings.from_env()
    if options.kind not in PHOTO_KINDS:
        raise VerifierError("STORE_PHOTO_KIND_INVALID", detail=repr(options.kind))
    if not options.folder.is_dir():
        raise VerifierError("BATCH_FOLDER_MISSING", detail=str(options.folder))
    pack = load_pack(options.pack_id or settings.pack)
    store = PhotoStore.for_home(settings.home)
    summary = ImportSummary()
    db = open_database(options.db_url, settings=settings)
    try:
        on_roster: set[str] | None = None
        if options.roster is not None:
            from verifier.photos.roster import RosterLimits, load_roster

            roster = load_roster(options.roster, limits=RosterLimits.from_settings(settings))
            key = settings.id_key_bytes()
            db.transaction(lambda s: import_roster(s, roster, key, actor=options.actor))
            on_roster = set(roster.students)
        workers, args = _worker_setup(pack.id, settings, options.workers, options.ray_address)
        jobs = _plan(db, options, pack.id, on_roster, summary)
        for job, works in map_chunks(jobs, process_students, workers, init_worker, args, CHUNK, ray_address=options.ray_address):
            for pj, work in zip(job.photos, works, strict=True):
                summary.counts[_commit(db, store, pack.id, job.ksh, pj, work, options.actor)] += 1
                summary.counts[f"check_{work.status}"] += 1
                summary.counts["embedded" if work.embedding is not None else "not_embeddable"] += 1
    finally:
        db.dispose()
    return summary


def _plan(db: Database, options: ImportOptions, pack_id: str, on_roster: set[str] | None, summary: ImportSummary) -> Iterator[StudentJob]:
    """One job per photo file that still needs work; unknown students and unreadable files go to `rejected`."""
    with db.session() as session:
        for path in iter_photo_paths([options.folder]):
            if path.suffix not in PHOTO_SUFFIXES:
                summary.counts["skipped_not_photo"] += 1
                continue
            ksh = path.stem
            if on_roster is not None and ksh not in on_roster:
                summary.rejected.append((path.name, "RECON_NOT_ON_ROSTER"))
                continue
            student = get_student(session, ksh)
            if student is None:
                summary.rejected.append((path.name, "STORE_STUDENT_UNKNOWN"))
                continue
            try:
                data = read_photo(path)
            except VerifierError as exc:
                summary.rejected.append((path.name, exc.reason.code))
                continue
            if _already_done(session, current_photo(session, student.id, options.kind), sha256_hex(data), pack_id):
                summary.counts["unchanged"] += 1
            else:
                yield StudentJob(ksh, [PhotoJob(ksh, options.kind, path.name, data, str(path))])
            session.expire_all()


def _commit(db: Database, store: PhotoStore, pack_id: str, ksh: str, job: PhotoJob, work: PhotoWork, actor: str) -> str:
    """Store one photo with its check result and embedding in one transaction; say whether it was added or replaced."""

    def write(session) -> str:
        student = get_student(session, ksh)
        assert student is not None
        before = current_photo(session, student.id, job.kind)
        photo = add_photo(session, store, student, job.kind, work.stored_bytes(job.data), job.source, work.status, work.codes, work.width, work.height, actor=actor, origin_sha256=work.origin_sha256)
        set_check_result(session, photo, work.status, work.codes, actor=actor)
        if work.embedding is not None:
            embeddings.put(session, photo.id, pack_id, work.embedding)
        if before is None:
            return "added"
        return "rechecked" if before.id == photo.id else "replaced"

    return db.transaction(write)


def _embed_chunk(chunk: list[tuple[tuple[int, bool], PhotoJob]]) -> list[PhotoWork]:
    """Worker side of `embed_missing`: check and embed stored photos (ids ride along)."""
    return process_chunk([job for _, job in chunk])


def embed_missing(
    db: Database, store: PhotoStore, pack_id: str, kinds: tuple[str, ...], settings: Settings, workers: int | None = None, actor: str = "sweep",
    ray_address: str | None = None,
) -> Counter:
    """Embed current photos of these kinds that lack an embedding under the pack; photos that cannot be compared are counted, not retried.

    With `ray_address` the embedding runs on Ray actors (the stored bytes are sent; results are written here).
    """
    counts: Counter = Counter()
    with db.session() as session:
        todo: list[tuple[int, str, str, str, bool]] = []
        for kind in kinds:
            for photo in embeddings.photos_to_embed(session, pack_id, kind):
                if photo.check_status != "unchecked" and findings_of(photo).blocking:
                    counts["not_comparable"] += 1
                    continue
                name = Path(photo.source).name if photo.source else f"{photo.student.ksh}.jpg"
                todo.append((photo.id, photo.kind, photo.sha256, name, photo.check_status == "unchecked"))
    if not todo:
        return counts

    def jobs() -> Iterator[tuple[tuple[int, bool], PhotoJob]]:
        for photo_id, kind, sha, name, unchecked in todo:
            try:
                data = store.read(sha)
            except VerifierError as exc:
                counts[f"unreadable_{exc.reason.code}"] += 1
                continue
            yield (photo_id, unchecked), PhotoJob("", kind, name, data)

    def write(session, photo_id: int, unchecked: bool, work: PhotoWork) -> None:
        if unchecked:
            photo = session.get(Photo, photo_id)
            if photo is not None:
                set_check_result(session, photo, work.status, work.codes, actor=actor)
        if work.embedding is not None:
            embeddings.put(session, photo_id, pack_id, work.embedding)

    n, args = _worker_setup(pack_id, settings, workers, ray_address)
    for ((photo_id, unchecked), _job), work in map_chunks(jobs(), _embed_chunk, n, init_worker, args, CHUNK, ray_address=ray_address):
        db.transaction(lambda s, pid=photo_id, u=unchecked, w=work: write(s, pid, u, w))
        counts["embedded" if work.embedding is not None else "not_comparable"] += 1
    return counts
