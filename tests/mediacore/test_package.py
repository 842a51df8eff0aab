"""The mediacore package surface: every advertised name resolves, typed and documented."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import mediacore

PKG = Path(mediacore.__file__).parent


def test_contract_names_resolve():
    # ../shared/CONTRACT.md names these.
    from mediacore import Engine, JitterBuffer, Mixer
    from mediacore.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
    from mediacore.rtcp import parse
    from mediacore.rtp import RtpPacket

    assert callable(RtpPacket.parse) and callable(RtpPacket.serialize) and callable(parse)
    assert all(callable(f) for f in (ulaw_encode, ulaw_decode, alaw_encode, alaw_decode))
    assert Engine.__module__ == "mediacore.engine"
    assert JitterBuffer.__module__ == "mediacore.jitter" and Mixer.__module__ == "mediacore.mixer"


def test_every_submodule_has_all_and_docs():
    for name in mediacore.__all__:
        obj = getattr(mediacore, name)
        if name[0].islower():
            assert obj.__doc__, f"mediacore.{name} has no docstring"
            assert hasattr(obj, "__all__"), f"mediacore.{name} has no __all__"
            for exported in obj.__all__:
                assert hasattr(obj, exported), f"mediacore.{name}.{exported} is in __all__ but missing"


def test_native_modules_have_stubs_and_the_package_is_typed():
    assert (PKG / "py.typed").exists()
    native = sorted(p.name.split(".")[0] for p in PKG.glob("_*.so"))
    assert native, "no native modules built"
    missing = [n for n in native if not (PKG / f"{n}.pyi").exists()]
    assert not missing, f"native modules without a .pyi stub: {missing}"


def test_import_is_lazy():
    code = "import sys, mediacore; print(sorted(m for m in sys.modules if m.startswith('mediacore.')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
