"""The wheel a user installs holds every module and data file of the source tree (a hand-kept package list once lost two)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("verifier", "api")
DATA_SUFFIXES = {".json", ".html", ".js", ".css", ".mako", ".md", ".jpg", ".txt"}


def _source_files() -> set[str]:
    files = set()
    for top in PACKAGES:
        for path in (ROOT / top).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts and (path.suffix == ".py" or path.suffix in DATA_SUFFIXES):
                files.add(path.relative_to(ROOT).as_posix())
    return files


def test_wheel_holds_every_module_and_data_file(tmp_path: Path) -> None:
    # Build from a copy: a build/ folder left in the checkout could carry modules that no longer exist.
    src = tmp_path / "src"
    for top in PACKAGES:
        shutil.copytree(ROOT / top, src / top, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), str(src)],
        check=True, capture_output=True, cwd=tmp_path,
    )
    (wheel,) = tmp_path.glob("verifier-*.whl")
    in_wheel = set(zipfile.ZipFile(wheel).namelist())
    missing = sorted(_source_files() - in_wheel)
    assert not missing, f"the wheel lacks {missing}"
