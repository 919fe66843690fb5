"""Roster caps: zip bombs, huge cells and millions of rows are refused quickly, with a reason code and bounded memory.

The library is checked directly; the real CLI in a fresh interpreter whose peak RSS is compared with the
same command on a small roster (a refused bomb must cost about what a normal roster costs).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from bombs import xlsx_huge_shared_string, xlsx_lying_sizes, xlsx_many_rows, xlsx_many_strings
from openpyxl import Workbook

from verifier.common.reasons import REASONS, VerifierError
from verifier.common.settings import Settings
from verifier.photos.roster import RosterLimits, load_roster

ROOT = Path(__file__).resolve().parents[1]
DEFAULTS = RosterLimits.from_settings(Settings())
MB = 1024 * 1024
# Peak RSS a refused bomb may add over the same command on a two-student roster.
RSS_SLACK_MB = 120


def _code(path: Path, limits: RosterLimits | None = None) -> tuple[str, float]:
    t0 = time.monotonic()
    with pytest.raises(VerifierError) as err:
        load_roster(path, limits=limits or DEFAULTS)
    return err.value.reason.code, time.monotonic() - t0


@pytest.fixture(scope="module")
def bombs(tmp_path_factory) -> dict[str, Path]:
    """The issue's two bombs (scaled to what the caps must catch) and a string under the unzip cap but over the cell cap."""
    tmp = tmp_path_factory.mktemp("bombs")
    return {
        "shared_string": xlsx_huge_shared_string(tmp / "ss.xlsx", 300 * MB),
        "long_cell": xlsx_huge_shared_string(tmp / "cell.xlsx", 20 * MB),
        "rows": xlsx_many_rows(tmp / "rows.xlsx", 2_000_000),
    }


def test_bombs_are_small_files(bombs: dict[str, Path]) -> None:
    """The crafted files really are bombs: each under 2 MB (the API's body cap), so only the roster caps stop them."""
    assert all(p.stat().st_size < 2 * MB for p in bombs.values()), {k: p.stat().st_size for k, p in bombs.items()}


def test_huge_shared_string_is_refused_from_the_central_directory(bombs: dict[str, Path]) -> None:
    code, seconds = _code(bombs["shared_string"])
    assert code == "ROSTER_UNZIPPED_TOO_LARGE" and seconds < 2


def test_long_shared_string_under_the_unzip_cap_is_refused_while_streaming(bombs: dict[str, Path]) -> None:
    code, seconds = _code(bombs["long_cell"])
    assert code == "ROSTER_CELL_TOO_LONG" and seconds < 5


def test_zip_headers_that_understate_a_part_are_not_believed(tmp_path: Path) -> None:
    """Headers claiming 100 bytes for 5 MB of shared strings: inflating stops at the claim and the damage is named."""
    path = xlsx_lying_sizes(tmp_path / "lie.xlsx", 5 * MB, 100)
    assert _code(path)[0] == "ROSTER_UNREADABLE"


def test_two_million_rows_are_refused_before_openpyxl_walks_them(bombs: dict[str, Path]) -> None:
    code, seconds = _code(bombs["rows"])
    assert code == "ROSTER_TOO_MANY_ROWS" and seconds < 5


def test_a_normal_xlsx_with_shared_strings_still_loads(tmp_path: Path) -> None:
    wb = Workbook()
    wb.active.append(["考生号", "姓名", "学院"])
    for i in range(50):
        wb.active.append([f"2021{i:010d}", "张三", "文学院"])
    wb.save(tmp_path / "r.xlsx")
    assert len(load_roster(tmp_path / "r.xlsx", limits=DEFAULTS).students) == 50


def test_xlsx_caps_are_configurable(tmp_path: Path) -> None:
    wb = Workbook()
    wb.active.append(["考生号", "姓名", *[f"c{i}" for i in range(10)]])
    for i in range(30):
        wb.active.append([f"2021{i:010d}", "张三" * 5])
    wb.save(tmp_path / "r.xlsx")
    limits = RosterLimits.from_settings(Settings.from_env({"VERIFIER_ROSTER_MAX_ROWS": "20"}))
    assert _code(tmp_path / "r.xlsx", limits)[0] == "ROSTER_TOO_MANY_ROWS"
    limits = RosterLimits.from_settings(Settings.from_env({"VERIFIER_ROSTER_MAX_COLUMNS": "8"}))
    assert _code(tmp_path / "r.xlsx", limits)[0] == "ROSTER_TOO_MANY_COLUMNS"
    limits = RosterLimits.from_settings(Settings.from_env({"VERIFIER_ROSTER_MAX_CELL": "8"}))
    assert _code(tmp_path / "r.xlsx", limits)[0] == "ROSTER_CELL_TOO_LONG"
    limits = RosterLimits.from_settings(Settings.from_env({"VERIFIER_ROSTER_MAX_BYTES": "1000"}))
    assert _code(tmp_path / "r.xlsx", limits)[0] == "ROSTER_TOO_LARGE"
    assert len(load_roster(tmp_path / "r.xlsx", limits=DEFAULTS).students) == 30


