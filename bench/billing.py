"""Metering and billing benchmarks (metering issue): what metering adds to a state change
(crates/gureum-store/benches/metering.rs) and how fast Cost Explorer answers over a month of
1,000 instances' usage (crates/gureum-billing/benches/cost_explorer.rs, and through the API:
bench/ce_api.py). Runs them
`cargo bench`, prints their tables and writes them into docs/BENCHMARKS.md between the
`bench:billing` markers. Usage: scripts/bench-billing
"""

import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from common import ROOT  # noqa: E402


def bench(*args):
    out = subprocess.run(["cargo", "bench", "-q", *args], cwd=ROOT, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def main():
    metering = bench("-p", "gureum-store", "--bench", "metering")
    ce = bench("-p", "gureum-billing", "--bench", "cost_explorer")
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "gureum"], cwd=ROOT, check=True)
    venv_py = os.path.join(ROOT, ".venv", "bin", "python")
    api = subprocess.run([venv_py if os.path.exists(venv_py) else sys.executable,
                          os.path.join(ROOT, "bench", "ce_api.py")],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    print(metering, ce, api, sep="\n\n")
    load = os.getloadavg()[0]
    doc = os.path.join(ROOT, "docs", "BENCHMARKS.md")
    start, end = "<!-- bench:billing:start -->", "<!-- bench:billing:end -->"
    section = (f"{start}\n## Metering and billing (`scripts/bench-billing`)\n\nMeasured {time.strftime('%Y-%m-%d')} "
               f"on this machine ({os.cpu_count()} cores, load average {load:.1f}), release build.\n\n"
               "What metering adds to a state change (each change its own durable SQLite transaction, "
               "targets: metering < 1 ms):\n\n" + metering +
               "\n\nCost Explorer over a month of 1,000 instances' usage (target: `GetCostAndUsage` < 50 ms; "
               "each figure is the whole request after the store read: ledger, JSON parse, rating, "
               "JSON answer):\n\n```text\n" + ce + "\n```\n\n"
               "The same through the API, timed by a boto3 client (its own signing and parsing "
               "included) and inside the server. The server reads from the store only the intervals "
               "still open or ended in the last minute; the settled ones are cached per account, so "
               "the slowest request (max) is the first, which builds that cache:\n\n" + api + "\n" + end)
    old = open(doc).read()
    if start in old:
        old = old[:old.index(start)] + section + old[old.index(end) + len(end):]
    else:
        old = old.rstrip() + "\n\n" + section + "\n"
    open(doc, "w").write(old)


if __name__ == "__main__":
    main()
