"""Hardening benchmarks (scripts/bench-hardening): a fresh `gureum up` started with an open-file
soft limit of 1,024 (as systemd starts a service), then

1. idle connections: another client's signed DescribeRegions latency, quiet and with 1,200 idle
   TCP connections held open to the same port from the same address (keep-alive client, and a
   new connection per request);
2. noisy neighbour: account B's DescribeInstances latency, quiet and while account A floods
   CreateKeyPair (RSA) from several processes with the SDK's default retries, with throttling
   on (the default) and off (the bounded key-generation pool alone).

Prints a table and writes the `hardening` section of docs/BENCHMARKS.md. Loopback only; every
loop is bounded in time; everything started is stopped."""

import argparse
import multiprocessing
import os
import resource
import shutil
import socket
import sys
import tempfile
import time

import boto3
import botocore.config
import botocore.exceptions

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
from conftest import Server  # noqa: E402
from common import pct, write_section  # noqa: E402

REGION = "us-east-1"
B_RATE = 15


def client(s, keys, **config):
    ak, sk = keys
    return boto3.client("ec2", endpoint_url=s.endpoint, region_name=REGION, aws_access_key_id=ak,
                        aws_secret_access_key=sk, config=botocore.config.Config(**config))


def timed(call, seconds=None, count=None, rate=None):
    """Latencies (s) of `call` run for `seconds` or `count` times: back to back, or `rate` calls
    a second."""
    out = []
    start = time.perf_counter()
    end = start + (seconds or 1e9)
    while time.perf_counter() < end and (count is None or len(out) < count):
        if rate:
            time.sleep(max(0.0, start + len(out) / rate - time.perf_counter()))
        t = time.perf_counter()
        call()
        out.append(time.perf_counter() - t)
    return out


def start(tmp, name, env):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    s = Server(os.path.join(tmp, name), env={"GUREUM_WARM_POOL": "0", "GUREUM_NO_DEFAULT_IMAGE": "1",
                                             "GUREUM_LOG": "warn", **env})
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard), hard))
    try:
        s.start(timeout=60)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return s


def flood(endpoint, keys, seconds, worker, results):
    """One flooding process: CreateKeyPair (RSA) back to back with the SDK's default retries."""
    ak, sk = keys
    ec2 = boto3.client("ec2", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=ak,
                       aws_secret_access_key=sk)
    ok = throttled = 0
    end = time.time() + seconds
    i = 0
    while time.time() < end:
        i += 1
        try:
            ec2.create_key_pair(KeyName=f"flood-{worker}-{i}", KeyType="rsa")
            ok += 1
        except botocore.exceptions.ClientError as e:
            if e.response["Error"]["Code"] != "RequestLimitExceeded":
                raise
            throttled += 1
    results.put((ok, throttled))


def noisy_neighbour(s, seconds, workers):
    _, a = s.new_account("noisy")
    _, b = s.new_account("quiet")
    ec2 = client(s, b)
    # B stays within EC2's rate for DescribeInstances (20/s), so its own throttling never
    # shows: what is measured is A's effect on it.
    timed(ec2.describe_instances, count=10, rate=B_RATE)  # warm: connection, caches
    quiet = timed(ec2.describe_instances, seconds=seconds, rate=B_RATE)
    results = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=flood, args=(s.endpoint, a, seconds + 2, w, results))
             for w in range(workers)]
    for p in procs:
        p.start()
    time.sleep(1.5)  # the flood under way (processes started, first requests in)
    loud = timed(ec2.describe_instances, seconds=seconds, rate=B_RATE)
    totals = [results.get(timeout=seconds + 120) for _ in procs]
    for p in procs:
        p.join(30)
    made = sum(t[0] for t in totals)
    refused = sum(t[1] for t in totals)
    return quiet, loud, made, refused


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "gureum"))
    ap.add_argument("--idle", type=int, default=1200)
    ap.add_argument("--seconds", type=float, default=10, help="each noisy-neighbour window")
    ap.add_argument("--workers", type=int, default=8, help="flooding processes of account A")
    ap.add_argument("--calls", type=int, default=300, help="requests per idle-connection row")
    args = ap.parse_args()
    import conftest
    conftest.GUREUM = args.bin
    load_at_start = open("/proc/loadavg").read().split()[:3]

    rows = []
    tmp = tempfile.mkdtemp(prefix="gureum-bench-hardening-")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        # 1. Idle connections.
        # Back-to-back calls from one account are what EC2's throttling refuses: off here, so
        # only the connections are measured.
        s = start(tmp, "idle", {"GUREUM_THROTTLE": "off"})
        idle = []
        try:
            keys = s.admin_keys()
            ec2 = client(s, keys)
            timed(ec2.describe_regions, count=20)
            quiet = timed(ec2.describe_regions, count=args.calls)
            t = time.perf_counter()
            for _ in range(args.idle):
                idle.append(socket.create_connection(("127.0.0.1", s.port), timeout=5))
            opened = time.perf_counter() - t
            time.sleep(0.5)
            held = timed(ec2.describe_regions, count=args.calls)

            def fresh():
                c = client(s, keys)
                c.describe_regions()
                c.close()

            fresh_lat = timed(fresh, count=50)
        finally:
            for c in idle:
                c.close()
            s.stop()
        ms = lambda xs, p: f"{pct(xs, p) * 1000:.1f}"  # noqa: E731
        rows += [
            ("DescribeRegions, quiet (p50 / p99)", f"{ms(quiet, 50)} / {ms(quiet, 99)} ms", "—"),
            (f"DescribeRegions with {args.idle} idle connections held (same address; p50 / p99)",
             f"{ms(held, 50)} / {ms(held, 99)} ms", "p99 < 1,000 ms"),
            ("the same, a new connection per request (p50 / p99, max)",
             f"{ms(fresh_lat, 50)} / {ms(fresh_lat, 99)} ms, {max(fresh_lat) * 1000:.1f} ms", "p99 < 1,000 ms"),
            (f"time to open the {args.idle} idle connections", f"{opened * 1000:.0f} ms", "—"),
        ]

        # 2. Noisy neighbour, throttling on then off.
        for label, env in (("throttling on (default)", {}), ("throttling off", {"GUREUM_THROTTLE": "off"})):
            s = start(tmp, "noisy-" + label.split()[1], env)
            try:
                quiet, loud, made, refused = noisy_neighbour(s, args.seconds, args.workers)
            finally:
                s.stop()
            ratio = pct(loud, 50) / pct(quiet, 50)
            rows += [
                (f"B's DescribeInstances ({B_RATE}/s) p50 quiet → under A's CreateKeyPair flood, {label}",
                 f"{ms(quiet, 50)} → {ms(loud, 50)} ms (×{ratio:.2f}; p99 {ms(quiet, 99)} → {ms(loud, 99)} ms)",
                 "≤ ×2"),
                (f"A's flood ({args.workers} processes, {args.seconds:.0f} s), {label}",
                 f"{made} keys made, {refused} calls RequestLimitExceeded after the SDK's retries", "—"),
            ]
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        shutil.rmtree(tmp, ignore_errors=True)

    note = (f" The server starts with an open-file soft limit of 1,024 and raises it to the hard limit ({hard});"
            f" clients are boto3 on the same machine (its own CPU time is in every latency)."
            f" Load average at start: {' '.join(load_at_start)}.")
    write_section("hardening", "Connections and throttling (`scripts/bench-hardening`)", rows, note)


if __name__ == "__main__":
    main()
