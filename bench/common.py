"""Shared by the benchmark scripts: percentiles, waiting for SSH, and writing a script's own
section of docs/BENCHMARKS.md (between `<!-- bench:NAME:start -->` and `<!-- bench:NAME:end -->`)."""

import os
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


def ssh_ready(key, ip, deadline):
    while time.time() < deadline:
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
