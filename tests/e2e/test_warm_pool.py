"""The warm pool: guests of the default image booted ahead of launches. A launch of that image
takes one (the instance gets the waiting guest's id) and is a complete instance of its own:
its instance type's limits, its hostname and address, its key, its host keys, its user data,
stop/start and terminate. A clean stop destroys the pool; after a kill -9 the next start does.
Needs root, runc and network namespaces; skipped (and reported) otherwise."""

import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from conftest import (SSH_OPTS, Server, host_can_run_instances, shut_down, ssh, wait_for, wait_ssh,
                      warm_guests, with_default_image)
from test_instances import host_resources

why = host_can_run_instances()
pytestmark = pytest.mark.skipif(why is not None, reason=f"instances need root, runc and netns: {why}")


def runc_ids(data_dir):
    out = subprocess.run(["runc", "--root", os.path.join(data_dir, "instances", ".runc"), "list", "-q"],
                         capture_output=True, text=True).stdout
    return sorted(out.split())


def leftovers(data_dir, ids):
    """What of these guests is still on the host: containers, state dirs, cgroups, mounts."""
    left = [f"container {i}" for i in runc_ids(data_dir) if i in ids]
    left += [f"dir {i}" for i in ids if os.path.exists(os.path.join(data_dir, "instances", i))]
    left += [f"cgroup {p}" for i in ids for p in glob.glob(f"/sys/fs/cgroup/*/gureum/{i}")]
    mounts = open("/proc/mounts").read()
    left += [f"mount {i}" for i in ids if i in mounts]
    return left


@pytest.fixture(scope="module")
def pool():
    tmp = tempfile.mkdtemp(prefix="gureum-e2e-warm-")
    s = with_default_image(Server(os.path.join(tmp, "data"), env={"GUREUM_WARM_POOL": "2"}).start())
    yield s
    try:
        shut_down(s, artifact="test_warm_pool")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_a_launch_takes_a_warm_guest_and_becomes_a_whole_instance(pool, tmp_path):
    ec2 = pool.client()
    waiting = wait_for(lambda: warm_guests(pool.data_dir), 60, "a warm guest")
    key = tmp_path / "k.pem"
    key.write_text(ec2.create_key_pair(KeyName="warm")["KeyMaterial"])
    os.chmod(key, 0o600)
    user_data = "#!/bin/sh\necho ran >> /root/count\n"
    t0 = time.time()
    inst = ec2.run_instances(ImageId=pool.image["ImageId"], InstanceType="t2.small", KeyName="warm",
                             MinCount=1, MaxCount=1, UserData=user_data)["Instances"][0]
    iid, ip = inst["InstanceId"], inst["PrivateIpAddress"]
    assert iid in waiting, "the launch took a waiting guest"
    wait_ssh(key, ip, timeout=20)
    print(f"warm launch to SSH: {time.time() - t0:.2f} s")
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    assert iid not in warm_guests(pool.data_dir, waiting_only=False), "no longer a warm guest"

    # The instance's own identity and limits, not the pool's.
    out = ssh(key, ip, "hostname; cat /proc/sys/kernel/hostname; nproc; free -m | awk '/Mem:/{print $2}'; "
                       "df -h / | awk 'NR==2{print $2}'; ip -4 -o addr show dev eth0 | awk '{print $4}'; "
                       "systemctl is-system-running --wait; sudo cat /root/count; "
                       "df -m --output=size /dev/shm /tmp | tail -n 2").stdout.split()
    name = f"ip-{ip.replace('.', '-')}"
    assert out[0] == name and out[1] == name
    assert out[2] == "1"
    assert 1900 <= int(out[3]) <= 2048, f"t2.small has 2 GiB: {out[3]}"
    assert out[4] in ("7.8G", "7.9G", "8.0G"), out[4]
    assert out[5].startswith(ip + "/")
    assert out[6] == "running"
    assert out[7] == "ran", "user data ran once"
    # /dev/shm and /tmp are half of the instance's memory, not of the pool's 512 MiB.
    assert out[8:] == ["1024", "1024"], out[8:]
    # Its host keys are its own, and the console shows their fingerprints.
    console = ec2.get_console_output(InstanceId=iid).get("Output", "")
    block = console.split("-----BEGIN SSH HOST KEY FINGERPRINTS-----")[1].split("-----END")[0]
    scan = subprocess.run(["ssh-keyscan", "-t", "ed25519", ip], capture_output=True, text=True, timeout=10).stdout
    served = subprocess.run(["ssh-keygen", "-lf", "-"], input=scan, capture_output=True, text=True).stdout
    assert served.split()[1] in block

    # Stop and start: a normal instance from here on.
    ssh(key, ip, "echo kept > ~/note && sync")
    ec2.stop_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    ec2.start_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    wait_ssh(key, ip)
    out = ssh(key, ip, "cat ~/note; hostname; sudo cat /root/count").stdout.split()
    assert out == ["kept", name, "ran"]

    ec2.terminate_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    assert host_resources(iid) == [] and leftovers(pool.data_dir, [iid]) == []


