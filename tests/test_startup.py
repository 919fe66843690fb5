"""What the user runs starts fast: help and version load only the standard library and the command line's own modules,
and `verifier compare` with a warm model cache never loads the ONNX graph tools.

Each case runs in a fresh interpreter (the test process has long since imported everything) and reports the
names in `sys.modules` once it is done.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from verifier.cli.main import build_parser

# Builds the parser, parses argv (--help and --version end in SystemExit), writes sorted(sys.modules) as JSON to a file.
HELP_PROBE = """
import json, sys
out, argv = sys.argv[1], sys.argv[2:]
from verifier.cli.main import build_parser
try:
    build_parser().parse_args(argv)
except SystemExit:
    pass
with open(out, "w") as fh:
    json.dump(sorted(sys.modules), fh)
"""

# Builds the parser and parses a full argv (no SystemExit expected: argument types run, the command does not); writes
# {"parsed": bool, "modules": sorted(sys.modules)}.
PARSE_PROBE = """
import json, sys
out, argv = sys.argv[1], sys.argv[2:]
from verifier.cli.main import build_parser
try:
    args = build_parser().parse_args(argv)
    parsed = callable(getattr(args, "func", None))
except SystemExit:
    parsed = False
with open(out, "w") as fh:
    json.dump({"parsed": parsed, "modules": sorted(sys.modules)}, fh)
"""

# Runs the command line as the `verifier` script does, then writes its exit code and sorted(sys.modules).
MAIN_PROBE = """
import json, sys
out, argv = sys.argv[1], sys.argv[2:]
from verifier.cli.main import main
rc = main(argv)
with open(out, "w") as fh:
    json.dump({"rc": rc, "modules": sorted(sys.modules)}, fh)
"""

# verifier modules help may load: the root package (its public names are lazy), the CLI, and verifier.common
# (the bottom layer; whether a module there pulls a third-party package is the other check).
ALLOWED_VERIFIER = ("verifier.cli", "verifier.common")

# Never loaded by `compare A B` once the repaired models are cached: the graph tools (onnx, and ml_dtypes which onnx
# loads) repair a model only on a cache miss; the rest belong to other commands (calibrate, the store, serve).
NOT_FOR_COMPARE = ("onnx", "ml_dtypes", "scipy", "matplotlib", "sqlalchemy", "alembic", "fastapi", "starlette", "uvicorn")


def _startup_modules() -> set[str]:
    """What this interpreter loads before any verifier code runs: site and the environment's .pth files
    (the editable install's finder, setuptools' _distutils_hack), and __main__. Not ours to trim."""
    res = subprocess.run([sys.executable, "-c", "import sys; print('\\n'.join(sys.modules))"],
                         capture_output=True, text=True, check=True, timeout=60)
    return set(res.stdout.split())


def _command_paths(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command of the parser, nested groups included (`photos check`, `db upgrade`), the root first."""
    paths = [prefix]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                paths += _command_paths(sub, (*prefix, name))
    return paths


def _subparser(path: tuple[str, ...]) -> argparse.ArgumentParser:
    parser = build_parser()
    for name in path:
        parser = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[name]
    return parser


def _is_group(parser: argparse.ArgumentParser) -> bool:
    return any(isinstance(a, argparse._SubParsersAction) for a in parser._actions)


# Argument types whose converters accept "1"; other types get their default spelled out, or are left out.
PLAIN_TYPES = (None, str, int, float, Path)


def _full_argv(path: tuple[str, ...]) -> list[str]:
    """The command with every positional and every option given a value its type accepts, and every flag set
    (of mutually exclusive options, the first)."""
    argv = list(path)
    parser = _subparser(path)
    exclusive = {id(a) for g in parser._mutually_exclusive_groups for a in g._group_actions[1:]}
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction | argparse._VersionAction) or id(action) in exclusive:
            continue
        if action.nargs == 0:
            if action.option_strings and not action.required:
                argv.append(action.option_strings[-1])
            continue
        if action.choices:
            value = str(next(iter(action.choices)))
        elif action.type in PLAIN_TYPES:
            value = "1"
        elif isinstance(action.default, list | tuple) and all(isinstance(v, str) for v in action.default):
            value = ",".join(action.default)  # a list type (`--kinds admission,graduation`): its default, spelled out
        else:
            continue
        argv += [*action.option_strings[-1:], value]
    return argv


