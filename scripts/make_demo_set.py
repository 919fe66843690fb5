"""Make the small demo set the package ships (verifier/demo/faces/): ID-size copies of MIT-licensed photos.

Run from the checkout with the face set beside it: `.venv/bin/python scripts/make_demo_set.py`.
Only photos from ageitgey/face_recognition (MIT) are used; each becomes a 295x413 JPEG of at most 50 KB,
framed around its face as an admission photo would be. Group photos are scaled to 480 px wide.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2

from verifier.common.faceset import faces_dir, group_images, single_face_images
from verifier.core.pipeline import Pipeline
from verifier.photos.framing import Framing, frame_face

OUT = Path(__file__).resolve().parent.parent / "verifier" / "demo" / "faces"
# People whose photos in the face set come from ageitgey/face_recognition's examples and tests (MIT licence).
MIT_PEOPLE = ("obama", "biden", "alex_lacamoire", "kit_harington", "rose_leslie")
MIT_GROUPS = ("two_people", "obama_and_biden", "kit_with_rose")
ID = Framing(295, 413)
LIMIT = 50 * 1024


def _jpeg(image, limit: int = LIMIT) -> bytes:
    for quality in range(90, 30, -5):
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if ok and buf.size <= limit:
            return buf.tobytes()
    raise SystemExit("cannot fit the photo in 50 KB")


def main() -> int:
    root = faces_dir()
    if root is None:
        print("needs the face set (../shared/faces or VERIFIER_FACES)", file=sys.stderr)
        return 2
    pipeline = Pipeline.load(threads=1)
    (OUT / "multi").mkdir(parents=True, exist_ok=True)
    rows = []
    for src in single_face_images(root):
        if not src.stem.startswith(MIT_PEOPLE) or "partial" in src.stem or "rgba" in src.stem:
            continue
        analysis = pipeline.analyze(src)
        if analysis.face is None:
            continue
        name = f"{src.stem}.jpg"
        (OUT / name).write_bytes(_jpeg(frame_face(pipeline.decode(src).pixels, analysis.face, ID)))
        rows.append((name, src.name))
    for src in group_images(root):
        if src.stem not in MIT_GROUPS:
            continue
        image = pipeline.decode(src).pixels
        scale = 480 / image.shape[1]
        small = cv2.resize(image, (480, round(image.shape[0] * scale)), interpolation=cv2.INTER_AREA)
        (OUT / "multi" / f"{src.stem}.jpg").write_bytes(_jpeg(small, 60 * 1024))
        rows.append((f"multi/{src.stem}.jpg", f"multi/{src.name}"))
    lines = ["| file | made from (face set) |", "|---|---|"] + [f"| `{a}` | `{b}` |" for a, b in rows]
    (OUT / "SOURCES.md").write_text(SOURCES_HEAD + "\n".join(lines) + "\n", encoding="utf-8")
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"{len(rows)} files, {total / 1024:.0f} KB in {OUT}")
    return 0


SOURCES_HEAD = """# Demo face set (shipped in the package)

ID-size copies (295x413 JPEG, at most 50 KB; group photos 480 px wide) made by `scripts/make_demo_set.py`
from photos of public figures in the example and test images of the public repository
`ageitgey/face_recognition` (MIT licence, Copyright (c) 2021 Adam Geitgey; the licence text is in
`LICENSE-face_recognition.txt` beside this file). `verifier demo` uses them only when the development face
set (`../shared/faces` or `VERIFIER_FACES`) is absent. File name = `<identity>_<n>.jpg`, as in the face set.

"""

if __name__ == "__main__":
    sys.exit(main())
