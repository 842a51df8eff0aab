"""Package metadata, and the shim that hands the native build to CMake.

CMakeLists.txt is the one source of build truth. This file declares one
extension per file in src/mediacore/bindings/ (``_NAME.cpp`` for pybind11,
``_NAME.pyx`` for Cython), runs a single CMake configure and build for all of
them, and lets setuptools place the results (``pip install .`` copies them into
the wheel; ``pip install -e .`` copies them next to the sources).

Environment knobs: ``CMAKE_ARGS`` (extra -D options, e.g.
``-DHOTLINE_WERROR=ON``), ``CMAKE_BUILD_PARALLEL_LEVEL``, ``HOTLINE_BUILD_DIR``.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
import sys
import sysconfig
from pathlib import Path

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent
BINDINGS = ROOT / "src" / "mediacore" / "bindings"


class CMakeExtension(Extension):
    """An extension whose sources CMake compiles; setuptools only places it."""

    def __init__(self, name: str) -> None:
        super().__init__(name, sources=[])


def native_module_names() -> list[str]:
    names = {p.stem for p in BINDINGS.glob("_*.cpp")} | {p.stem for p in BINDINGS.glob("_*.pyx")}
    return sorted(names)


class CMakeBuild(build_ext):
    def build_extensions(self) -> None:
        if not self.extensions:
            return
        # All modules share one output directory: the mediacore package.
        outdir = Path(self.get_ext_fullpath(self.extensions[0].name)).parent.resolve()
        outdir.mkdir(parents=True, exist_ok=True)
        # One CMake tree per interpreter (a venv's, pip's isolated build env's):
        # sharing one would reconfigure it back and forth between them.
        interpreter = hashlib.sha256(sys.executable.encode()).hexdigest()[:8]
        tag = f"{sysconfig.get_platform()}-{sys.implementation.cache_tag}-{interpreter}"
        build_dir = Path(os.environ.get("HOTLINE_BUILD_DIR", ROOT / "build" / f"cmake-{tag}"))
        build_dir.mkdir(parents=True, exist_ok=True)

        configure = [
            "cmake",
            "-S", str(ROOT),
            "-B", str(build_dir),
            f"-DPython_EXECUTABLE={sys.executable}",
            f"-DMEDIACORE_OUTPUT_DIR={outdir}",
            "-DCMAKE_BUILD_TYPE=Release",
        ]
        if _have("ninja") and not (build_dir / "CMakeCache.txt").exists():
            configure += ["-G", "Ninja"]
        configure += shlex.split(os.environ.get("CMAKE_ARGS", ""))
        subprocess.run(configure, check=True)

        build = ["cmake", "--build", str(build_dir)]
        jobs = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL") or str(os.cpu_count() or 2)
        build += ["--parallel", jobs]
        subprocess.run(build, check=True)

        missing = [e.name for e in self.extensions if not Path(self.get_ext_fullpath(e.name)).exists()]
        if missing:
            raise RuntimeError(f"CMake did not produce: {', '.join(missing)}")


def _have(program: str) -> bool:
    from shutil import which

    return which(program) is not None


setup(
    name="hotline",
    version="0.1.0",
    description="Hotline: an open-source call-centre platform (SIP B2BUA, native media core, ACD, IVR)",
    long_description=(ROOT / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    package_dir={"": "src"},
    packages=find_packages("src"),
    package_data={
        "mediacore": ["py.typed", "*.pyi"],
        "orchestrator": ["py.typed", "*.pyi", "**/*.json", "**/*.html", "**/*.js", "**/*.css"],
    },
    exclude_package_data={"mediacore": ["cpp/*", "bindings/*"]},
    ext_modules=[CMakeExtension(f"mediacore.{name}") for name in native_module_names()],
    cmdclass={"build_ext": CMakeBuild},
    install_requires=[
        "numpy>=1.26",
        "trio>=0.25",
        "opuslib>=3.0.1",
        "webrtcvad>=2.0.10",
        "pyyaml>=6.0",
        "sortedcontainers>=2.4",
        "h11>=0.14",
        "wsproto>=1.2",
        "cryptography>=42",
        "psycopg[binary]>=3.2",
    ],
    extras_require={
        "test": ["pytest>=8", "pytest-timeout", "hypothesis>=6.100", "pytest-benchmark>=4", "pesq", "scipy"],
    },
    entry_points={"console_scripts": ["hotline = orchestrator.cli:main"]},
    zip_safe=False,
)
