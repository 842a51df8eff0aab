"""Native self-checks and bounded fuzzing under AddressSanitizer + UndefinedBehaviorSanitizer.

Builds ``build/native-asan`` with clang (incrementally: the directory is reused
between runs) with ``HOTLINE_SANITIZE``, ``HOTLINE_NATIVE_CHECKS`` and
``HOTLINE_FUZZ`` on and the Python modules off, then:

- runs every ``tests/native/check_*.cpp`` program: it must exit 0 and print no
  sanitizer report;
- runs every ``tests/fuzz/fuzz_*.cpp`` libFuzzer target for a bounded time
  (``HOTLINE_FUZZ_SECONDS``, default 10), seeded from
  ``tests/fuzz/corpus/<target>/`` when that folder exists, and requires a clean
  exit: no crash, no sanitizer finding, no leak, no timeout.

Each program is its own test (parametrized by name), and each is built on its
own, so a broken target fails only its test and names its file. New files are
picked up by glob; nothing here needs editing when a unit adds a target.

Inputs that libFuzzer finds go to a temporary folder, never into the seed
corpus; a crashing input is kept under pytest's tmp dir and its path is in the
failure message, with the command that replays it.

Knobs (environment): ``HOTLINE_FUZZ_SECONDS`` (per fuzz target, default 10),
``HOTLINE_NATIVE_JOBS`` (build parallelism, default 2), ``HOTLINE_NATIVE_BUILD_DIR``
(default ``build/native-asan``).

Skips (with the reason) only when clang/clang++ are not installed.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = [pytest.mark.native, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("HOTLINE_NATIVE_BUILD_DIR", ROOT / "build" / "native-asan"))
LOCK = BUILD.parent / (BUILD.name + ".lock")
CHECK_SOURCES = sorted((ROOT / "tests" / "native").glob("check_*.cpp"))
FUZZ_SOURCES = sorted((ROOT / "tests" / "fuzz").glob("fuzz_*.cpp"))
CORPUS = ROOT / "tests" / "fuzz" / "corpus"
FUZZ_SECONDS = int(os.environ.get("HOTLINE_FUZZ_SECONDS", "10"))
JOBS = os.environ.get("HOTLINE_NATIVE_JOBS", "2")

# What a sanitizer or libFuzzer prints when it finds something. UBSan is built
# with -fno-sanitize-recover (it aborts), but a report is a failure even if a
# program somehow exits 0 after it.
FINDINGS = (
    "ERROR: AddressSanitizer",
    "ERROR: LeakSanitizer",
    "runtime error:",
    "UndefinedBehaviorSanitizer",
    "ERROR: libFuzzer",
    "==ERROR:",
    "SUMMARY: AddressSanitizer",
)


def _sanitizer_env() -> dict[str, str]:
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = ":".join(
        [
            "detect_leaks=1",
            "halt_on_error=1",
            "abort_on_error=0",
            "strict_string_checks=1",
            "detect_stack_use_after_return=1",
            "check_initialization_order=1",
            "strict_init_order=1",
        ]
    )
    env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
    symbolizer = shutil.which("llvm-symbolizer") or shutil.which("llvm-symbolizer-14")
    if symbolizer:
        env["ASAN_SYMBOLIZER_PATH"] = symbolizer
    return env


@contextlib.contextmanager
def _build_lock():
    """Serialize configure/build of the shared build dir between pytest processes."""
    LOCK.parent.mkdir(parents=True, exist_ok=True)
    with open(LOCK, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _tail(text: str, lines: int = 60) -> str:
    return "\n".join(text.splitlines()[-lines:])


def _cmake(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(["cmake", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def native_build() -> Path:
    """Configure build/native-asan (clang, ASan+UBSan, checks, fuzzers) and build the core."""
    cc, cxx = shutil.which("clang"), shutil.which("clang++")
    if not (cc and cxx):
        pytest.skip("clang/clang++ not installed: the ASan/UBSan/libFuzzer harness needs clang")
    if not shutil.which("cmake"):
        pytest.fail("cmake not found on PATH (the .venv installs it with requirements.txt)")
    configure = [
        "-S",
        str(ROOT),
        "-B",
        str(BUILD),
        f"-DCMAKE_C_COMPILER={cc}",
        f"-DCMAKE_CXX_COMPILER={cxx}",
        "-DCMAKE_BUILD_TYPE=RelWithDebInfo",
        # -O1 is what the sanitizers recommend; assert() stays on (no NDEBUG).
        "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O1 -g",
        "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g",
        "-DHOTLINE_PYTHON=OFF",
        "-DHOTLINE_WERROR=ON",
        "-DHOTLINE_SANITIZE=ON",
        "-DHOTLINE_NATIVE_CHECKS=ON",
        "-DHOTLINE_FUZZ=ON",
    ]
    if not (BUILD / "CMakeCache.txt").exists() and shutil.which("ninja"):
        configure += ["-G", "Ninja"]
    with _build_lock():
        r = _cmake(configure, timeout=300)
        if r.returncode != 0:
            pytest.fail(f"configuring {BUILD} failed:\n{_tail(r.stdout + r.stderr)}")
        r = _cmake(["--build", str(BUILD), "--parallel", JOBS, "--target", "mediacore_core"], timeout=900)
        if r.returncode != 0:
            pytest.fail(
                "building mediacore_core (src/mediacore/cpp/*.cpp) with clang + ASan/UBSan failed; "
                f"the error names the file:\n{_tail(r.stdout + r.stderr)}"
            )
    return BUILD


def _build_target(build: Path, name: str, source: Path) -> Path:
    with _build_lock():
        r = _cmake(["--build", str(build), "--parallel", JOBS, "--target", name], timeout=900)
    if r.returncode != 0:
        pytest.fail(f"{name} ({source.relative_to(ROOT)}) failed to build:\n{_tail(r.stdout + r.stderr)}")
    exe = build / name
    assert exe.is_file(), f"{name} built but {exe} is missing"
    return exe


def _assert_clean(name: str, proc: subprocess.CompletedProcess, extra: str = "") -> None:
    output = proc.stdout + proc.stderr
    findings = [f for f in FINDINGS if f in output]
    assert proc.returncode == 0 and not findings, (
        f"{name} exited {proc.returncode}"
        + (f" with sanitizer/libFuzzer findings {findings}" if findings else "")
        + f"{extra}\n--- output (tail) ---\n{_tail(output, 80)}"
    )


@pytest.mark.parametrize("source", CHECK_SOURCES, ids=[p.stem for p in CHECK_SOURCES])
def test_check_program(native_build: Path, source: Path, tmp_path: Path) -> None:
    exe = _build_target(native_build, source.stem, source)
    proc = subprocess.run(
        [str(exe)], cwd=tmp_path, env=_sanitizer_env(), capture_output=True, text=True, timeout=240
    )
    _assert_clean(source.stem, proc)


@pytest.mark.parametrize("source", FUZZ_SOURCES, ids=[p.stem for p in FUZZ_SOURCES])
def test_fuzz_target(native_build: Path, source: Path, tmp_path: Path) -> None:
    name = source.stem
    exe = _build_target(native_build, name, source)
    work = tmp_path / "corpus"
    work.mkdir()
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    cmd = [
        str(exe),
        f"-max_total_time={FUZZ_SECONDS}",
        "-rss_limit_mb=1024",
        "-timeout=25",  # one input running over 25 s is a finding (hang)
        "-print_final_stats=1",
        f"-artifact_prefix={artifacts}/",
        str(work),  # new inputs land here, never in the seed corpus
    ]
    seeds = CORPUS / name
    if seeds.is_dir() and any(seeds.iterdir()):
        cmd.append(str(seeds))
    proc = subprocess.run(
        cmd, cwd=tmp_path, env=_sanitizer_env(), capture_output=True, text=True, timeout=FUZZ_SECONDS + 240
    )
    found = sorted(p.name for p in artifacts.iterdir())
    extra = ""
    if found:
        extra = (
            f"; inputs kept in {artifacts}: {found}; replay with "
            f"{exe.relative_to(ROOT)} {artifacts / found[0]}"
        )
    _assert_clean(name, proc, extra)
    assert "Done" in proc.stderr, f"{name} did not finish its run:\n{_tail(proc.stderr)}"
