"""Shared benchmark plumbing: machine description, peak memory of a process tree, docs sections."""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "BENCHMARKS.md"


def cores() -> int:
    """Cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def machine_line() -> str:
    """Cores, CPU model and ISA flags, kernel, Python and onnxruntime versions."""
    import onnxruntime

    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        info = ""
    m = re.search(r"model name\s*:\s*(.+)", info)
    cpu = m.group(1).strip() if m else "unknown CPU"
    isa = [f for f in ("avx2", "avx512f", "avx512_vnni", "amx_int8") if re.search(rf"\b{f}\b", info)]
    return (
        f"{cores()} cores, {cpu} ({', '.join(isa) or 'no AVX2 flag listed'}), Linux {platform.release()}, "
        f"Python {platform.python_version()}, onnxruntime {onnxruntime.__version__}"
    )


def load_average() -> str:
    """The 1/5/15-minute load averages, to say how busy the machine was."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def write_section(section: str) -> None:
    """Replace (or append) one `## ...` section of docs/BENCHMARKS.md; `section` starts with its heading line."""
    heading = section.splitlines()[0]
    text = DOC.read_text(encoding="utf-8") if DOC.exists() else (
        "# Benchmarks\n\nEach figure names the command that produced it; these machines are noisy.\n"
    )
    section = section.rstrip("\n") + "\n"
    start = text.find(heading + "\n")
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        nxt = text.find("\n## ", start + len(heading))
        text = text[:start] + section + ("\n" + text[nxt + 1 :] if nxt >= 0 else "")
    DOC.write_text(text, encoding="utf-8")
    print(f"wrote {heading!r} in {DOC}")


class TreeMemory:
    """Samples the summed RSS of a process and all its descendants every `interval` s; keeps the peak."""

    def __init__(self, pid: int | None = None, interval: float = 0.2):
        import psutil

        self.proc = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self.peak_processes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _tree(self) -> list:
        return [self.proc, *self.proc.children(recursive=True)]

    def sample(self) -> int:
        """Summed RSS now (bytes); updates the peak and how many processes it covered."""
        import psutil

        total, count = 0, 0
        for p in self._tree():
            try:
                total += p.memory_info().rss
                count += 1
            except psutil.Error:
                pass
        if total > self.peak:
            self.peak, self.peak_processes = total, count
        return total

    def pss(self) -> int:
        """Summed proportional set size now (shared pages counted once), bytes."""
        import psutil

        total = 0
        for p in self._tree():
            try:
                total += p.memory_full_info().pss
            except psutil.Error:
                pass
        return total

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sample()
            except Exception:
                return

    def __enter__(self) -> "TreeMemory":
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def today() -> str:
    return dt.date.today().isoformat()

