"""GetCostAndUsage through the API (SigV4, store read, rating, JSON) over a month of 1,000
instances' usage in one account: 1,000 instances x 14 starts, their volumes and public
addresses (about 30,000 usage intervals) written into a fresh data dir's store, then boto3's
get_cost_and_usage timed against `gureum up --no-default-image`. Prints one line per query."""

import os
import random
import re
import sqlite3
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "e2e"))
sys.path.insert(0, os.path.dirname(__file__))
import conftest  # noqa: E402
from common import ROOT, pct  # noqa: E402


def main():
    conftest.GUREUM = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target", "release", "gureum")
    tmp = tempfile.mkdtemp(prefix="gureum-bench-ce-")
    data = os.path.join(tmp, "data")
    os.environ["GUREUM_NO_DEFAULT_IMAGE"] = "1"
    os.environ["GUREUM_LOG"] = "info,gureum_core::metering=debug"  # the server's own timing
    s = conftest.Server(data).start()   # creates the store and the admin account
    s.stop()
    db = sqlite3.connect(os.path.join(data, "state.db"))
    account = db.execute("SELECT id FROM accounts WHERE name = 'admin'").fetchone()[0]
    rnd = random.Random(7)
    month_start = int(time.mktime(time.strptime(time.strftime("%Y-%m-01"), "%Y-%m-%d"))) * 1000
    types = ["t3.micro", "t3.large", "m5.large", "c5.xlarge", "r5.large"]
    rows = []
    for i in range(1000):
        iid = f"i-{i:017x}"
        t = month_start + rnd.randrange(3_600_000)
        rows.append((account, iid, "storage", "gp3", 8.0, t, None))
        for _ in range(14):
            run = rnd.randrange(60_000, 20 * 3_600_000)
            rows.append((account, iid, "compute", rnd.choice(types), 1.0, t, t + run))
            rows.append((account, iid, "public-ipv4", "127.100.0.1", 1.0, t, t + run))
            t += run + rnd.randrange(60_000, 3_600_000)
    db.executemany("INSERT INTO usage (account_id, resource_id, kind, detail, quantity, start_ms, end_ms) "
                   "VALUES (?,?,?,?,?,?,?)", rows)
    db.commit()
    db.close()
    s.start()
    try:
        ce = s.client(service="ce")
        start = time.strftime("%Y-%m-01")
        y, m = int(start[:4]), int(start[5:7])
        end = f"{y + (m == 12):04d}-{m % 12 + 1:02d}-01"
        queries = {
            "MONTHLY total": dict(Granularity="MONTHLY"),
            "DAILY by SERVICE": dict(Granularity="DAILY", GroupBy=[{"Type": "DIMENSION", "Key": "SERVICE"}]),
            "DAILY by INSTANCE_TYPE": dict(Granularity="DAILY", GroupBy=[{"Type": "DIMENSION", "Key": "INSTANCE_TYPE"}]),
        }
        print(f"| GetCostAndUsage via the API, {len(rows)} usage intervals of 1,000 instances | p50 | max |")
        print("| --- | --- | --- |")
        for name, q in queries.items():
            lat = []
            for _ in range(10):
                t0 = time.perf_counter()
                ce.get_cost_and_usage(TimePeriod={"Start": start, "End": end}, Metrics=["UnblendedCost"], **q)
                lat.append(time.perf_counter() - t0)
            print(f"| {name} (boto3 client) | {pct(lat, 50) * 1000:.0f} ms | {max(lat) * 1000:.0f} ms |")
    finally:
        s.stop()
    server = [int(us) / 1000 for us in re.findall(r"cost explorer.*total_us=(\d+)", open(s.log_path).read())]
    if server:
        print(f"| all of the above, inside the server (store read, rating, JSON) | {pct(server, 50):.0f} ms "
              f"| {max(server):.0f} ms |")


if __name__ == "__main__":
    main()
