"""kill -9 of the server at random moments while instances launch, stop and terminate (see
chaos.py): nothing acknowledged is lost, states match the host, nothing leaks, metering agrees.
`scripts/bench-crash` runs the same with fifty kills. Needs root, runc and network
namespaces; skipped (and reported) otherwise."""

import os
import shutil
import tempfile

import pytest

import chaos
import chaos_volumes
from conftest import Server, host_can_run_instances, shut_down, with_default_image

why = host_can_run_instances()
pytestmark = pytest.mark.skipif(why is not None, reason=f"instances need root, runc and netns: {why}")

KILLS = int(os.environ.get("GUREUM_CRASH_KILLS", "8"))


def test_random_kills_lose_and_leak_nothing():
    tmp = tempfile.mkdtemp(prefix="gureum-e2e-crash-")
    s = with_default_image(Server(os.path.join(tmp, "data"), env={"GUREUM_WARM_POOL": "2"}).start())
    try:
        summary = chaos.run(s, s.image["ImageId"], kills=KILLS, check_every=4, seed=15)
        print(summary)
        assert summary["kills"] == KILLS and summary["checks"] >= 2
        assert summary["instances"] >= 3, "the client made too few instances to mean anything"
    finally:
        try:
            shut_down(s, artifact="test_crash_safety")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


VOLUME_KILLS = int(os.environ.get("GUREUM_VOLUME_CRASH_KILLS", "6"))


def test_random_kills_during_volume_calls_converge_and_leak_nothing():
    """kill -9 during attach, detach, snapshot and delete (chaos_volumes.py): every
    acknowledged volume and snapshot survives, the host ends up exactly as the records say
    (loop devices, device nodes, cgroup rules, volumes.json, pool files), and once everything
    is deleted nothing of the pool's is left."""
    tmp = tempfile.mkdtemp(prefix="gureum-e2e-vcrash-")
    s = with_default_image(Server(os.path.join(tmp, "data"), env={"GUREUM_WARM_POOL": "0"}).start())
    try:
        ec2 = s.client()
        r = ec2.run_instances(ImageId=s.image["ImageId"], InstanceType="t3.micro", MinCount=2, MaxCount=2)
        ids = [i["InstanceId"] for i in r["Instances"]]
        zone = r["Instances"][0]["Placement"]["AvailabilityZone"]
        ec2.get_waiter("instance_running").wait(InstanceIds=ids, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
        summary = chaos_volumes.run(s, ids, zone, kills=VOLUME_KILLS, check_every=2, seed=17)
        print(summary)
        assert summary["kills"] == VOLUME_KILLS and summary["checks"] >= 3
        assert summary["acked"] >= 10 and summary["volumes_made"] >= 2, "too few calls to mean anything"
        ec2 = chaos.quick_client(s)
        chaos_volumes.delete_everything(ec2)
        problems = chaos_volumes.check_host(s.data_dir, ids, {}, {})
        assert not problems, problems
    finally:
        try:
            shut_down(s, artifact="test_crash_safety_volumes")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