def test_too_many_shared_strings_are_refused(tmp_path: Path) -> None:
    """A million and one short strings fit the unzip cap; past the count cap they are refused before openpyxl builds them."""
    code, seconds = _code(xlsx_many_strings(tmp_path / "s.xlsx", DEFAULTS.max_strings + 1))
    assert code == "ROSTER_TOO_MANY_STRINGS" and seconds < 10
    limits = RosterLimits.from_settings(Settings.from_env({"VERIFIER_ROSTER_MAX_STRINGS": "1000"}))
    assert _code(xlsx_many_strings(tmp_path / "t.xlsx", 1001), limits)[0] == "ROSTER_TOO_MANY_STRINGS"
    assert load_roster(xlsx_many_strings(tmp_path / "u.xlsx", 1000), limits=limits).students


def test_row_numbers_that_skip_ahead_count_as_rows(tmp_path: Path) -> None:
    """openpyxl fills the gap before <row r="1000000"> with empty rows; the cap counts them."""
    wb = Workbook()
    wb.active.append(["考生号", "姓名"])
    wb.active.cell(row=5_000, column=1, value="x")
    wb.save(tmp_path / "r.xlsx")
    limits = RosterLimits.from_settings(Settings.from_env({"VERIFIER_ROSTER_MAX_ROWS": "1000"}))
    assert _code(tmp_path / "r.xlsx", limits)[0] == "ROSTER_TOO_MANY_ROWS"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("考生号,姓名\n" + "20210000000001,张三\n" * 300_001, "ROSTER_TOO_MANY_ROWS"),
        ("考生号,姓名\n" + "\n" * 300_001, "ROSTER_TOO_MANY_ROWS"),
        ("考生号,姓名\n20210000000001," + "张" * 5_000 + "\n", "ROSTER_CELL_TOO_LONG"),
        ("考生号,姓名\n20210000000001," + "张" * 200_000 + "\n", "ROSTER_CELL_TOO_LONG"),
        ("考生号,姓名" + ",x" * 300 + "\n20210000000001,张三\n", "ROSTER_TOO_MANY_COLUMNS"),
    ],
    ids=["rows", "blank-rows", "long-cell", "cell-past-csv-field-limit", "columns"],
)
def test_csv_rosters_have_the_same_row_and_cell_caps(tmp_path: Path, body: str, code: str) -> None:
    (tmp_path / "r.csv").write_text(body, encoding="utf-8")
    assert _code(tmp_path / "r.csv")[0] == code


def test_every_cap_code_is_in_the_table() -> None:
    for code in ("ROSTER_TOO_LARGE", "ROSTER_UNZIPPED_TOO_LARGE", "ROSTER_TOO_MANY_STRINGS", "ROSTER_TOO_MANY_ROWS", "ROSTER_TOO_MANY_COLUMNS", "ROSTER_CELL_TOO_LONG"):
        assert REASONS[code].zh and REASONS[code].en


_MEASURED = (
    "import resource, sys\n"
    "from verifier.cli.main import main\n"
    "try:\n"
    "    code = main(sys.argv[1:])\n"
    "finally:\n"
    "    print('PEAK_RSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def _cli(args: list[str], home: Path) -> tuple[int, str, float, float]:
    """Run `verifier <args>` in a fresh interpreter: exit code, stderr, seconds, peak RSS in MB."""
    env = {**os.environ, "VERIFIER_HOME": str(home), "VERIFIER_ID_KEY": "test-id-key-0123456789abcdef"}
    t0 = time.monotonic()
    res = subprocess.run([sys.executable, "-c", _MEASURED, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    seconds = time.monotonic() - t0
    peak = [int(line.split()[1]) for line in res.stderr.splitlines() if line.startswith("PEAK_RSS_KB")]
    assert peak, res.stderr
    return res.returncode, res.stderr, seconds, peak[0] / 1024


@pytest.mark.parametrize("command", ["import", "reconcile"])
def test_cli_roster_commands_refuse_the_bombs_with_bounded_memory(bombs: dict[str, Path], tmp_path: Path, command: str) -> None:
    small = tmp_path / "small.xlsx"
    wb = Workbook()
    wb.active.append(["考生号", "姓名"])
    wb.active.append(["20210000000001", "张三"])
    wb.save(small)
    (tmp_path / "photos").mkdir()

    def argv(roster: Path) -> list[str]:
        return ["roster", "import", str(roster), "--json"] if command == "import" else ["roster", "reconcile", "--roster", str(roster), str(tmp_path / "photos")]

    rc, err, _, baseline = _cli(argv(small), tmp_path / "home")
    assert rc == 0, err
    for kind, code in (("shared_string", "ROSTER_UNZIPPED_TOO_LARGE"), ("long_cell", "ROSTER_CELL_TOO_LONG"), ("rows", "ROSTER_TOO_MANY_ROWS")):
        rc, err, seconds, peak = _cli(argv(bombs[kind]), tmp_path / "home")
        assert rc == 2 and code in err, (kind, rc, err)
        assert peak - baseline < RSS_SLACK_MB, (kind, peak, baseline)
        assert seconds < 60, (kind, seconds)
    if command == "import":
        out = subprocess.run([sys.executable, "-m", "verifier", "roster", "import", str(small), "--json"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                             env={**os.environ, "VERIFIER_HOME": str(tmp_path / "home"), "VERIFIER_ID_KEY": "test-id-key-0123456789abcdef"})
        assert json.loads(out.stdout)["counts"]["unchanged"] == 1, "the refused bombs left the store as it was"
