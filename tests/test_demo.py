"""`verifier demo` runs the main job from the installed package alone: the shipped demo set when no face set is present."""

from __future__ import annotations

from pathlib import Path

import pytest

from verifier.cli import main as cli
from verifier.demo import run
from verifier.photos.spec import check_spec
from verifier.photos.profiles import load_profile


def test_shipped_demo_set_is_small_licensed_and_id_sized() -> None:
    root = run.shipped_faces()
    photos = sorted(root.glob("*.jpg"))
    files = [p for p in root.rglob("*") if p.is_file()]
    assert len(photos) >= 12 and (root / "multi").is_dir() and len(list((root / "multi").glob("*.jpg"))) >= 2
    assert sum(p.stat().st_size for p in files) <= 2 * 1024 * 1024
    assert "MIT" in (root / "LICENSE-face_recognition.txt").read_text() and "ageitgey/face_recognition" in (root / "SOURCES.md").read_text()
    profile = load_profile("admission")
    for p in photos:
        data = p.read_bytes()
        assert len(data) <= 50 * 1024 and f"`{p.name}`" in (root / "SOURCES.md").read_text()
        reasons, _measured = check_spec(data, "21110101000001.jpg", profile)
        findings = [r.code for r in reasons if r.severity.value == "fail"]
        assert findings == [], (p.name, findings)


def test_demo_runs_on_the_shipped_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(run, "faces_dir", lambda: None)
    monkeypatch.setenv("VERIFIER_CACHE_DIR", str(tmp_path / "cache"))
    assert cli.main(["demo", "--out", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    assert "using the demo photos shipped in the package" in out
    counts = {line.split()[1]: int(line.split()[2]) for line in out.splitlines() if line.startswith("  ") and len(line.split()) == 3}
    assert counts["pass"] >= 30 and counts["fail"] + counts["review"] >= 3 and sum(counts.values()) == 60, counts
    assert (tmp_path / "demo" / "reports" / "report.xlsx").is_file()
    assert cli.main(["demo", "--out", str(tmp_path / "demo")]) == 0  # idempotent: the second run re-uses every result
    assert "0 processed, 60 unchanged" in capsys.readouterr().out
