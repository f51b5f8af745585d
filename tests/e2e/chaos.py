"""Crash safety with live instances: a client drives random lifecycle calls (run, stop, start,
terminate) on up to ten instances while the server is killed with SIGKILL at random moments
and restarted. After each restart every acknowledged instance must be accounted for; at each
check, once the instances settle, the recorded states must match the host, nothing may be
left on the host that no instance owns (containers, state dirs, cgroups, mounts, loop devices,
network namespaces, veths, nftables elements), and the metered usage must agree with the
states. Shared by `test_crash_safety.py` (a few kills) and `scripts/bench-crash` (fifty)."""

import glob
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import threading
import time

import boto3
import botocore.config
import botocore.exceptions

from conftest import REGION, warm_guests

STABLE = {"running", "stopped", "terminated"}
NET_PREFIX = "gr"


def quick_client(server):
    """One attempt per call, short timeouts: a call to a server that is being killed fails
    fast instead of being retried into the next server's life."""
    ak, sk = server.admin_keys()
    return boto3.client(
        "ec2", endpoint_url=server.endpoint, region_name=REGION,
        aws_access_key_id=ak, aws_secret_access_key=sk,
        config=botocore.config.Config(retries={"total_max_attempts": 1},
                                      connect_timeout=2, read_timeout=15))


class Chaos:
    """The client side: random lifecycle calls and what the server acknowledged."""

    def __init__(self, image, rng, max_live=10, instance_type="t2.nano"):
        self.image = image
        self.rng = rng
        self.max_live = max_live
        self.instance_type = instance_type
        # ClientToken -> instance id, for every RunInstances the server answered.
        self.acked_runs = {}
        # ClientTokens sent without an answer (the server died): replayed after a restart.
        self.unanswered_runs = []
        # Instance id -> [(call, acknowledged)], in the order they were made.
        self.calls = {}
        self.acked = 0
        self.unanswered = 0
        self.refused = 0
        self._token = 0

    def live(self):
        return [i for i, calls in self.calls.items()
                if not any(c == "terminate" and ok for c, ok in calls)]

    def _call(self, fn):
        try:
            return fn(), True
        except (botocore.exceptions.EndpointConnectionError,
                botocore.exceptions.ConnectionClosedError,
                botocore.exceptions.ReadTimeoutError,
                botocore.exceptions.ConnectTimeoutError):
            self.unanswered += 1
            return None, False
        except botocore.exceptions.ClientError as e:
            code = e.response["Error"]["Code"]
            if code in ("IncorrectInstanceState", "RequestLimitExceeded"):
                # A call the instance's state refuses (stop of a stopping one, ...): answered,
                # nothing changed.
                self.refused += 1
                return None, None
            raise

    def one(self, ec2):
        """One random call. Returns False once the server stopped answering."""
        live = self.live()
        choices = (["run"] if len(live) < self.max_live else []) + (["stop", "start", "terminate"] if live else [])
        what = self.rng.choice(choices)
        if what == "run":
            self._token += 1
            token = f"chaos-{os.getpid()}-{self._token}"
            r, ok = self._call(lambda: ec2.run_instances(
                ImageId=self.image, InstanceType=self.instance_type, MinCount=1, MaxCount=1,
                ClientToken=token))
            if ok:
                iid = r["Instances"][0]["InstanceId"]
                self.acked_runs[token] = iid
                self.calls.setdefault(iid, []).append(("run", True))
                self.acked += 1
            elif ok is False:
                self.unanswered_runs.append(token)
            return ok is not False
        iid = self.rng.choice(live)
        fn = {"stop": lambda: ec2.stop_instances(InstanceIds=[iid]),
              "start": lambda: ec2.start_instances(InstanceIds=[iid]),
              "terminate": lambda: ec2.terminate_instances(InstanceIds=[iid])}[what]
        _, ok = self._call(fn)
        if ok is None:
            return True
        self.calls[iid].append((what, ok))
        self.acked += ok
        return ok

    def drive(self, ec2, stop_event, pace=(0.02, 0.3)):
        while not stop_event.is_set():
            if not self.one(ec2):
                return
            time.sleep(self.rng.uniform(*pace))

    def replay_unanswered(self, ec2):
        """RunInstances calls that got no answer, replayed with their ClientToken: EC2's
        idempotency gives the instance the first call made, or makes it now."""
        for token in self.unanswered_runs:
            r = ec2.run_instances(ImageId=self.image, InstanceType=self.instance_type,
                                  MinCount=1, MaxCount=1, ClientToken=token)
            iid = r["Instances"][0]["InstanceId"]
            self.acked_runs[token] = iid
            self.calls.setdefault(iid, []).append(("run", True))
        self.unanswered_runs = []

    def expected(self, iid):
        """The state the last acknowledged call implies, if no unanswered call came after it."""
        calls = self.calls.get(iid, [])
        if not calls or not calls[-1][1]:
            return None
        return {"run": "running", "start": "running", "stop": "stopped",
                "terminate": "terminated"}[calls[-1][0]]


