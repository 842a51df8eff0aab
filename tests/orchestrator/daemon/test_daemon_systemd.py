"""The systemd unit in packaging/systemd: systemd accepts it, it asks for what Hotline needs, and the
daemon keeps the Type=notify contract it relies on (READY=1 once everything listens, RELOADING=1
then READY=1 around a SIGHUP reload, STOPPING=1 when SIGTERM starts the drain)."""

from __future__ import annotations

import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from daemon_harness import ROOT, Serve, base_config, write_config

from orchestrator.daemon.config import load_config

pytestmark = [pytest.mark.timeout(120)]

UNIT = ROOT / "packaging" / "systemd" / "hotline.service"
HOTLINE = Path(sys.executable).parent / "hotline"


def directives(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        m = re.match(r"^([A-Za-z]+)=(.*)$", line.strip())
        if m:
            out.setdefault(m[1], []).append(m[2].strip())
    return out


def test_systemd_accepts_the_unit_with_the_real_executable(tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd)")
    assert HOTLINE.exists()
    unit = tmp_path / "hotline.service"
    text = UNIT.read_text()
    assert "/opt/hotline/.venv/bin/hotline" in text
    unit.write_text(text.replace("/opt/hotline/.venv/bin/hotline", str(HOTLINE)))
    out = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60,
                         check=False)
    # systemd-analyze names the unit on each problem (unknown keys, bad values, missing executables)
    problems = [line for line in (out.stdout + out.stderr).splitlines() if "hotline.service" in line]
    assert out.returncode == 0 and not problems, out.stdout + out.stderr


def test_the_unit_asks_for_what_the_daemon_needs(monkeypatch):
    unit = directives(UNIT.read_text())
    one = {k: v[-1] for k, v in unit.items()}
    assert one["Type"] == "notify" and one["NotifyAccess"] == "main"
    assert one["ExecStart"].endswith("hotline serve --config /etc/hotline/hotline.toml")
    assert one["ExecReload"] == "/bin/kill -HUP $MAINPID" and one["KillSignal"] == "SIGTERM"
    monkeypatch.chdir(ROOT)
    drain = load_config("etc/hotline.toml").drain_timeout
    assert float(one["TimeoutStopSec"]) > drain + 10  # room to drain, then finish recordings and flush
    assert (one["WorkingDirectory"], one["StateDirectory"]) == ("/var/lib/hotline", "hotline")
    assert one["User"] not in ("", "root") and "/var/lib/hotline" in one["ReadWritePaths"].split()
    assert (one["NoNewPrivileges"], one["ProtectSystem"], one["PrivateTmp"]) == ("yes", "strict", "yes")
    assert one["AmbientCapabilities"] == "CAP_NET_BIND_SERVICE"  # SIP on 5060 without root
    assert int(one["LimitNOFILE"]) >= 65536  # two sockets (RTP, RTCP) per leg, two legs per call


def test_the_daemon_speaks_sd_notify(tmp_path):
    state = tmp_path / "var"
    doc = base_config(state)
    config = write_config(tmp_path / "hotline.toml", doc)
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify"))
    notify.settimeout(30)
    daemon = Serve(config, doc, tmp_path / "serve.log")
    try:
        with pytest.MonkeyPatch.context() as env:
            env.setenv("NOTIFY_SOCKET", str(tmp_path / "notify"))
            daemon.start()

        def next_state() -> str:
            try:
                return notify.recv(4096).decode()
            except TimeoutError:
                raise AssertionError(f"no sd_notify message in 30 s:\n{daemon.tail()}") from None

        ready = next_state()
        assert ready.startswith("READY=1\nSTATUS=ready: sip udp 127.0.0.1:"), ready
        daemon.send(signal.SIGHUP)
        assert [next_state(), next_state()] == ["RELOADING=1", "READY=1"]
        daemon.send(signal.SIGTERM)
        assert next_state() == "STOPPING=1"
        assert daemon.wait(30) == 0, daemon.tail()
    finally:
        daemon.close()
        notify.close()
