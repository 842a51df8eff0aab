"""The assembled control plane: config tables, the admin token file, the wallboard URL, both listeners."""

from __future__ import annotations

import json
import stat
import tempfile
from pathlib import Path

import pytest
import trio
import websocket

from orchestrator.control import hash_token
from orchestrator.control.ctl import main as ctl
from orchestrator.control.plane import ControlConfig, ControlPlane
from tests.orchestrator.control.control_fakes import CallCentre


def test_config_tables_with_errors_naming_the_key():
    digest = hash_token("a-crm-token-0123456789abcdef")
    cfg = ControlConfig.from_toml({"socket": "/run/h.sock", "http": "0.0.0.0:9090", "queue_stats_interval": 2},
                                  {"token_file": "/etc/h/admin.token",
                                   "token": [{"name": "crm", "role": "crm", "sha256": digest}]})
    assert (cfg.socket, cfg.http_host, cfg.http_port, cfg.token_file, cfg.queue_stats_interval) == \
        ("/run/h.sock", "0.0.0.0", 9090, "/etc/h/admin.token", 2.0)
    assert cfg.tokens[0][0].role == "crm" and cfg.tokens[0][1] == digest
    default = ControlConfig.from_toml({}, {})
    assert (default.socket, default.http_host, default.http_port) == ("./var/hotline.sock", "127.0.0.1", 8080)
    assert ControlConfig.from_toml({"socket": "", "http": ""}, {}).http_host is None
    for control, auth, message in [
        ({"htp": "x"}, {}, "control.htp: unknown key"),
        ({"http": "localhost"}, {}, "control.http: must be HOST:PORT"),
        ({"http": "h:99999"}, {}, "control.http: must be HOST:PORT"),
        ({"queue_stats_interval": 0}, {}, "control.queue_stats_interval: must be a number of seconds > 0"),
        ({}, {"token": {"name": "x"}}, r"auth.token: must be an array of tables"),
        ({}, {"token": [{"name": "x", "role": "crm"}]}, r"auth.token\[0\].sha256: required"),
        ({}, {"token_file": 3}, "auth.token_file: must be a path string"),
    ]:
        with pytest.raises(ValueError, match=message):
            ControlConfig.from_toml(control, auth)


def test_the_plane_runs_both_listeners_with_the_admin_and_wallboard_tokens(tmp_path):
    cc = CallCentre(tmp_path)
    cc.login_all("9001")
    run_dir = Path(tempfile.mkdtemp(prefix="hl-"))
    crm_token = "a-configured-crm-token-0123456789"
    config = ControlConfig(socket=str(run_dir / "h.sock"), http_host="127.0.0.1", http_port=0,
                           token_file=str(tmp_path / "var" / "admin.token"),
                           tokens=((ControlConfig.from_toml({}, {"token": [
                               {"name": "crm", "role": "crm", "sha256": hash_token(crm_token)}]}).tokens[0]),),
                           queue_stats_interval=0.05)
    plane = ControlPlane(config, cc.services, hub=cc.hub, audit=cc.audit, clock=cc.clock)
    results = {}

    def clients(info):
        token_file = Path(config.token_file)
        assert info.admin_token_created and token_file.read_text().strip() == info.admin_token
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        assert info.wallboard_url == f"http://127.0.0.1:{info.http_port}/#token={info.wallboard_token}"
        import io

        out = io.StringIO()
        assert ctl(["--socket", str(info.socket), "--token-file", config.token_file, "auth.whoami"], stdout=out) == 0
        results["admin"] = json.loads(out.getvalue())
        ws = websocket.create_connection(f"ws://127.0.0.1:{info.http_port}/rpc", timeout=10)
        ws.send(json.dumps({"jsonrpc": "2.0", "method": "auth.login", "params": [info.wallboard_token], "id": 1}))
        results["viewer"] = json.loads(ws.recv())["result"]
        ws.send(json.dumps({"jsonrpc": "2.0", "method": "events.subscribe", "params": [["queue.*"]], "id": 2}))
        json.loads(ws.recv())
        trio.from_thread.run_sync(lambda: cc.calls.originate("+4499", "2000", queue="support"))
        results["stats"] = json.loads(ws.recv())          # published by the plane's queue.stats task
        ws.close()
        out = io.StringIO()
        ctl(["--url", f"ws://127.0.0.1:{info.http_port}/rpc", "--token", crm_token, "auth.whoami"], stdout=out)
        results["crm"] = json.loads(out.getvalue())
        import urllib.request

        results["metrics"] = urllib.request.urlopen(f"http://127.0.0.1:{info.http_port}/metrics").read().decode()

    async def main():
        async with trio.open_nursery() as nursery:
            info = await nursery.start(plane.run)
            await trio.to_thread.run_sync(clients, info)
            nursery.cancel_scope.cancel()
        # a second start reads the same admin token back
        async with trio.open_nursery() as nursery:
            again = await nursery.start(ControlPlane(config, cc.services, clock=cc.clock).run)
            assert (again.admin_token, again.admin_token_created) == (info.admin_token, False)
            assert again.wallboard_token != info.wallboard_token
            nursery.cancel_scope.cancel()

    trio.run(main)
    assert results["admin"] == {"principal": "admin", "role": "admin", "agent": None}
    assert results["viewer"] == {"principal": "wallboard", "role": "viewer", "agent": None}
    assert results["crm"]["role"] == "crm"
    assert results["stats"]["method"] == "queue.stats" and results["stats"]["params"]["queue"] in ("support", "sales")
    assert 'hotline_calls_total{queue="support"} 1' in results["metrics"]
    assert 'hotline_agents{state="ringing"} 1' in results["metrics"]
    for p in run_dir.iterdir():
        p.unlink()
    run_dir.rmdir()
