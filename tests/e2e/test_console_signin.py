"""The console's sign-in form under a flood of wrong passwords, driven over HTTP as a browser
posts it: the server's memory stays bounded (password checks run on a small pool, an address
that keeps failing is held back without hashing), and the right password from another address
still signs in promptly. Also: a `next` the form cannot redirect to is ignored, not a 500.
API-only (no instances)."""

import concurrent.futures
import http.client
import os
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.parse

import pytest

from conftest import GUREUM, Server

FLOOD = 150
RSS_LIMIT_KIB = 150 * 1024
PASSWORD = "correct-horse-battery"


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


class Browser:
    """One client of the sign-in form, its socket bound to `source` (a loopback address)."""

    def __init__(self, port, source="127.0.0.1"):
        self.port, self.source = port, source

    def conn(self):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=60,
                                          source_address=(self.source, 0))

    def form_token(self):
        c = self.conn()
        c.request("GET", "/console/signin", headers={"Accept": "text/html"})
        r = c.getresponse()
        r.read()
        c.close()
        assert r.status == 200, r.status
        for k, v in r.getheaders():
            if k.lower() == "set-cookie" and v.startswith("gureum_signin="):
                return v.split(";", 1)[0].split("=", 1)[1]
        raise AssertionError("no sign-in token cookie")

    def post(self, token, fields):
        body = urllib.parse.urlencode({"_csrf": token, **fields})
        c = self.conn()
        c.request("POST", "/console/signin", body=body, headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": f"gureum_signin={token}",
            "Host": f"127.0.0.1:{self.port}",
        })
        r = c.getresponse()
        r.read()
        c.close()
        headers = {}
        for k, v in r.getheaders():  # (several Set-Cookie headers: one line each)
            headers[k.lower()] = headers[k.lower()] + "\n" + v if k.lower() in headers else v
        return r.status, headers

    def sign_in(self, account, password, **extra):
        return self.post(self.form_token(),
                         {"method": "password", "account": account, "password": password, **extra})


@pytest.fixture
def console_server():
    tmp = tempfile.mkdtemp(prefix="gureum-e2e-")
    s = Server(os.path.join(tmp, "data"),
               env={"GUREUM_NO_DEFAULT_IMAGE": "1", "GUREUM_WARM_POOL": "0"}).start()
    out = subprocess.run([GUREUM, "--data-dir", s.data_dir, "account", "passwd", "admin",
                          "--password-stdin"], input=PASSWORD + "\n", capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    yield s
    s.stop()
    shutil.rmtree(tmp, ignore_errors=True)


def test_a_flood_of_wrong_passwords_keeps_memory_bounded_and_the_owner_in(console_server):
    s = console_server
    pid = s.proc.pid
    attacker = Browser(s.port, "127.0.0.1")
    owner = Browser(s.port, "127.0.0.2")

    # Every attacker thread fetches its form first, then all post at once.
    tokens = [attacker.form_token() for _ in range(FLOOD)]
    go = threading.Barrier(FLOOD + 1)

    def wrong(i):
        go.wait()
        t0 = time.monotonic()
        status, headers = attacker.post(tokens[i], {"method": "password", "account": "admin",
                                                    "password": f"wrong-{i}"})
        return status, headers.get("retry-after"), time.monotonic() - t0

    with concurrent.futures.ThreadPoolExecutor(FLOOD) as pool:
        futures = [pool.submit(wrong, i) for i in range(FLOOD)]
        owner_token = owner.form_token()
        go.wait()
        # The owner, from another address, during the flood.
        t0 = time.monotonic()
        status, headers = owner.post(owner_token, {"method": "password", "account": "admin",
                                                   "password": PASSWORD})
        owner_secs = time.monotonic() - t0
        results = [f.result() for f in futures]

    statuses = sorted({r[0] for r in results})
    print(f"flood statuses {[(st, sum(1 for r in results if r[0] == st)) for st in statuses]}, "
          f"slowest {max(r[2] for r in results):.2f} s, owner {owner_secs:.2f} s, "
          f"VmHWM {status_kib(pid, 'VmHWM')} KiB, VmRSS {status_kib(pid, 'VmRSS')} KiB")
    assert status == 303 and headers["location"] == "/console", (status, headers)
    assert "gureum_session=" in headers.get("set-cookie", ""), headers
    assert owner_secs < 2.0, f"the right password took {owner_secs:.2f} s during the flood"
    # Wrong passwords are refused (401), or held back without a check (429, Retry-After);
    # never a server error.
    assert set(statuses) <= {401, 429}, statuses
    held = [r for r in results if r[0] == 429]
    assert len(held) >= FLOOD - 20, f"only {len(held)} of {FLOOD} held back"
    assert all(r[1] and int(r[1]) >= 1 for r in held), held[:3]
    assert status_kib(pid, "VmHWM") < RSS_LIMIT_KIB, f"peak RSS {status_kib(pid, 'VmHWM')} KiB"
    assert status_kib(pid, "VmRSS") < RSS_LIMIT_KIB

    # Most of the flood was refused for having two attempts in flight already; one after the
    # other, the address is held back after five failures in all, even with the right
    # password. The owner's address is not.
    checked = sum(1 for r in results if r[0] == 401)
    for _ in range(5 - checked):
        status, _ = attacker.sign_in("admin", "still-wrong")
        assert status == 401
    status, headers = attacker.sign_in("admin", PASSWORD)
    assert status == 429 and int(headers["retry-after"]) >= 1, (status, headers)
    status, _ = owner.sign_in("admin", PASSWORD)
    assert status == 303


def test_a_next_that_cannot_be_redirected_to_is_ignored(console_server):
    s = console_server
    b = Browser(s.port, "127.0.0.3")
    for next_ in ["/console/\x01x", "/console/\r\nSet-Cookie: a=b", "//evil.example/", "/console/\u00e9",
                  "https://evil.example/"]:
        status, headers = b.sign_in("admin", PASSWORD, next=next_)
        assert status == 303 and headers["location"] == "/console", (next_, status, headers)
    status, headers = b.sign_in("admin", PASSWORD, next="/console/instances?x=1")
    assert status == 303 and headers["location"] == "/console/instances?x=1"
