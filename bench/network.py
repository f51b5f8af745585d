"""Networking benchmarks (networking issue), against a fresh `gureum up` (release build) with real
instances; needs root.

- security-group change to effect: after `AuthorizeSecurityGroupIngress` returns, how long until
  a new TCP connection to the instance's public IP succeeds (and after `Revoke…`, until one
  fails), polled every 2 ms;
- TCP throughput from the host to the instance through its public IP (nftables DNAT) and to its
  private IP, the same transfer, best of 3 each;
- connection set-up (TCP connect + one small HTTP GET, new connection each time) to an
  instance with a handful of rules and to one in 5 groups of 1,000 rules in all, alternately;
- an IMDS read from inside the instance (keep-alive connection, IMDSv2 token), p50 / p99.

Prints a markdown table and writes it into docs/BENCHMARKS.md between its markers.
Usage: scripts/bench-network [--rounds 20] [--megabytes 1024]
"""

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "e2e"))
sys.path.insert(0, os.path.dirname(__file__))
from conftest import Server  # noqa: E402

from common import ROOT, default_image, SSH_OPTS, pct, ssh_ready, write_section  # noqa: E402

SINK = ("import socket\n"
        "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
        "s.bind(('', 9000)); s.listen(4)\n"
        "while True:\n"
        "    c, _ = s.accept()\n"
        "    while c.recv(1 << 20):\n"
        "        pass\n"
        "    c.sendall(b'k'); c.close()\n")

IMDS = ("import http.client, time\n"
        "c = http.client.HTTPConnection('169.254.169.254', 80)\n"
        "c.request('PUT', '/latest/api/token', headers={'X-aws-ec2-metadata-token-ttl-seconds': '600'})\n"
        "tok = c.getresponse().read().decode()\n"
        "lat = []\n"
        "for i in range(3000):\n"
        "    t = time.perf_counter()\n"
        "    c.request('GET', '/latest/meta-data/instance-id', headers={'X-aws-ec2-metadata-token': tok})\n"
        "    r = c.getresponse(); r.read(); assert r.status == 200\n"
        "    lat.append(time.perf_counter() - t)\n"
        "lat = sorted(lat[500:])\n"
        "print(lat[len(lat) // 2] * 1000, lat[int(len(lat) * 0.99)] * 1000)\n")


