"""No write replaces a device, FIFO, symlink or folder: the shared writer, and each kind of --out through the CLI.

Every test writes only inside its own temporary folder, except to /dev/null, which each test checks is still
the character device afterwards (the suite once turned it into a regular file).
"""

from __future__ import annotations

import json
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from verifier.cli import main as cli
from verifier.common.files import OutputFile, create_exclusive, open_output, write_output
from verifier.common.reasons import VerifierError

DEVNULL = Path("/dev/null")


@pytest.fixture(autouse=True)
def devnull_stays_a_device() -> Iterator[None]:
    yield
    st = os.lstat(DEVNULL)
    assert stat.S_ISCHR(st.st_mode), "/dev/null is no longer a character device"
    assert stat.S_IMODE(st.st_mode) == 0o666


class FifoReader:
    """A FIFO in the test's folder with a reader thread collecting what is written to it."""

    def __init__(self, path: Path):
        os.mkfifo(path, 0o600)
        self.path, self.data = path, b""
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        with open(self.path, "rb") as fh:
            self.data = fh.read()

    def join(self) -> bytes:
        self._thread.join(timeout=30)
        assert not self._thread.is_alive(), "the writer never closed the FIFO"
        return self.data


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


# --- the shared writer ------------------------------------------------------------------------------------


def test_missing_and_regular_targets_are_written_atomically_0600(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out.bin"
    write_output(target, b"one")
    assert target.read_bytes() == b"one" and _mode(target) == 0o600 and _mode(target.parent) == 0o700
    write_output(target, b"two")
    assert target.read_bytes() == b"two"
    with pytest.raises(RuntimeError), open_output(target) as fh:
        fh.write(b"half")
        raise RuntimeError("crash mid-write")
    assert target.read_bytes() == b"two"  # the old file, whole
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.bin"]  # no temporary left


def test_dev_null_is_written_in_place(tmp_path: Path) -> None:
    write_output(DEVNULL, b"x" * 10_000)
    with open_output(DEVNULL, "w", encoding="utf-8") as fh:
        fh.write("文本")
    assert not any(p.name.startswith(".null.") for p in DEVNULL.parent.iterdir())


def test_fifo_is_written_in_place(tmp_path: Path) -> None:
    fifo = FifoReader(tmp_path / "pipe")
    write_output(fifo.path, b"through the pipe")
    assert fifo.join() == b"through the pipe"
    assert stat.S_ISFIFO(os.lstat(fifo.path).st_mode)


def test_streaming_writer_to_fifo(tmp_path: Path) -> None:
    fifo = FifoReader(tmp_path / "pipe")
    out = OutputFile(fifo.path, "w", encoding="utf-8")
    out.fh.write("a,b\n")
    out.commit()
    assert fifo.join() == b"a,b\n" and stat.S_ISFIFO(os.lstat(fifo.path).st_mode)


def test_symlink_refused_unless_followed(tmp_path: Path) -> None:
    real = tmp_path / "real.csv"
    real.write_bytes(b"keep")
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    with pytest.raises(VerifierError) as exc:
        write_output(link, b"new")
    assert exc.value.reason.code == "OUTPUT_IS_SYMLINK"
    assert real.read_bytes() == b"keep" and link.is_symlink()
    write_output(link, b"new", follow_symlinks=True)
    assert link.is_symlink() and os.readlink(link) == str(real) and real.read_bytes() == b"new"
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "not-yet")
    write_output(dangling, b"made", follow_symlinks=True)
    assert dangling.is_symlink() and (tmp_path / "not-yet").read_bytes() == b"made"


def test_symlink_to_dev_null_followed_writes_the_device(tmp_path: Path) -> None:
    link = tmp_path / "null-link"
    link.symlink_to(DEVNULL)
    write_output(link, b"gone", follow_symlinks=True)
    assert link.is_symlink()


