"""Console sign-in and Cost Explorer under load (hardening issue), against a fresh
`gureum up --no-default-image` each (release build unless GUREUM_BIN says otherwise):

- sign-in: 150 parallel wrong passwords from 127.0.0.1, five rounds, while the owner signs in
  with the right one from 127.0.0.2 (time to a session, each round); then 150 parallel wrong
  passwords from 150 addresses (127.0.1.x), the owner retrying after `Retry-After` if told
  to; the server's peak RSS (VmHWM) over all of it;
- Cost Explorer: 16 parallel worst-case requests the bounds allow (HOURLY from 14 days ago to
  the start of next month, every metric, grouped by SERVICE and USAGE_TYPE, every page) over
  14 months of 1,000 instances' usage written into the store, while another account calls
  DescribeRegions in a loop; the server's peak RSS and that account's latency.

Prints the table and writes it into docs/BENCHMARKS.md (section `console-signin`)."""

import concurrent.futures
import datetime
import multiprocessing
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "e2e"))
sys.path.insert(0, os.path.dirname(__file__))
import conftest  # noqa: E402
from common import ROOT, pct, write_section  # noqa: E402
from test_console_signin import Browser  # noqa: E402

FLOOD = 150
ROUNDS = 5
PASSWORD = "correct-horse-battery"


def kib(pid, field="VmHWM"):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def fresh_server():
    tmp = tempfile.mkdtemp(prefix="gureum-bench-signin-")
    return conftest.Server(os.path.join(tmp, "data"),
                           env={"GUREUM_NO_DEFAULT_IMAGE": "1", "GUREUM_WARM_POOL": "0"})


def owner_signs_in(owner):
    """Seconds until the owner has a session (retrying when told to wait), and the tries."""
    t0 = time.monotonic()
    tries = 0
    while True:
        tries += 1
        status, headers = owner.sign_in("admin", PASSWORD)
        if status == 303:
            return time.monotonic() - t0, tries
        assert status == 429, status
        time.sleep(int(headers.get("retry-after", "1")))


def flood(s, sources, owner):
    """FLOOD wrong passwords at once from `sources` (cycled), the owner during it."""
    browsers = [Browser(s.port, sources[i % len(sources)]) for i in range(FLOOD)]
    tokens = [b.form_token() for b in browsers]
    go = threading.Barrier(FLOOD + 1)

    def wrong(i):
        go.wait()
        return browsers[i].post(tokens[i], {"method": "password", "account": "admin",
                                            "password": f"wrong-{i}"})[0]

    with concurrent.futures.ThreadPoolExecutor(FLOOD) as pool:
        futures = [pool.submit(wrong, i) for i in range(FLOOD)]
        go.wait()
        took, tries = owner_signs_in(owner)
        statuses = [f.result() for f in futures]
    return took, tries, statuses


def signin_part(rows):
    s = fresh_server().start()
    try:
        subprocess.run([conftest.GUREUM, "--data-dir", s.data_dir, "account", "passwd", "admin",
                        "--password-stdin"], input=PASSWORD + "\n", text=True, check=True,
                       capture_output=True)
        owner = Browser(s.port, "127.0.0.2")
        one_source = []
        for _ in range(ROUNDS):
            took, _, statuses = flood(s, ["127.0.0.1"], owner)
            one_source.append(took)
        held = sum(1 for st in statuses if st == 429)
        many = [f"127.0.1.{i}" for i in range(1, FLOOD + 1)]
        took_many, tries_many, statuses_many = flood(s, many, owner)
        checked_many = sum(1 for st in statuses_many if st == 401)
        hwm = kib(s.proc.pid)
        rss = kib(s.proc.pid, "VmRSS")
    finally:
        s.stop()
    rows += [
        (f"sign-in: {FLOOD} parallel wrong passwords from one address, {ROUNDS} rounds: server peak RSS "
         "(VmHWM, whole run incl. the flood below)", f"{hwm / 1024:.0f} MiB (RSS after: {rss / 1024:.0f} MiB)",
         "< 150 MiB"),
        ("sign-in: the right password from another address during that flood (p50 / max of the rounds)",
         f"{pct(one_source, 50):.2f} / {max(one_source):.2f} s", "< 2 s"),
        ("sign-in: of the last round's wrong passwords, held back without a check (429)",
         f"{held} of {FLOOD}", "most"),
        (f"sign-in: {FLOOD} parallel wrong passwords from {FLOOD} addresses: the owner signed in after",
         f"{took_many:.2f} s ({tries_many} tries; {checked_many} of the {FLOOD} were checked)",
         "(no target: see RELIABILITY.md)"),
    ]