def describe_all(ec2):
    out = {}
    for page in ec2.get_paginator("describe_instances").paginate():
        for r in page["Reservations"]:
            for i in r["Instances"]:
                out[i["InstanceId"]] = i
    return out


def lost(chaos, ec2):
    """Acknowledged instances the server does not know."""
    known = describe_all(ec2)
    return sorted(set(chaos.acked_runs.values()) - set(known))


def settle(ec2, timeout=180):
    """Wait until every instance is running, stopped or terminated. Returns them."""
    deadline = time.time() + timeout
    while True:
        insts = describe_all(ec2)
        moving = {i: v["State"]["Name"] for i, v in insts.items() if v["State"]["Name"] not in STABLE}
        if not moving:
            return insts
        if time.time() > deadline:
            raise AssertionError(f"instances did not settle: {moving}")
        time.sleep(0.5)


def _run(*cmd):
    return subprocess.run(cmd, capture_output=True, text=True).stdout


def runc_states(data_dir):
    out = _run("runc", "--root", os.path.join(data_dir, "instances", ".runc"), "list", "--format", "json")
    return {c["id"]: c["status"] for c in json.loads(out or "[]") or []}


def host_view(data_dir):
    """What of gureum's is on the host, by kind."""
    inst_dir = os.path.join(data_dir, "instances")
    mounts = open("/proc/mounts").read()
    links = _run("ip", "-o", "link", "show")
    veths = sorted({m for m in re.findall(rf"^\d+: ({NET_PREFIX}[0-9a-f]+)[@:]", links, re.M)})
    return {
        "containers": runc_states(data_dir),
        "dirs": sorted(os.path.basename(p) for p in glob.glob(os.path.join(inst_dir, "i-*"))),
        "cgroups": sorted({os.path.basename(p) for p in glob.glob("/sys/fs/cgroup/*/gureum/i-*")}),
        "mounts": sorted(set(re.findall(r"(i-[0-9a-f]{17})", mounts))),
        "loops": sorted(set(re.findall(r"(i-[0-9a-f]{17})", _run("losetup", "-a")))),
        "netns": sorted(n.split()[0][len(NET_PREFIX) + 1:] for n in _run("ip", "netns", "list").splitlines()
                        if n.startswith(f"{NET_PREFIX}-i-")),
        "veths": veths,
        "nft": _run("nft", "list", "table", "inet", "gureum") + _run("nft", "list", "table", "bridge", "gureum"),
    }


def check_host(data_dir, insts, chaos):
    """Problems: states that do not match the host, acknowledged calls not honoured, and
    anything on the host that no instance owns."""
    problems = []
    host = host_view(data_dir)
    pool = set(warm_guests(data_dir, waiting_only=False))
    state = {i: v["State"]["Name"] for i, v in insts.items()}
    not_terminated = {i for i, s in state.items() if s != "terminated"}
    running = {i for i, s in state.items() if s == "running"}
    owners = not_terminated | pool
    for iid, s in state.items():
        want = chaos.expected(iid)
        if want and want != s:
            problems.append(f"{iid}: {s}, but the last acknowledged call asked for {want}")
        reason = insts[iid].get("StateReason", {}).get("Code", "")
        if s == "terminated" and reason == "Server.InternalError":
            problems.append(f"{iid}: a failed launch: {insts[iid]['StateReason']['Message']}")
        c = host["containers"].get(iid)
        if s == "running" and c != "running":
            problems.append(f"{iid}: running, but its container is {c}")
        if s != "running" and c == "running":
            problems.append(f"{iid}: {s}, but its container runs")
        if s == "running" and iid not in host["netns"]:
            problems.append(f"{iid}: running without its network namespace")
    for kind in ("dirs", "cgroups", "mounts", "loops"):
        for iid in host[kind]:
            if iid not in owners:
                problems.append(f"leaked {kind[:-1]} of {iid} ({state.get(iid, 'unknown')})")
    for iid in host["containers"]:
        if iid not in owners:
            problems.append(f"leaked container {iid} ({state.get(iid, 'unknown')})")
    for iid in host["netns"]:
        if iid not in running:
            problems.append(f"leaked network namespace of {iid} ({state.get(iid, 'unknown')})")
    # Every veth is a running instance's (each has one); none outlives its instance.
    if len(host["veths"]) > len(running):
        problems.append(f"{len(host['veths'])} veths for {len(running)} running instances")
    # nftables names ports and addresses of live instances only. A stopped instance keeps its
    # private address (as on EC2), so security-group member sets may still name it.
    ips = {insts[i]["PrivateIpAddress"] for i in not_terminated if insts[i].get("PrivateIpAddress")}
    for ip in set(re.findall(r"\b(172\.31\.\d+\.\d+)\b", host["nft"])):
        if ip not in ips and not ip.endswith(".1") and not ip.endswith(".0"):
            owner = [f"{i} ({state[i]})" for i, v in insts.items() if v.get("PrivateIpAddress") == ip]
            lines = [l.strip() for l in host["nft"].splitlines() if ip in l]
            problems.append(f"nftables still names {ip}, no live instance's address "
                            f"(owner: {owner or 'none'}; {lines[:3]})")
    for port in set(re.findall(rf"\"({NET_PREFIX}[0-9a-f]{{6,}})\"", host["nft"])):
        if port not in host["veths"]:
            problems.append(f"nftables still names port {port}, which does not exist")
    return problems


