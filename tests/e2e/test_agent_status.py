"""The host agent's background tasks are visible: `GET /healthz/agent` answers each task's
runs, last success and last error to callers on this host, and nothing to others."""

import json
import os
import socket
import subprocess
import tempfile

import pytest
import urllib3

from conftest import Server, host_can_run_instances, shut_down, wait_for

TASKS = {"default-network", "converge", "firewalls", "public-ips", "networks", "purge",
         "leak-sweep", "budgets", "warm-pool", "volumes"}


def status(endpoint):
    r = urllib3.PoolManager().request("GET", endpoint + "/healthz/agent", timeout=5)
    return r.status, r.data


@pytest.fixture
def agent_server():
    why = host_can_run_instances()
    if why:
        pytest.skip(f"the host agent runs only where instances can: {why}")
    tmp = tempfile.mkdtemp(prefix="gureum-e2e-")
    # Listening on every address, so the test can also come from a non-loopback one.
    s = Server(os.path.join(tmp, "data"), listen_host="0.0.0.0",
               args=["--no-default-image", "--warm-pool", "0"])
    s.start()
    yield s
    shut_down(s)


def test_each_task_reports_runs_and_outcome(agent_server):
    def tasks():
        code, body = status(agent_server.endpoint)
        assert code == 200, body
        return {t["task"]: t for t in json.loads(body)["tasks"]}

    assert set(tasks()) == TASKS
    # The loop's first pass: the default network, then the periodic tasks.
    wait_for(lambda: all(tasks()[t]["runs"] >= 2 for t in ("converge", "firewalls",
                                                          "public-ips", "networks")),
             15, "two agent sweeps")
    t = tasks()
    for name in ("default-network", "converge", "firewalls", "public-ips", "networks",
                 "leak-sweep", "budgets"):
        assert t[name]["runs"] >= 1, t[name]
        assert t[name]["failures"] == 0 and t[name]["last_error"] is None, t[name]
        assert t[name]["last_ok_ms"] >= t[name]["last_started_ms"] > 0, t[name]
        assert t[name]["last_duration_ms"] is not None, t[name]
    # No terminated instance old enough to forget, no warm pool asked for.
    assert t["purge"]["runs"] == 0 and t["warm-pool"]["runs"] == 0


def own_address():
    """An address of this host that is not loopback (the test connects to itself)."""
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"],
                         capture_output=True, text=True).stdout.split()
    addrs = [w.split("/")[0] for i, w in enumerate(out) if i and out[i - 1] == "inet"]
    return addrs[0] if addrs else None


def test_other_addresses_get_nothing(agent_server):
    addr = own_address()
    if addr is None:
        pytest.skip("this host has no non-loopback address")
    code, _ = status(f"http://{addr}:{agent_server.port}")
    assert code == 404
    # The API itself still answers there (its health check).
    r = urllib3.PoolManager().request("GET", f"http://{addr}:{agent_server.port}/healthz",
                                      timeout=5)
    assert r.status == 200
