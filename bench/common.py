"""Shared by the benchmark scripts: percentiles, waiting for SSH, and writing a script's own
section of docs/BENCHMARKS.md (between `<!-- bench:NAME:start -->` and `<!-- bench:NAME:end -->`)."""

import os
import socket
import subprocess
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
SSH_OPTS = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
            "-o", "ConnectTimeout=1", "-o", "LogLevel=ERROR"]


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = max(0, min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1)))))
    return xs[k]


def ssh_banner(ip, deadline):
    """Wait until the SSH server at ip:22 sends its banner (cheap: one TCP connection)."""
    while time.time() < deadline:
        try:
            with socket.create_connection((ip, 22), timeout=1) as s:
                s.settimeout(2)
                if s.recv(4).startswith(b"SSH-"):
                    return True
        except OSError:
            pass
        time.sleep(0.02)
    return False


def ssh_ready(key, ip, deadline):
    """Wait until `ssh ... true` succeeds. Like a deploy tool (Ansible's wait_for, then ssh), it
    first waits for the server's banner: every ssh attempt costs ~0.1 s of client CPU (Debian 12's
    OpenSSH computes a post-quantum key exchange), which on 2 cores the guests being measured
    would pay for."""
    while time.time() < deadline:
        if not ssh_banner(ip, deadline):
            return False
        r = subprocess.run(["ssh", *SSH_OPTS, "-i", key, f"admin@{ip}", "true"], capture_output=True)
        if r.returncode == 0:
            return True
        time.sleep(0.05)
    return False


def default_image(ec2):
    """The default image's id, once it is available."""
    while True:
        imgs = ec2.describe_images(Owners=["gureum"])["Images"]
        if imgs and imgs[0]["State"] == "available":
            return imgs[0]["ImageId"]
        time.sleep(0.5)


def write_section(name, title, rows, note=""):
    """Print the rows as a markdown table and put them in this benchmark's section."""
    table = ["| figure | measured | target |", "| --- | --- | --- |"] + [f"| {a} | {b} | {c} |" for a, b, c in rows]
    text = "\n".join(table)
    print(text)
    doc = os.path.join(ROOT, "docs", "BENCHMARKS.md")
    start, end = f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"
    head = (f"## {title}\n\nMeasured {time.strftime('%Y-%m-%d')} on this machine ({os.cpu_count()} cores), "
            f"release build, against a fresh `gureum up`.{note}\n\n")
    section = f"{start}\n{head}{text}\n{end}"
    old = open(doc).read() if os.path.exists(doc) else "# Benchmarks\n"
    if start in old:
        old = old[:old.index(start)] + section + old[old.index(end) + len(end):]
    else:
        old = old.rstrip() + "\n\n" + section + "\n"
    open(doc, "w").write(old)
