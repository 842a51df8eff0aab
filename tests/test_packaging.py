"""`pip install .` (a real wheel, not the editable install) gives a working package."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BINDINGS = ROOT / "src" / "mediacore" / "bindings"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # No build isolation: the build tools are in .venv already (CI has no
    # reason to fetch them twice); the CMake tree is the same as `make build`'s.
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-build-isolation", "--no-deps", "-w", str(out),
                    str(ROOT)], check=True, timeout=1200)
    wheels = list(out.glob("hotline-*.whl"))
    assert len(wheels) == 1
    return wheels[0]


def test_wheel_holds_every_native_module_stub_and_package(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    modules = sorted({p.stem for p in BINDINGS.glob("_*.cpp")} | {p.stem for p in BINDINGS.glob("_*.pyx")})
    for m in modules:
        assert any(n.startswith(f"mediacore/{m}.") and n.endswith(".so") for n in names), f"{m} missing"
        assert f"mediacore/{m}.pyi" in names, f"{m}.pyi missing"
    assert "mediacore/py.typed" in names and "orchestrator/py.typed" in names
    for pkg in ("orchestrator/sip/__init__.py", "orchestrator/acd/__init__.py", "orchestrator/ivr/__init__.py"):
        assert pkg in names
    assert not any(n.endswith((".cpp", ".hpp", ".pyx", ".pxd")) for n in names), "sources leaked into the wheel"
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "hotline = orchestrator.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_installed_wheel_works_outside_the_source_tree(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, timeout=300)
    code = (
        "import mediacore, numpy as np\n"
        "assert mediacore.__file__.startswith(%r), mediacore.__file__\n"
        "from mediacore import g711, Engine\n"
        "assert list(g711.ulaw_decode(g711.ulaw_encode(np.array([0, 1000], np.int16)))) == [0, 988]\n"
        "with Engine(port_range=(47100, 47109), threads=1) as e:\n"
        "    assert e.create_leg(codec='PCMU').rtp_port == 47100\n"
        "print('ok')\n" % str(target)
    )
    env = dict(os.environ, PYTHONPATH=str(target))
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stdout + out.stderr
