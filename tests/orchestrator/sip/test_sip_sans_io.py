"""The SIP core is sans-IO: no module of orchestrator.sip may import an I/O,
clock, thread or unseeded-randomness module (DESIGN.md rule 3)."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import orchestrator.sip

FORBIDDEN = {"trio", "socket", "time", "asyncio", "threading", "random", "select", "selectors", "os",
             "secrets", "multiprocessing", "subprocess"}
PACKAGE_DIR = Path(orchestrator.sip.__file__).parent


def test_no_module_imports_io_clock_threads_or_global_randomness_statically():
    offenders = []
    for path in sorted(PACKAGE_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert offenders == []


def test_every_module_imports_with_the_forbidden_modules_blocked():
    """In a fresh interpreter where importing any forbidden module fails."""
    modules = [m.name for m in pkgutil.iter_modules([str(PACKAGE_DIR)], "orchestrator.sip.")]
    assert len(modules) >= 14
    # The standard-library modules we use may import what they like (datetime loads time, for
    # one): import them first, then drop the forbidden modules and block any new import of them.
    stdlib = sorted({name for path in PACKAGE_DIR.glob("*.py") for node in ast.walk(ast.parse(path.read_text()))
                     for name in ([a.name for a in node.names] if isinstance(node, ast.Import) else
                                  [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])})
    blocked = sorted(FORBIDDEN - {"os"})  # the interpreter itself needs os to start
    script = f"""
import sys, importlib, importlib.abc
for name in {stdlib!r}:
    importlib.import_module(name)
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split('.')[0] in {blocked!r}:
            raise ImportError('sans-IO core must not import ' + name)
for name in {blocked!r}:
    sys.modules.pop(name, None)
sys.meta_path.insert(0, Block())
import importlib
for m in {modules!r}:
    importlib.import_module(m)
leaked = sorted(n for n in sys.modules if n.split('.')[0] in {blocked!r})
print('LEAKED', leaked)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                         cwd=PACKAGE_DIR.parent.parent.parent)
    assert out.stdout.strip() == "LEAKED []", out.stderr
