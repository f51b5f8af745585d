"""Launch to SSH ready, two gureum binaries in one run (A/B for a refactor that must not make
it slower). Rounds alternate the binaries (A, B, A, B, ...), each round a fresh server on a
fresh data dir sharing one image cache, so drift in the machine's speed hits both alike. In
each round: `--warm` launches taken from the warm pool (the pool refilled before each), then
`--cold` launches that boot their own guest (a 9 GiB root volume no warm guest matches); each
is timed from the RunInstances call until `ssh admin@<private ip> true` succeeds, then
terminated. Needs root. Prints a markdown table; writes nothing.
Usage: scripts/bench-launch-ab OLD_BIN NEW_BIN [--rounds 2] [--warm 3] [--cold 2]
"""

import argparse
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "e2e"))
sys.path.insert(0, os.path.dirname(__file__))
import conftest  # noqa: E402
from conftest import Server, warm_guests  # noqa: E402

from common import default_image, pct, ssh_ready  # noqa: E402


def one_round(binary, tmp, cache, warm, cold, label):
    conftest.GUREUM = binary
    data = os.path.join(tmp, f"data-{label}-{time.time_ns()}")
    s = Server(data)
    s.start(timeout=60)
    out = {"warm": [], "cold": [], "warm_hits": 0}
    try:
        ec2 = s.client()
        ami = default_image(ec2)
        ec2.authorize_security_group_ingress(GroupName="default", IpProtocol="tcp", FromPort=22,
                                             ToPort=22, CidrIp="0.0.0.0/0")
        key = os.path.join(tmp, f"{label}.pem")
        with open(key, "w") as f:
            f.write(ec2.create_key_pair(KeyName="bench", KeyType="ed25519")["KeyMaterial"])
        os.chmod(key, 0o600)
        for kind, n in (("warm", warm), ("cold", cold)):
            for _ in range(n):
                # A host idle for a few seconds: the warm pool full again.
                deadline = time.time() + 120
                while time.time() < deadline and len(warm_guests(s.data_dir)) < min(warm, 10):
                    time.sleep(0.5)
                waiting = set(warm_guests(s.data_dir))
                extra = {"BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 9}}]} \
                    if kind == "cold" else {}
                t0 = time.time()
                r = ec2.run_instances(ImageId=ami, InstanceType="t2.micro", KeyName="bench",
                                      MinCount=1, MaxCount=1, **extra)
                inst = r["Instances"][0]
                ok = ssh_ready(key, inst["PrivateIpAddress"], t0 + 60)
                out[kind].append((time.time() - t0) if ok else float("inf"))
                out["warm_hits"] += kind == "warm" and inst["InstanceId"] in waiting
                ec2.terminate_instances(InstanceIds=[inst["InstanceId"]])
                ec2.get_waiter("instance_terminated").wait(
                    InstanceIds=[inst["InstanceId"]], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    finally:
        conftest.shut_down(s)
        shutil.rmtree(data, ignore_errors=True)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--warm", type=int, default=3)
    ap.add_argument("--cold", type=int, default=2)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="gureum-launch-ab-")
    cache = os.environ.get("GUREUM_CACHE_DIR") or os.path.join(tmp, "cache")
    os.environ["GUREUM_CACHE_DIR"] = cache
    results = {"old": {"warm": [], "cold": [], "warm_hits": 0},
               "new": {"warm": [], "cold": [], "warm_hits": 0}}
    try:
        for r in range(args.rounds):
            for label in ("old", "new"):
                got = one_round(getattr(args, label), tmp, cache, args.warm, args.cold, label)
                for k in ("warm", "cold"):
                    results[label][k] += got[k]
                results[label]["warm_hits"] += got["warm_hits"]
                print(f"round {r + 1} {label}: warm {['%.2f' % x for x in got['warm']]} "
                      f"cold {['%.2f' % x for x in got['cold']]}", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("| launch to SSH ready (s) | old p50 / max | new p50 / max | launches each |")
    print("|---|---|---|---|")
    for k, what in (("warm", "from the warm pool"), ("cold", "cold (own boot)")):
        o, n = results["old"][k], results["new"][k]
        print(f"| {what} | {pct(o, 50):.2f} / {max(o):.2f} | {pct(n, 50):.2f} / {max(n):.2f} | {len(o)} |")
    print(f"warm-pool hits: old {results['old']['warm_hits']}, new {results['new']['warm_hits']} "
          f"of {args.rounds * args.warm}")


if __name__ == "__main__":
    main()