def bystander(endpoint, keys, stop, out):
    """DescribeRegions in a loop until `stop`, in a process of its own (the heavy clients'
    threads would otherwise hold its GIL and time themselves into its figures)."""
    import boto3
    ec2 = boto3.client("ec2", endpoint_url=endpoint, region_name="us-east-1",
                       aws_access_key_id=keys[0], aws_secret_access_key=keys[1])
    ec2.describe_regions()
    lat = []
    while not stop.is_set():
        t0 = time.monotonic()
        ec2.describe_regions()
        lat.append(time.monotonic() - t0)
    out.put(lat)


def ce_part(rows):
    s = fresh_server().start()
    s.stop()
    db = sqlite3.connect(os.path.join(s.data_dir, "state.db"))
    account = db.execute("SELECT id FROM accounts WHERE name = 'admin'").fetchone()[0]
    now = time.time()
    today = datetime.datetime.now(datetime.timezone.utc).date()
    first = today.replace(day=1)
    y, m = divmod(first.year * 12 + first.month - 1 - 13, 12)
    long_ago = int(datetime.datetime(y, m + 1, 1, tzinfo=datetime.timezone.utc).timestamp() * 1000)
    recent = int((now - 14 * 86400) * 1000)
    rnd = random.Random(7)
    types = ["t3.micro", "t3.large", "m5.large", "c5.xlarge", "r5.large"]
    rows_db = []
    for i in range(1000):
        iid = f"i-{i:017x}"
        rows_db.append((account, iid, "storage", "gp3", 8.0, long_ago + rnd.randrange(86_400_000), None))
        t = recent + rnd.randrange(3_600_000)
        for _ in range(14):
            run = rnd.randrange(60_000, 20 * 3_600_000)
            rows_db.append((account, iid, "compute", rnd.choice(types), 1.0, t, t + run))
            rows_db.append((account, iid, "public-ipv4", "127.100.0.1", 1.0, t, t + run))
            t += run + rnd.randrange(60_000, 3_600_000)
    db.executemany("INSERT INTO usage (account_id, resource_id, kind, detail, quantity, start_ms, end_ms) "
                   "VALUES (?,?,?,?,?,?,?)", rows_db)
    db.commit()
    db.close()
    s.start()
    try:
        _, keys = s.new_account("bystander")
        other = s.client(keys)
        other.describe_regions()
        start = (today - datetime.timedelta(days=14)).isoformat()
        y, m = divmod(first.year * 12 + first.month, 12)
        end = datetime.date(y, m + 1, 1).isoformat()
        metrics = ["AmortizedCost", "BlendedCost", "NetAmortizedCost", "NetUnblendedCost",
                   "NormalizedUsageAmount", "UnblendedCost", "UsageQuantity"]

        def worst():
            ce = s.client(service="ce")
            req = dict(TimePeriod={"Start": start, "End": end}, Granularity="HOURLY", Metrics=metrics,
                       GroupBy=[{"Type": "DIMENSION", "Key": "SERVICE"}, {"Type": "DIMENSION", "Key": "USAGE_TYPE"}])
            t0 = time.monotonic()
            r = ce.get_cost_and_usage(**req)
            pages = 1
            while r.get("NextPageToken"):
                r = ce.get_cost_and_usage(**req, NextPageToken=r["NextPageToken"])
                pages += 1
            return time.monotonic() - t0, pages

        stop, out = multiprocessing.Event(), multiprocessing.Queue()
        proc = multiprocessing.Process(target=bystander, args=(s.endpoint, keys, stop, out))
        proc.start()
        time.sleep(0.3)
        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            done = list(pool.map(lambda _: worst(), range(16)))
        wall = time.monotonic() - t0
        stop.set()
        lat = out.get()
        proc.join()
        hwm = kib(s.proc.pid)
    finally:
        s.stop()
    rows += [
        (f"Cost Explorer: 16 parallel worst-case allowed GetCostAndUsage ({len(rows_db)} usage intervals, "
         f"HOURLY over {(datetime.date.fromisoformat(end) - datetime.date.fromisoformat(start)).days} days, "
         f"7 metrics, 2 group keys, {done[0][1]} pages each): server peak RSS", f"{hwm / 1024:.0f} MiB",
         "bounded"),
        ("Cost Explorer: those 16, all pages, wall time (slowest client)",
         f"{wall:.1f} s ({max(d[0] for d in done):.1f} s)", ""),
        ("Cost Explorer: another account's DescribeRegions meanwhile (p50 / max)",
         f"{pct(lat, 50) * 1000:.0f} / {max(lat) * 1000:.0f} ms ({len(lat)} calls)", "no stall (< 1 s)"),
    ]


def main():
    conftest.GUREUM = os.environ.get("GUREUM_BIN") or os.path.join(ROOT, "target", "release", "gureum")
    rows = []
    signin_part(rows)
    ce_part(rows)
    write_section("console-signin", "Console sign-in and Cost Explorer under load (`scripts/bench-console-signin`)",
                  rows, note=" Loopback only; the sign-in flood's addresses are 127.0.0.0/8 addresses "
                             "bound by the client.")


if __name__ == "__main__":
    main()
