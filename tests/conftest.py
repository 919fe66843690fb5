"""Shared fixtures: the real face set, one pipeline per test session, ID-sized photos."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from imaging import encode_jpeg

from verifier.common.faceset import faces_dir, group_images, identity_of, single_face_images
from verifier.photos.framing import frame_face


@pytest.fixture(autouse=True)
def _dev_null_stays_the_device(request: pytest.FixtureRequest):
    """Name the test that turns /dev/null into something else (the suite once replaced it with a regular file)."""
    yield
    st = os.lstat("/dev/null")
    if not stat.S_ISCHR(st.st_mode) or stat.S_IMODE(st.st_mode) != 0o666:
        pytest.fail(f"{request.node.nodeid} left /dev/null as {stat.filemode(st.st_mode)}, not the character device 0666", pytrace=False)


@pytest.fixture(scope="session")
def faces() -> Path:
    root = faces_dir()
    if root is None:
        pytest.skip("face set ../shared/faces not found (set VERIFIER_FACES to its folder)")
    return root


@pytest.fixture(scope="session")
def single_faces(faces: Path) -> list[Path]:
    return single_face_images(faces)


@pytest.fixture(scope="session")
def group_faces(faces: Path) -> list[Path]:
    return group_images(faces)


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture(scope="session")
def pipeline(cache_dir: Path):
    from verifier.core.pipeline import Pipeline
    from verifier.common.settings import Settings

    return Pipeline.load(settings=Settings(cache_dir=cache_dir), threads=1)


@pytest.fixture(scope="session")
def id_photos(single_faces: list[Path], pipeline, tmp_path_factory) -> dict[str, Path]:
    """295x413 JPEG ID photos (<= 50 KB) cut from each face-set photo, keyed by file stem."""
    out = tmp_path_factory.mktemp("id-photos")
    made = {}
    for src in single_faces:
        analysis = pipeline.analyze(src)
        if analysis.face is None:
            continue
        portrait = frame_face(pipeline.decode(src).pixels, analysis.face)
        for q in (90, 80, 70, 60, 50):
            data = encode_jpeg(portrait, q)
            if len(data) <= 50 * 1024:
                break
        path = out / f"{src.stem}.jpg"
        path.write_bytes(data)
        made[src.stem] = path
    return made


@pytest.fixture(scope="session")
def identity():
    return identity_of