COMMANDS = _command_paths(build_parser())
STARTUP = _startup_modules()


def _probe(code: str, argv: list[str], tmp_path: Path, env: dict[str, str] | None = None) -> object:
    out = tmp_path / "modules.json"
    res = subprocess.run([sys.executable, "-c", code, str(out), *argv], capture_output=True, text=True, timeout=600,
                         env={**os.environ, **(env or {})})
    assert res.returncode == 0 and out.exists(), f"probe failed (exit {res.returncode}):\n{res.stdout}\n{res.stderr}"
    return json.loads(out.read_text())


def _not_allowed(modules: list[str]) -> list[str]:
    bad = []
    for m in modules:
        top = m.split(".")[0]
        if m in STARTUP or top in sys.stdlib_module_names:
            continue
        if top == "verifier" and (m == "verifier" or any(m == p or m.startswith(p + ".") for p in ALLOWED_VERIFIER)):
            continue
        bad.append(m)
    return bad


def test_every_command_is_walked() -> None:
    # A walk that missed the nested groups would pass vacuously.
    for path in [("compare",), ("photos", "check"), ("photos", "fix"), ("photos", "import"), ("db", "upgrade"),
                 ("roster", "reconcile"), ("roster", "import"), ("batch", "compare"), ("intake", "check"), ("calibrate",), ("serve",), ("keys", "create")]:
        assert path in COMMANDS


@pytest.mark.parametrize("argv", [["--version"]] + [[*path, "--help"] for path in COMMANDS], ids=lambda a: " ".join(a))
def test_help_and_version_load_only_the_standard_library_and_the_cli(argv: list[str], tmp_path: Path) -> None:
    modules = _probe(HELP_PROBE, argv, tmp_path)
    assert "verifier.cli.main" in modules
    bad = _not_allowed(modules)
    tops = sorted({m.split(".")[0] for m in bad if not m.startswith("verifier")})
    assert not bad, f"`verifier {' '.join(argv)}` loads third-party {tops} and {[m for m in bad if m.startswith('verifier')]}"


@pytest.mark.parametrize("path", [p for p in COMMANDS if p and not _is_group(_subparser(p))], ids=" ".join)
def test_parsing_each_command_s_arguments_loads_only_the_standard_library_and_the_cli(path: tuple[str, ...], tmp_path: Path) -> None:
    # The arguments a user types (types converted, choices checked), not just --help: a type= converter or a default
    # that imports numpy, SQLAlchemy or the models would slow every run of the command and fails here.
    argv = _full_argv(path)
    res = _probe(PARSE_PROBE, argv, tmp_path)
    assert res["parsed"], f"`verifier {' '.join(argv)}` did not parse to a command (the probe proves nothing)"
    bad = _not_allowed(res["modules"])
    tops = sorted({m.split(".")[0] for m in bad if not m.startswith("verifier")})
    assert not bad, f"parsing `verifier {' '.join(argv)}` loads third-party {tops} and {[m for m in bad if m.startswith('verifier')]}"


def test_compare_with_a_warm_model_cache_does_not_load_onnx(faces: Path, tmp_path: Path) -> None:
    a, b = str(faces / "obama_1.jpg"), str(faces / "obama_2.jpg")
    env = {"VERIFIER_CACHE_DIR": str(tmp_path / "cache")}
    cold = _probe(MAIN_PROBE, ["compare", a, b], tmp_path, env)
    assert cold["rc"] == 0, "obama_1 and obama_2 should match"
    assert "onnx" in cold["modules"], "an empty cache repairs the models with onnx (else this test proves nothing)"
    warm = _probe(MAIN_PROBE, ["compare", a, b], tmp_path, env)
    assert warm["rc"] == 0
    loaded = sorted({m.split(".")[0] for m in warm["modules"]} & set(NOT_FOR_COMPARE))
    assert not loaded, f"`verifier compare A B` with the repaired models cached loads {loaded}"
