"""`make demo`: compare sample admission/graduation pairs built from the face set.

Sample data: ID-style portraits cut from ../shared/faces (or from images in
installed wheels when that folder is absent), written to ./demo-out; the
genuine pairs are two photos of one person, the impostor pairs are photos of
two different people. Nothing is downloaded and nothing is written elsewhere.
"""

from __future__ import annotations

import importlib.util
import sys
from collections import defaultdict
from pathlib import Path

import cv2

from .faceset import faces_dir, identity_of, single_face_images
from .framing import frame_face
from .pairs import compare_pairs, read_pairs
from .pipeline import Pipeline

OUT = Path("demo-out")


def _wheel_images() -> list[Path]:
    """Face images shipped inside installed wheels (insightface carries a few)."""
    spec = importlib.util.find_spec("insightface")
    if spec is None or not spec.submodule_search_locations:
        return []
    root = Path(next(iter(spec.submodule_search_locations))) / "data" / "images"
    return sorted(root.glob("*.jpg"))


def build_samples(pipeline: Pipeline, out: Path) -> Path:
    """Write ID portraits and a pairs.csv; return the CSV path."""
    root = faces_dir()
    sources = single_face_images(root) if root else _wheel_images()
    if not sources:
        raise SystemExit("no sample faces: ../shared/faces is absent and no installed wheel carries face images")
    photos = out / "photos"
    photos.mkdir(parents=True, exist_ok=True)
    by_person: dict[str, list[str]] = defaultdict(list)
    for src in sources:
        analysis = pipeline.analyze(src)
        if analysis.face is None:
            continue
        portrait = frame_face(pipeline.decode(src).pixels, analysis.face)
        name = f"{src.stem}.jpg"
        cv2.imwrite(str(photos / name), portrait, [cv2.IMWRITE_JPEG_QUALITY, 85])
        by_person[identity_of(src)].append(f"photos/{name}")
    rows = ["file_a,file_b,expected"]
    people = sorted(by_person)
    for person in people:
        shots = by_person[person]
        for other in shots[1:]:
            rows.append(f"{shots[0]},{other},same person")
    for i, person in enumerate(people):
        other = people[(i + 1) % len(people)]
        if other != person:
            rows.append(f"{by_person[person][0]},{by_person[other][-1]},different people")
    csv_path = out / "pairs.csv"
    csv_path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return csv_path


def main() -> int:
    pipeline = Pipeline.load()
    csv_path = build_samples(pipeline, OUT)
    pairs = read_pairs(csv_path)
    expected = [line.split(",")[2] for line in csv_path.read_text(encoding="utf-8").splitlines()[1:]]
    print(f"模型包 / pack: {pipeline.pack.id}; thresholds accept>={pipeline.thresholds.accept} reject<{pipeline.thresholds.reject}")
    print(f"{'A':34} {'B':34} {'score':>6}  decision   expected")
    counts: dict[str, int] = defaultdict(int)
    for row, exp in zip(compare_pairs(pairs, pipeline.thresholds, pack_id=pipeline.pack.id), expected):
        score = "" if row["score"] is None else f"{row['score']:.3f}"
        print(f"{row['file_a']:34} {row['file_b']:34} {score:>6}  {row['decision']:9}  {exp}")
        counts[row["decision"]] += 1
    print("summary:", dict(counts), f"— samples and pairs.csv in {OUT.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