def test_a_warm_guest_that_died_still_launches(pool, tmp_path):
    """A waiting guest killed from outside (as the OOM killer would) just before a launch takes
    it: the launch boots it anew instead and the instance works; the pool replaces it."""
    ec2 = pool.client()
    victim = wait_for(lambda: warm_guests(pool.data_dir), 60, "a warm guest")[0]
    runc = ["runc", "--root", os.path.join(pool.data_dir, "instances", ".runc")]
    subprocess.run([*runc, "kill", victim, "KILL"], check=True)
    wait_for(lambda: '"status": "stopped"' in subprocess.run([*runc, "state", victim], capture_output=True,
                                                             text=True).stdout, 10, "the guest to die")
    key = tmp_path / "k.pem"
    key.write_text(ec2.create_key_pair(KeyName="dead")["KeyMaterial"])
    os.chmod(key, 0o600)
    ids = [i["InstanceId"] for i in ec2.run_instances(ImageId=pool.image["ImageId"], InstanceType="t2.micro",
                                                       KeyName="dead", MinCount=2, MaxCount=2)["Instances"]]
    ec2.get_waiter("instance_running").wait(InstanceIds=ids, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    for inst in ec2.describe_instances(InstanceIds=ids)["Reservations"][0]["Instances"]:
        wait_ssh(key, inst["PrivateIpAddress"], timeout=30)
        assert ssh(key, inst["PrivateIpAddress"], "hostname").stdout.strip() == \
            f"ip-{inst['PrivateIpAddress'].replace('.', '-')}"
    ec2.terminate_instances(InstanceIds=ids)
    ec2.get_waiter("instance_terminated").wait(InstanceIds=ids, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    assert leftovers(pool.data_dir, ids) == []
    wait_for(lambda: len(warm_guests(pool.data_dir)) >= 2, 60, "the pool to refill")


def test_other_shapes_boot_their_own(pool, tmp_path):
    ec2 = pool.client()
    waiting = wait_for(lambda: warm_guests(pool.data_dir), 60, "a warm guest")
    # A bigger root volume than the pool's: booted for this launch, the pool left alone.
    inst = ec2.run_instances(ImageId=pool.image["ImageId"], InstanceType="t2.nano", MinCount=1, MaxCount=1,
                             BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 9}}])["Instances"][0]
    assert inst["InstanceId"] not in waiting
    ec2.get_waiter("instance_running").wait(InstanceIds=[inst["InstanceId"]], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    assert set(waiting) <= set(warm_guests(pool.data_dir)), "the waiting guests are still there"
    ec2.terminate_instances(InstanceIds=[inst["InstanceId"]])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[inst["InstanceId"]], WaiterConfig={"Delay": 1, "MaxAttempts": 60})


def test_a_stop_destroys_the_pool_and_a_kill_9_leaves_it_to_the_next_start():
    tmp = tempfile.mkdtemp(prefix="gureum-e2e-warm-")
    data = os.path.join(tmp, "data")
    try:
        s = Server(data, env={"GUREUM_WARM_POOL": "2"}).start()
        guests = wait_for(lambda: len(warm_guests(data)) >= 2 and warm_guests(data), 120, "two warm guests")
        s.stop()
        assert leftovers(data, guests) == [], "a clean stop destroys the pool"

        s = Server(data, env={"GUREUM_WARM_POOL": "2"}).start()
        guests = wait_for(lambda: len(warm_guests(data)) >= 2 and warm_guests(data), 120, "two warm guests")
        s.stop(signal.SIGKILL)
        assert set(guests) <= set(runc_ids(data)), "a kill -9 leaves the guests running"
        # The next server (without a pool) destroys them as leftovers nobody owns: its leak
        # sweep, or at the latest its clean stop, even one right after the start.
        s = Server(data, env={"GUREUM_WARM_POOL": "0"}).start()
        assert s.stop() == 0
        assert leftovers(data, guests) == [], "the next server's stop leaves none of them"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