def check_metering(data_dir, insts):
    """The usage intervals agree with the states: per instance, no overlap, compute open only
    while running, its root volume's `volume` interval open until terminated, at most one open
    of each."""
    problems = []
    db = sqlite3.connect(f"file:{os.path.join(data_dir, 'state.db')}?mode=ro", uri=True, timeout=10)
    try:
        rows = db.execute("SELECT resource_id, kind, start_ms, end_ms FROM usage "
                          "WHERE kind IN ('compute', 'volume') ORDER BY start_ms").fetchall()
    finally:
        db.close()
    by = {}
    for rid, kind, start, end in rows:
        by.setdefault((rid, kind), []).append((start, end))
    for iid, v in insts.items():
        s = v["State"]["Name"]
        # The root volume is metered as a volume; once terminated it is released by the
        # volume pass a moment later, so only live instances' are checked.
        root = [m["Ebs"]["VolumeId"] for m in v.get("BlockDeviceMappings", [])
                if m["DeviceName"] == "/dev/xvda"]
        checks = [(iid, "compute", s == "running")]
        if s != "terminated" and root:
            checks.append((root[0], "volume", True))
        for rid, kind, want_open in checks:
            ivs = by.get((rid, kind), [])
            open_ = [iv for iv in ivs if iv[1] is None]
            if len(open_) > 1:
                problems.append(f"{iid}: {len(open_)} open {kind} intervals")
            if bool(open_) != want_open:
                problems.append(f"{iid}: {s} with {'an open' if open_ else 'no open'} {kind} interval")
            last_end = None
            for start, end in ivs:
                if end is not None and end < start:
                    problems.append(f"{iid}: {kind} interval ends before it starts")
                if last_end is not None and start < last_end:
                    problems.append(f"{iid}: overlapping {kind} intervals")
                last_end = end if end is not None else float("inf")
    return problems


def run(server, image, kills, check_every, seed, log=print, max_live=10):
    """Kill the server `kills` times while the client drives lifecycle calls. Returns a
    summary dict; raises AssertionError on the first problem."""
    rng = random.Random(seed)
    chaos = Chaos(image, rng, max_live=max_live)
    summary = {"kills": 0, "checks": 0, "lost": 0, "leaked": 0, "mismatched": 0,
               "metering": 0, "restart_s": []}
    for k in range(1, kills + 1):
        stop = threading.Event()
        worker = threading.Thread(target=chaos.drive, args=(quick_client(server), stop), daemon=True)
        worker.start()
        time.sleep(rng.uniform(0.1, 2.0))
        server.stop(signal.SIGKILL)
        summary["kills"] += 1
        stop.set()
        worker.join(30)
        t0 = time.time()
        server.start(timeout=60)
        summary["restart_s"].append(time.time() - t0)
        ec2 = quick_client(server)
        chaos.replay_unanswered(ec2)
        missing = lost(chaos, ec2)
        summary["lost"] += len(missing)
        assert not missing, f"kill {k}: acknowledged instances lost: {missing}"
        if k % check_every == 0 or k == kills:
            insts = settle(ec2)
            problems = check_host(server.data_dir, insts, chaos)
            metering = check_metering(server.data_dir, insts)
            summary["checks"] += 1
            summary["leaked"] += sum(p.startswith("leaked") or "nftables" in p or "veths" in p for p in problems)
            summary["mismatched"] += sum(not (p.startswith("leaked") or "nftables" in p or "veths" in p)
                                         for p in problems)
            summary["metering"] += len(metering)
            states = [v["State"]["Name"] for v in insts.values()]
            log(f"kill {k}: {len(insts)} instances ({states.count('running')} running, "
                f"{states.count('stopped')} stopped, {states.count('terminated')} terminated), "
                f"{chaos.acked} calls acknowledged, {chaos.unanswered} unanswered")
            assert not problems and not metering, f"kill {k}: {problems + metering}"
    summary["calls_acked"] = chaos.acked
    summary["calls_unanswered"] = chaos.unanswered
    summary["instances"] = len(chaos.calls)
    return summary