def can_connect(ip, port, timeout):
    try:
        with socket.create_connection((ip, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(pred, limit=5.0, every=0.002):
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < limit:
        if pred():
            return time.perf_counter() - t0
        time.sleep(every)
    return float("inf")


def get_once(ip, port):
    t = time.perf_counter()
    with socket.create_connection((ip, port), timeout=2) as c:
        c.sendall(b"GET /id HTTP/1.0\r\n\r\n")
        while c.recv(65536):
            pass
    return time.perf_counter() - t


def transfer(ip, megabytes):
    buf = b"\0" * (1 << 20)
    t = time.perf_counter()
    with socket.create_connection((ip, 9000), timeout=10) as c:
        for _ in range(megabytes):
            c.sendall(buf)
        c.shutdown(socket.SHUT_WR)
        c.recv(1)  # the sink's acknowledgement: everything arrived
    return megabytes / (time.perf_counter() - t)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--megabytes", type=int, default=1024)
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "gureum"))
    args = ap.parse_args()
    import conftest
    conftest.GUREUM = args.bin

    tmp = tempfile.mkdtemp(prefix="gureum-bench-net-")
    s = Server(os.path.join(tmp, "data"))
    s.start()
    rows = []
    try:
        ec2 = s.client()
        ami = default_image(ec2)
        key = os.path.join(tmp, "bench.pem")
        with open(key, "w") as f:
            f.write(ec2.create_key_pair(KeyName="bench", KeyType="ed25519")["KeyMaterial"])
        os.chmod(key, 0o600)
        gid = ec2.create_security_group(GroupName="bench", Description="bench")["GroupId"]
        for port in (22, 9000):
            ec2.authorize_security_group_ingress(GroupId=gid, IpProtocol="tcp", FromPort=port, ToPort=port,
                                                 CidrIp="0.0.0.0/0")
        r = ec2.run_instances(ImageId=ami, InstanceType="t3.large", KeyName="bench", MinCount=1, MaxCount=1,
                              SecurityGroupIds=[gid])
        iid = r["Instances"][0]["InstanceId"]
        ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        inst = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
        private, public = inst["PrivateIpAddress"], inst["PublicIpAddress"]
        assert ssh_ready(key, private, time.time() + 60)

        def ssh(cmd, **kw):
            return subprocess.run(["ssh", *SSH_OPTS, "-i", key, f"admin@{private}", cmd], capture_output=True,
                                  text=True, timeout=120, **kw)

        ssh("mkdir -p /tmp/www && hostname > /tmp/www/id && cd /tmp/www && "
            "(nohup python3 -m http.server 8080 >/dev/null 2>&1 &)")
        ssh("cat > /tmp/sink.py && (nohup python3 /tmp/sink.py >/dev/null 2>&1 &)", input=SINK)
        wait_until(lambda: can_connect(private, 8080, 0.2), 15, 0.05)

        # 1. Security-group change to effect, through the public IP.
        opened, closed = [], []
        for _ in range(args.rounds):
            ec2.authorize_security_group_ingress(GroupId=gid, IpProtocol="tcp", FromPort=8080, ToPort=8080,
                                                 CidrIp="0.0.0.0/0")
            opened.append(wait_until(lambda: can_connect(public, 8080, 0.05)))
            ec2.revoke_security_group_ingress(GroupId=gid, IpProtocol="tcp", FromPort=8080, ToPort=8080,
                                              CidrIp="0.0.0.0/0")
            closed.append(wait_until(lambda: not can_connect(public, 8080, 0.05)))
        rows.append(("security-group rule added → new connection succeeds (p50 / p99)",
                     f"{pct(opened, 50) * 1000:.0f} / {pct(opened, 99) * 1000:.0f} ms", "≤ 100 ms p50"))
        rows.append(("security-group rule revoked → new connection refused (p50 / p99)",
                     f"{pct(closed, 50) * 1000:.0f} / {pct(closed, 99) * 1000:.0f} ms", "≤ 100 ms p50"))

        # 2. Throughput, public vs private.
        priv_tp, pub_tp = [], []
        for _ in range(3):
            priv_tp.append(transfer(private, args.megabytes))
            pub_tp.append(transfer(public, args.megabytes))
        ratio = max(pub_tp) / max(priv_tp)
        rows.append((f"TCP throughput host → instance, {args.megabytes} MiB (private / public IP, best of 3)",
                     f"{max(priv_tp):.0f} / {max(pub_tp):.0f} MiB/s ({ratio * 100:.0f} %)", "public ≥ 90 % of private"))

        # 3. Connection set-up: an instance with a handful of rules and one whose groups hold
        # 1,000 rules in all, measured alternately so machine noise hits both alike.
        ec2.authorize_security_group_ingress(GroupId=gid, IpProtocol="tcp", FromPort=8080, ToPort=8080,
                                             CidrIp="0.0.0.0/0")
        r = ec2.run_instances(ImageId=ami, InstanceType="t3.micro", KeyName="bench", MinCount=1, MaxCount=1,
                              SecurityGroupIds=[gid])
        iid2 = r["Instances"][0]["InstanceId"]
        ec2.get_waiter("instance_running").wait(InstanceIds=[iid2], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        inst2 = ec2.describe_instances(InstanceIds=[iid2])["Reservations"][0]["Instances"][0]
        private2, public2 = inst2["PrivateIpAddress"], inst2["PublicIpAddress"]
        assert ssh_ready(key, private2, time.time() + 60)
        subprocess.run(["ssh", *SSH_OPTS, "-i", key, f"admin@{private2}",
                        "mkdir -p /tmp/www && hostname > /tmp/www/id && cd /tmp/www && "
                        "(nohup python3 -m http.server 8080 >/dev/null 2>&1 &)"], capture_output=True, timeout=60)
        groups, total = [], 4
        for g in range(17):
            gg = ec2.create_security_group(GroupName=f"bulk{g}", Description="bulk")["GroupId"]
            groups.append(gg)
            n = min(59, 1000 - total)
            perms = [{"IpProtocol": "tcp", "FromPort": 10000 + k, "ToPort": 10000 + k,
                      "IpRanges": [{"CidrIp": f"10.{g}.{k}.0/24"}]} for k in range(n)]
            if perms:
                ec2.authorize_security_group_ingress(GroupId=gg, IpPermissions=perms)
            total += n
        ec2.modify_instance_attribute(InstanceId=iid2, Groups=[gid] + groups[:4])
        wait_until(lambda: can_connect(public, 8080, 0.05) and can_connect(public2, 8080, 0.05), 15, 0.05)
        time.sleep(1)
        few, many = [], []
        for _ in range(500):
            few.append(get_once(public, 8080))
            many.append(get_once(public2, 8080))
        rows.append(("new connection + HTTP GET via public IP, instance with 4 rules (p50 / p99)",
                     f"{pct(few, 50) * 1000:.2f} / {pct(few, 99) * 1000:.2f} ms", "—"))
        rows.append((f"the same, instance in 5 groups of the {total} rules in {len(groups) + 1} groups (p50 / p99)",
                     f"{pct(many, 50) * 1000:.2f} / {pct(many, 99) * 1000:.2f} ms",
                     "no measurable slow-down"))

        # 4. IMDS from inside.
        out = ssh("python3 -", input=IMDS).stdout.split()
        rows.append(("IMDS read from inside the instance, keep-alive, IMDSv2 (p50 / p99)",
                     f"{float(out[0]):.2f} / {float(out[1]):.2f} ms", "≤ 1 ms p50"))

        ec2.terminate_instances(InstanceIds=[iid, iid2])
        ec2.get_waiter("instance_terminated").wait(InstanceIds=[iid, iid2],
                                                   WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    finally:
        s.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    rows.append(("load average during the run (other work on the machine)", f"{os.getloadavg()[0]:.1f}", "—"))
    write_section("network", "Networking (`scripts/bench-network`)", rows,
                  " One t3.large instance; the host is the client.")


if __name__ == "__main__":
    main()
