"""VM benchmark (issue #8): launch-to-SSH-ready of a t3.micro VM (tag gureum:hypervisor=vm,
debian-12-vm image) under the accelerator the host's probe picks, start-to-SSH after a stop,
graceful stop and terminate times. Runs against a fresh `gureum up`; needs root and QEMU.
Prints a markdown table and writes it into docs/BENCHMARKS.md between the bench:vm markers.
Usage: scripts/bench-vms [--rounds 3]
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
import shutil

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "e2e"))
sys.path.insert(0, os.path.dirname(__file__))
from conftest import Server  # noqa: E402

from common import pct, ssh_ready, write_section  # noqa: E402

TAG = [{"ResourceType": "instance", "Tags": [{"Key": "gureum:hypervisor", "Value": "vm"}]}]


def waiter(ec2, name, iid):
    ec2.get_waiter(name).wait(InstanceIds=[iid], WaiterConfig={"Delay": 0.2, "MaxAttempts": 1500})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="gureum-bench-vm-")
    os.environ["GUREUM_NO_DEFAULT_IMAGE"] = "1"
    s = Server(os.path.join(tmp, "data")).start()
    try:
        ec2 = s.client()
        ami = s.gureum("image", "build", "debian-12-vm").stdout.strip().splitlines()[-1]
        ec2.authorize_security_group_ingress(GroupName="default", IpProtocol="tcp", FromPort=22, ToPort=22,
                                             CidrIp="0.0.0.0/0")
        key = os.path.join(tmp, "k.pem")
        open(key, "w").write(ec2.create_key_pair(KeyName="bench")["KeyMaterial"])
        os.chmod(key, 0o600)
        ready, restart, stop, term = [], [], [], []
        for _ in range(args.rounds):
            t0 = time.time()
            iid = ec2.run_instances(ImageId=ami, InstanceType="t3.micro", KeyName="bench", MinCount=1, MaxCount=1,
                                    TagSpecifications=TAG)["Instances"][0]["InstanceId"]
            waiter(ec2, "instance_running", iid)
            ip = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["PublicIpAddress"]
            assert ssh_ready(key, ip, time.time() + 300), "no SSH"
            ready.append(time.time() - t0)
            t0 = time.time()
            ec2.stop_instances(InstanceIds=[iid])
            waiter(ec2, "instance_stopped", iid)
            stop.append(time.time() - t0)
            t0 = time.time()
            ec2.start_instances(InstanceIds=[iid])
            waiter(ec2, "instance_running", iid)
            ip = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["PublicIpAddress"]
            assert ssh_ready(key, ip, time.time() + 300), "no SSH after start"
            restart.append(time.time() - t0)
            t0 = time.time()
            ec2.terminate_instances(InstanceIds=[iid])
            waiter(ec2, "instance_terminated", iid)
            term.append(time.time() - t0)
        accel = "KVM" if "VMs use KVM" in open(s.log_path).read() else "TCG"

        def fmt(xs):
            return f"median {statistics.median(xs):.1f} s, max {pct(xs, 100):.1f} s ({len(xs)} runs)"

        rows = [
            (f"VM launch to SSH ready (t3.micro, {accel})", fmt(ready), "≤ 60 s under TCG"),
            ("VM start (after stop) to SSH ready", fmt(restart), "–"),
            ("VM graceful stop (ACPI power button) to stopped", fmt(stop), "–"),
            ("VM terminate to terminated", fmt(term), "–"),
        ]
        write_section("vm", "Virtual machines (QEMU)", rows,
                      f" Accelerator: {accel} (the probe's choice on this host). Base disk already made.")
    finally:
        s.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
