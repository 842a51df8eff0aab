"""The routing policy is pure: no trio, socket, time, asyncio or threading (DESIGN rule 4).

Two checks: every ``import`` statement in orchestrator/acd/ (static), and a
fresh interpreter where those modules are removed and made unimportable
before ``import orchestrator.acd`` (catches indirect imports through
sortedcontainers or the standard library).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import orchestrator.acd

FORBIDDEN = ("trio", "socket", "time", "asyncio", "threading", "selectors")
ACD_DIR = Path(orchestrator.acd.__file__).parent
# The Trio service that runs the policy live (the thin shell DESIGN rule 4 allows); nothing
# in the policy modules imports it, and importing the package does not load it (checked below).
SERVICE_SHELLS = {"service.py"}


def _imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_no_forbidden_import_statement_in_the_package():
    files = sorted(p for p in ACD_DIR.glob("*.py") if p.name not in SERVICE_SHELLS)
    assert len(files) >= 5
    for path in files:
        bad = _imported_roots(path) & set(FORBIDDEN)
        assert not bad, f"{path.name} imports {sorted(bad)}"


BLOCKER = """
import sys
forbidden = set(sys.argv[1].split(","))
for name in list(sys.modules):
    if name.split(".")[0] in forbidden:
        del sys.modules[name]

class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in forbidden:
            raise ImportError("forbidden import: " + name)
        return None

sys.meta_path.insert(0, Block())
import orchestrator.acd
from orchestrator.acd import Acd, AgentConfig, QueueConfig
acd = Acd([QueueConfig(name="q")], [AgentConfig(id="a", queues={"q": 0})])
acd.agent_login("a", "d", 0.0)
acd.device_registered("d", 0.0)
out = acd.call_arrived("c", "q", 1.0)
assert any(type(o).__name__ == "Offer" for o in out)
print("ok", sorted(n for n in sys.modules if n.split(".")[0] in forbidden))
"""


def test_importing_and_routing_works_with_those_modules_unimportable():
    res = subprocess.run([sys.executable, "-c", BLOCKER, ",".join(FORBIDDEN)], capture_output=True, text=True,
                         check=False)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "ok []"


def test_the_blocker_does_catch_a_forbidden_import():
    code = BLOCKER.replace("import orchestrator.acd\n", "import orchestrator.acd\nimport threading\n", 1)
    res = subprocess.run([sys.executable, "-c", code, ",".join(FORBIDDEN)], capture_output=True, text=True,
                         check=False)
    assert res.returncode != 0 and "forbidden import: threading" in res.stderr
