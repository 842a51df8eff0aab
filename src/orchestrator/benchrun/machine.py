"""What a result was measured on: the machine, the versions of everything compared, the load."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
import re
import shutil
import subprocess
from pathlib import Path

__all__ = ["find_root", "load_average", "machine_info", "versions"]


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages (a loaded machine makes numbers that are not final)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def find_root(start: Path | None = None) -> Path | None:
    """The source checkout: the first parent holding bench/conftest.py (from this file, then the cwd)."""
    candidates = [Path(__file__).resolve(), (start or Path.cwd()).resolve()]
    for c in candidates:
        for p in [c, *c.parents]:
            if (p / "bench" / "conftest.py").is_file():
                return p
    return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def _memory_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _virtualization() -> str | None:
    if shutil.which("systemd-detect-virt"):
        out = subprocess.run(["systemd-detect-virt"], capture_output=True, text=True, check=False, timeout=5)
        return out.stdout.strip() or None
    return None


def machine_info() -> dict:
    return {
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "kernel": platform.release(),
        "memory_bytes": _memory_bytes(),
        "virtualization": _virtualization(),
        "hostname": platform.node(),
    }


def _first_line_matching(cmd: list[str], pattern: str) -> str | None:
    if shutil.which(cmd[0]) is None:
        return None
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(pattern, out.stdout + out.stderr)
    return m.group(1).rstrip(".") if m else None


def _libopus() -> str | None:
    name = ctypes.util.find_library("opus")
    if not name:
        return None
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        return None
    lib.opus_get_version_string.restype = ctypes.c_char_p
    return lib.opus_get_version_string().decode()


def _git(root: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=False,
                             timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _module_version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def versions(root: Path | None) -> dict:
    """Versions of Hotline (git commit), the runtimes and the peers compared against (None: not installed)."""
    status = _git(root, "status", "--porcelain", "--untracked-files=no") if root else None
    return {
        "commit": _git(root, "rev-parse", "HEAD") if root else None,
        "commit_short": _git(root, "rev-parse", "--short", "HEAD") if root else None,
        "dirty": bool(status) if status is not None else None,
        "python": platform.python_version(),
        "numpy": _module_version("numpy"),
        "pytest_benchmark": _module_version("pytest-benchmark"),
        "libopus": _libopus(),
        "rtpengine": _first_line_matching(["rtpengine", "--version"], r"Version:\s*(\S+)"),
        "kamailio": _first_line_matching(["kamailio", "-v"], r"version:\s*kamailio\s+(\S+)"),
        "sipp": _first_line_matching(["sipp", "-v"], r"SIPp\s+(v[\w.\-]+)"),
        "perf": _first_line_matching(["perf", "--version"], r"perf version\s+(\S+)"),
        "kernel": platform.release(),
        "cpu": _cpu_model(),
    }
