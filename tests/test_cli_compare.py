"""`verifier compare` and `verifier compare --pairs`, run as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from verifier.batch.pairs import compare_pairs, read_pairs


def _run(*args: str, cache: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "VERIFIER_CACHE_DIR": str(cache)}
    return subprocess.run([sys.executable, "-m", "verifier", *args], capture_output=True, text=True, env=env, timeout=300)


def test_exit_codes_match_flagged_unusable(faces: Path, cache_dir: Path):
    same = _run("compare", str(faces / "obama_1.jpg"), str(faces / "obama_2.jpg"), "--json", cache=cache_dir)
    assert same.returncode == 0, same.stderr
    out = json.loads(same.stdout)
    assert out["decision"] == "match" and out["score"] >= out["thresholds"]["accept"]
    assert out["a"]["face_count"] == 1 and len(out["a"]["face"]["landmarks"]) == 5
    other = _run("compare", str(faces / "obama_1.jpg"), str(faces / "biden_1.jpg"), cache=cache_dir)
    # Another person is never a match: review (a person looks) or mismatch (identity re-review), exit 1 either way.
    assert other.returncode == 1 and ("decision=review" in other.stdout or "decision=mismatch" in other.stdout)
    bad = _run("compare", str(faces / "obama_1.jpg"), str(faces / "README.md"), cache=cache_dir)
    assert bad.returncode == 2 and "IMAGE_NOT_IMAGE" in bad.stderr


def test_pairs_json_lines(faces: Path, tmp_path: Path, cache_dir: Path):
    rel = os.path.relpath(faces, tmp_path)
    lines = ["file_a,file_b,note"]
    lines += [f"{rel}/obama_1.jpg,{rel}/obama_2.jpg,same", f"{rel}/obama_1.jpg,{rel}/biden_1.jpg,diff"]
    lines += [f"{rel}/obama_1.jpg,{rel}/missing.jpg,x", f"{rel}/obama_1.jpg,{rel}/multi/two_people.jpg,x"]
    (tmp_path / "pairs.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    res = _run("compare", "--pairs", str(tmp_path / "pairs.csv"), "--json", "--workers", "2", cache=cache_dir)
    assert res.returncode == 0, res.stderr
    rows = [json.loads(x) for x in res.stdout.splitlines()]
    assert [r["decision"] for r in rows][::2] == ["match", "error"] and rows[1]["decision"] in ("review", "mismatch")
    assert rows[3]["decision"] == "error"
    assert rows[2]["reason"] == "FILE_NOT_FOUND" and rows[3]["reason"] == "FACE_MULTIPLE"
    assert rows[0]["file_a"] == f"{rel}/obama_1.jpg"


def test_bad_pairs_header_is_a_usage_error(tmp_path: Path, cache_dir: Path):
    (tmp_path / "p.csv").write_text("a,b\nx,y\n", encoding="utf-8")
    res = _run("compare", "--pairs", str(tmp_path / "p.csv"), cache=cache_dir)
    assert res.returncode == 2 and "PAIRS_FILE_INVALID" in res.stderr


def test_each_image_is_analysed_once(faces: Path, tmp_path: Path, pipeline, monkeypatch):
    lines = ["file_a,file_b"] + [f"{faces}/obama_1.jpg,{faces}/{n}" for n in ("obama_2.jpg", "biden_1.jpg", "obama_3.jpg", "obama_2.jpg")]
    (tmp_path / "pairs.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    seen: list[str] = []
    original = pipeline._locate

    def counting(source):
        seen.append(str(source))
        return original(source)

    monkeypatch.setattr(pipeline, "_locate", counting)
    from verifier.core import workers as parallel

    monkeypatch.setattr(parallel, "cpu_count", lambda: 1)
    monkeypatch.setattr(parallel.Pipeline, "load", classmethod(lambda cls, *a, **k: pipeline))
    rows = list(compare_pairs(read_pairs(tmp_path / "pairs.csv"), pipeline.thresholds, workers=1))
    assert len(rows) == 4
    assert sorted(seen) == sorted({str(faces / n) for n in ("obama_1.jpg", "obama_2.jpg", "biden_1.jpg", "obama_3.jpg")})


def test_reasons_command_lists_codes(cache_dir: Path):
    res = _run("reasons", cache=cache_dir)
    assert res.returncode == 0 and "FACE_MULTIPLE" in res.stdout


@pytest.mark.parametrize("cmd", [["models", "list"], ["models", "verify"]])
def test_models_commands(cmd, cache_dir: Path):
    res = _run(*cmd, cache=cache_dir)
    assert res.returncode == 0, res.stderr
    assert "sface-yunet-int8" in res.stdout


def test_pairs_load_the_models_once_and_share_them_across_worker_threads(single_faces: list[Path], tmp_path: Path, cache_dir: Path,
                                                                         monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture):
    # Issue 20: a run starts its workers once and loads the models once; the workers are threads sharing that pipeline.
    import threading

    from verifier.cli.main import main
    from verifier.core.pipeline import Pipeline

    monkeypatch.setenv("VERIFIER_CACHE_DIR", str(cache_dir))
    loads: list[int] = []
    used_by: dict[str, set[int]] = {}
    load, analyze_many = Pipeline.load.__func__, Pipeline.analyze_many

    def counted_load(cls, *args, **kwargs):
        loads.append(1)
        return load(cls, *args, **kwargs)

    def recorded(self, paths):
        used_by.setdefault(threading.current_thread().name, set()).add(id(self))
        return analyze_many(self, paths)

    monkeypatch.setattr(Pipeline, "load", classmethod(counted_load))
    monkeypatch.setattr(Pipeline, "analyze_many", recorded)
    paths = single_faces[:24]
    lines = ["file_a,file_b"] + [f"{a},{b}" for a, b in zip(paths[0::2], paths[1::2])]
    (tmp_path / "pairs.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert main(["compare", "--pairs", str(tmp_path / "pairs.csv"), "--workers", "2"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == len(lines) - 1
    assert loads == [1], f"Pipeline.load ran {len(loads)} times in one run"
    assert len(used_by) == 2 and all(name.startswith("verifier-worker") for name in used_by), sorted(used_by)
    assert len(set().union(*used_by.values())) == 1, "the worker threads must share one pipeline"