def test_folder_and_socket_refused(tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    with pytest.raises(VerifierError) as exc:
        write_output(folder, b"x")
    assert exc.value.reason.code == "OUTPUT_IS_DIRECTORY" and folder.is_dir()
    import socket

    sock_path = tmp_path / "s.sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(sock_path))
        with pytest.raises(VerifierError) as exc:
            write_output(sock_path, b"x")
    assert exc.value.reason.code == "OUTPUT_NOT_A_FILE" and stat.S_ISSOCK(os.lstat(sock_path).st_mode)


def test_stdout_dash(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    write_output("-", b"to stdout\n")
    assert capsysbinary.readouterr().out == b"to stdout\n"


def test_create_exclusive_never_replaces(tmp_path: Path) -> None:
    key = tmp_path / "k" / "id.key"
    assert create_exclusive(key, b"first") and key.read_bytes() == b"first" and _mode(key) == 0o600
    assert not create_exclusive(key, b"second") and key.read_bytes() == b"first"
    link = tmp_path / "k" / "link.key"
    link.symlink_to(DEVNULL)
    assert not create_exclusive(link, b"x") and link.is_symlink()
    assert sorted(p.name for p in key.parent.iterdir()) == ["id.key", "link.key"]


# --- through the CLI: a file output (export, openapi) and a folder output (photos check) ---------------------


@pytest.fixture
def migrated(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'home' / 'verifier.db'}"
    assert cli.main(["db", "upgrade", "--db", url]) == 0
    return url


def _export(url: str, out: str | Path, *extra: str) -> int:
    return cli.main([*extra, "export", "students", "--format", "csv", "--out", str(out), "--db", url])


def test_cli_export_to_each_kind_of_target(tmp_path: Path, migrated: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert _export(migrated, DEVNULL) == 0
    fifo = FifoReader(tmp_path / "pipe")
    assert _export(migrated, fifo.path) == 0
    assert fifo.join().startswith("\ufeff".encode()) and stat.S_ISFIFO(os.lstat(fifo.path).st_mode)

    real = tmp_path / "real.csv"
    real.write_text("keep")
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    capsys.readouterr()
    assert _export(migrated, link) == 2
    assert "OUTPUT_IS_SYMLINK" in capsys.readouterr().err and real.read_text() == "keep" and link.is_symlink()
    assert _export(migrated, link, "--follow-symlinks") == 0
    assert link.is_symlink() and real.read_text(encoding="utf-8-sig").startswith("考生号")
    assert "VERIFIER_FOLLOW_SYMLINKS" not in os.environ  # the option lasts for one command

    folder = tmp_path / "folder"
    folder.mkdir()
    assert _export(migrated, folder) == 2
    assert "OUTPUT_IS_DIRECTORY" in capsys.readouterr().err and folder.is_dir() and not any(folder.iterdir())


def test_cli_export_to_stdout(migrated: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert _export(migrated, "-") == 0
    captured = capsys.readouterr()
    assert captured.out.lstrip("\ufeff").startswith("考生号") and "rows -> standard output" in captured.err


def test_cli_openapi_to_each_kind_of_target(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["openapi", "--out", str(DEVNULL)]) == 0
    fifo = FifoReader(tmp_path / "pipe")
    assert cli.main(["openapi", "--out", str(fifo.path)]) == 0
    assert json.loads(fifo.join())["openapi"].startswith("3.")
    link = tmp_path / "api.json"
    link.symlink_to(tmp_path / "elsewhere.json")
    assert cli.main(["openapi", "--out", str(link)]) == 2
    assert not (tmp_path / "elsewhere.json").exists() and link.is_symlink()
    assert cli.main(["openapi", "--out", str(tmp_path)]) == 2
    assert "OUTPUT_IS_DIRECTORY" in capsys.readouterr().err


def test_cli_report_folder_outputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photo = tmp_path / "21110101000001.jpg"
    photo.write_bytes(b"not a jpeg")
    # A folder output pointed at /dev/null or a FIFO is refused with a reason; nothing is replaced.
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo, 0o600)
    for target in (DEVNULL, fifo):
        assert cli.main(["photos", "check", str(photo), "--spec-only", "--out", str(target)]) == 2
        assert "OUTPUT_NOT_WRITABLE" in capsys.readouterr().err
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    # A report file planted as a symlink inside the folder is not written through.
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    (out / "report.csv").symlink_to(victim)
    assert cli.main(["photos", "check", str(photo), "--spec-only", "--out", str(out)]) == 2
    assert "OUTPUT_IS_SYMLINK" in capsys.readouterr().err
    assert victim.read_text() == "keep" and (out / "report.csv").is_symlink()
    assert not any(p.name.startswith(".") for p in out.iterdir())  # no temporary left behind
