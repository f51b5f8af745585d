"""scripts/bench-crash: fifty random kills (see tests/e2e/chaos.py), then a table."""

import os
import shutil
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
os.environ.setdefault("GUREUM_BIN", os.path.join(ROOT, "target", "debug", "gureum"))

import chaos  # noqa: E402
from conftest import Server, shut_down, with_default_image  # noqa: E402


def main():
    kills = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else int(time.time())
    tmp = tempfile.mkdtemp(prefix="gureum-bench-crash-")
    s = with_default_image(Server(os.path.join(tmp, "data"), env={"GUREUM_WARM_POOL": "2"}).start())
    started = time.time()
    try:
        summary = chaos.run(s, s.image["ImageId"], kills=kills, check_every=5, seed=seed,
                            log=lambda m: print(m, flush=True))
    finally:
        shut_down(s)
        shutil.rmtree(tmp, ignore_errors=True)
    r = summary["restart_s"]
    rows = [
        ("seed", seed),
        ("kill -9 of the server", summary["kills"]),
        ("settled checks (states, host, metering)", summary["checks"]),
        ("instances made", summary["instances"]),
        ("lifecycle calls acknowledged", summary["calls_acked"]),
        ("calls cut off by a kill", summary["calls_unanswered"]),
        ("acknowledged instances lost", summary["lost"]),
        ("leaked host resources", summary["leaked"]),
        ("states not matching the host or the last call", summary["mismatched"]),
        ("metering disagreements", summary["metering"]),
        ("restart to ready, p50 / max (s)", f"{statistics.median(r):.2f} / {max(r):.2f}"),
        ("wall time (s)", f"{time.time() - started:.0f}"),
    ]
    w = max(len(k) for k, _ in rows)
    print(f"\n| {'what'.ljust(w)} | result |\n|{'-' * (w + 2)}|--------|")
    for k, v in rows:
        print(f"| {k.ljust(w)} | {v} |")


if __name__ == "__main__":
    main()
