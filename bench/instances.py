"""Instance benchmarks (images and instances issues): image build and cache reuse, root
filesystem preparation, RunInstances latency, launch-to-SSH-ready for 1 and 10 concurrent
launches (from the warm pool, and cold: a boot of their own), terminate-to-freed, and the
host overhead of 100 idle t2.nano instances.

Runs against a fresh `gureum up` (release build) on a free port; needs root. Prints a
markdown table and writes it into docs/BENCHMARKS.md between its markers.
Usage: scripts/bench-instances [--idle 100] [--rounds 5]
"""

import argparse
import concurrent.futures as cf
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "e2e"))
sys.path.insert(0, os.path.dirname(__file__))
from conftest import Server, warm_guests  # noqa: E402

from common import ROOT, default_image, pct, ssh_ready, write_section  # noqa: E402


def meminfo(field):
    for line in open("/proc/meminfo"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def used_memory():
    """Memory in use on the host, page cache excluded (it is reclaimable and shared)."""
    m = {l.split(":")[0]: int(l.split()[1]) * 1024 for l in open("/proc/meminfo")}
    return m["MemTotal"] - m["MemFree"] - m["Buffers"] - m["Cached"] - m.get("SReclaimable", 0) + m.get("Shmem", 0)


def guest_memory(ids):
    """Memory charged to the guests' own cgroups, page cache excluded (as in used_memory)."""
    total = 0
    for iid in ids:
        v1 = f"/sys/fs/cgroup/memory/gureum/{iid}"
        v2 = [f"/sys/fs/cgroup/gureum/{iid}", f"/sys/fs/cgroup/unified/gureum/{iid}"]
        if os.path.exists(v1 + "/memory.usage_in_bytes"):
            stat = dict(l.split() for l in open(v1 + "/memory.stat"))
            total += int(open(v1 + "/memory.usage_in_bytes").read()) - int(stat.get("total_cache", 0)) \
                + int(stat.get("total_shmem", 0))
            continue
        for d in v2:
            if os.path.exists(d + "/memory.current"):
                stat = dict(l.split() for l in open(d + "/memory.stat"))
                total += int(open(d + "/memory.current").read()) - int(stat.get("file", 0)) + int(stat.get("shmem", 0))
                break
    return total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--idle", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--bursts", type=int, default=3, help="rounds of 10 concurrent launches")
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "gureum"))
    args = ap.parse_args()
    os.environ["GUREUM_BIN"] = args.bin
    import conftest
    conftest.GUREUM = args.bin

    rows = []
    tmp = tempfile.mkdtemp(prefix="gureum-bench-")
    cache = os.path.join(tmp, "cache")

    # Image: a build from Debian's packages into an empty cache, then reuse from the cache.
    t = time.time()
    b = subprocess.run([args.bin, "--data-dir", os.path.join(tmp, "img1"), "image", "build", "debian-12",
                        "--cache-dir", cache], capture_output=True, text=True)
    build_s = time.time() - t
    assert b.returncode == 0, b.stderr
    t = time.time()
    subprocess.run([args.bin, "--data-dir", os.path.join(tmp, "img2"), "image", "build", "debian-12",
                    "--cache-dir", cache], capture_output=True, text=True, check=True)
    reuse_s = time.time() - t
    size = subprocess.run(["du", "-sxb", *[os.path.join(cache, "builds", d, "current", "rootfs")
                                          for d in os.listdir(os.path.join(cache, "builds"))]],
                          capture_output=True, text=True).stdout.split()[0]
    rows += [("debian-12 image build from Debian packages", f"{build_s:.1f} s", "< 60 s"),
             ("image reuse from cache (fresh data dir)", f"{reuse_s * 1000:.0f} ms", "< 1 s"),
             ("default image size on disk", f"{int(size) / 2**20:.0f} MiB", "< 300 MiB")]

    s = Server(os.path.join(tmp, "data"))
    os.environ["GUREUM_CACHE_DIR"] = cache
    os.environ["GUREUM_INSTANCE_LIMIT"] = str(args.idle + 20)
    os.environ["GUREUM_HOST_CAPACITY"] = str(args.idle + 20)
    os.environ["GUREUM_LOG"] = "info,gureum=debug"
    s.start()
    try:
        ec2 = s.client()
        ami = default_image(ec2)
        # The default group admits only its members: open SSH for the probe from the host.
        ec2.authorize_security_group_ingress(GroupName="default", IpProtocol="tcp", FromPort=22, ToPort=22,
                                             CidrIp="0.0.0.0/0")
        key = os.path.join(tmp, "bench.pem")
        with open(key, "w") as f:
            f.write(ec2.create_key_pair(KeyName="bench", KeyType="ed25519")["KeyMaterial"])
        os.chmod(key, 0o600)

        def launch_to_ssh(itype="t2.micro", cold=False):
            t0 = time.time()
            # Cold: a 9 GiB root volume, which the pool's 8 GiB guests do not match.
            extra = {"BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 9}}]} if cold else {}
            r = ec2.run_instances(ImageId=ami, InstanceType=itype, KeyName="bench", MinCount=1, MaxCount=1, **extra)
            api = time.time() - t0
            inst = r["Instances"][0]
            ok = ssh_ready(key, inst["PrivateIpAddress"], t0 + 60)
            return inst["InstanceId"], api, (time.time() - t0) if ok else float("inf")

        def terminate_freed(iid):
            t0 = time.time()
            ec2.terminate_instances(InstanceIds=[iid])
            while True:
                st = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["State"]["Name"]
                gone = iid not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout \
                    and iid not in open("/proc/mounts").read()
                if st == "terminated" and gone:
                    return time.time() - t0
                time.sleep(0.01)

        def pool_ready(n):
            """Wait (up to 2 min) until the host-key pool in the cache holds n sets: a host's
            steady state, since the pool refills whenever the host is idle."""
            pool = os.path.join(cache, "host-keys")
            t = time.time()
            while time.time() - t < 120:
                if os.path.isdir(pool) and len([e for e in os.listdir(pool) if e.startswith("set-")]) >= n:
                    return
                time.sleep(1)

        def warm_ready(n):
            """Wait (up to 2 min) until the warm pool has n guests done booting (it refills
            once launches pause for 3 s)."""
            t = time.time()
            while time.time() - t < 120 and len(warm_guests(s.data_dir)) < n:
                time.sleep(0.5)

        api_lat, single, concurrent, term, term_conc = [], [], [], [], []
        cold_single, cold_concurrent, warm_hits = [], [], 0
        for cold in (False, True):
            for _ in range(args.rounds):
                pool_ready(10)
                warm_ready(10)
                waiting = set(warm_guests(s.data_dir))
                iid, api, ready = launch_to_ssh(cold=cold)
                warm_hits += iid in waiting
                (cold_single if cold else single).append(ready)
                api_lat.append(api)
                term.append(terminate_freed(iid))
            for _ in range(args.bursts):
                pool_ready(10)
                warm_ready(10)
                waiting = set(warm_guests(s.data_dir))
                with cf.ThreadPoolExecutor(10) as pool:
                    res = list(pool.map(lambda _: launch_to_ssh(cold=cold), range(10)))
                warm_hits += sum(r[0] in waiting for r in res)
                (cold_concurrent if cold else concurrent).extend(r[2] for r in res)
                api_lat += [r[1] for r in res]
                with cf.ThreadPoolExecutor(10) as pool:
                    term_conc += list(pool.map(terminate_freed, [r[0] for r in res]))
        warm_launches = args.rounds + 10 * args.bursts
        log = open(s.log_path).read()
        prep = [float(m) for m in re.findall(r"volume prepared.*?ms=([0-9.]+)", log)] or \
               [float(m) for m in re.findall(r"prepare.*?elapsed_ms=([0-9.]+)", log)]
        rows += [
            ("RunInstances API call (p50 / p99)", f"{pct(api_lat, 50) * 1000:.0f} / {pct(api_lat, 99) * 1000:.0f} ms", "< 50 ms"),
            ("launch to SSH ready, 1 launch (p50 / p99)", f"{pct(single, 50):.2f} / {pct(single, 99):.2f} s", "≤ 1.5 / 3 s"),
            ("launch to SSH ready, 10 concurrent (p50 / p99)", f"{pct(concurrent, 50):.2f} / {pct(concurrent, 99):.2f} s", "≤ 1.5 / 3 s"),
            ("launches that took a warm guest (of the two rows above)", f"{warm_hits} of {warm_launches}", "—"),
            ("cold launch (no warm guest: own boot) to SSH ready, 1 launch (p50 / p99)",
             f"{pct(cold_single, 50):.2f} / {pct(cold_single, 99):.2f} s", "—"),
            ("cold launches to SSH ready, 10 concurrent (p50 / p99)",
             f"{pct(cold_concurrent, 50):.2f} / {pct(cold_concurrent, 99):.2f} s", "—"),
            ("terminate until host resources freed, one at a time (p50)", f"{pct(term, 50) * 1000:.0f} ms", "≤ 300 ms"),
            ("terminate until host resources freed, 10 at once (p50)", f"{pct(term_conc, 50) * 1000:.0f} ms", "—"),
        ]
        if prep:
            rows.append(("root filesystem preparation (p50)", f"{pct(prep, 50):.1f} ms", "< 20 ms"))

        # 100 idle t2.nano: host memory used beyond what the guests' own cgroups hold.
        used0 = used_memory()
        ids = []
        for chunk in range(0, args.idle, 10):
            n = min(10, args.idle - chunk)
            r = ec2.run_instances(ImageId=ami, InstanceType="t2.nano", KeyName="bench", MinCount=n, MaxCount=n)
            ids += [i["InstanceId"] for i in r["Instances"]]
        ec2.get_waiter("instance_running").wait(InstanceIds=ids, WaiterConfig={"Delay": 2, "MaxAttempts": 150})
        time.sleep(15)  # let the guests settle to idle
        running = sum(1 for res in ec2.describe_instances(InstanceIds=ids)["Reservations"]
                      for i in res["Instances"] if i["State"]["Name"] == "running")
        used = used_memory() - used0
        # The warm pool's guests (refilled while the instances idle) are guests too.
        guests = guest_memory(ids) + guest_memory(warm_guests(s.data_dir))
        overhead = (used - guests) / max(1, running) / 2**20
        load = os.getloadavg()[0]
        rows += [(f"{args.idle} idle t2.nano running at once", f"{running} running", f"{args.idle}"),
                 ("host overhead per idle instance (outside the guest's cgroup)",
                  f"{overhead:.1f} MiB (guests: {guests / max(1, running) / 2**20:.1f} MiB each)", "≤ 15 MiB")]
        for i in range(0, len(ids), 50):
            ec2.terminate_instances(InstanceIds=ids[i:i + 50])
        ec2.get_waiter("instance_terminated").wait(InstanceIds=ids, WaiterConfig={"Delay": 2, "MaxAttempts": 150})
    finally:
        s.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    rows.append(("load average during the run (other work on the machine)", f"{os.getloadavg()[0]:.1f}", "—"))
    note = ("\n\nLaunch to SSH ready is timed from the RunInstances call until `ssh -i key admin@<private ip> true`"
            " succeeds; like a deploy tool, the probe waits for the server's SSH banner before running ssh. Each"
            " launch and burst starts with the host-key pool holding at least 10 sets and the warm pool 10 booted"
            " guests: the state of a host that has been idle for a few seconds. A burst beyond the key pool makes the"
            " rest of its keys in the guests, about a CPU-second each; launches beyond the warm pool boot their own"
            " guest, as the cold rows do (their 9 GiB root volume matches no warm guest).")
    write_section("instances", "Images and instances (`scripts/bench-instances`)", rows, note)


if __name__ == "__main__":
    main()
