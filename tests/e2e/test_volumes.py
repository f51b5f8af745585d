"""EBS volumes on real instances, as a user does it on EC2: create a volume, attach it to a
running instance, `mkfs`, mount and write inside, detach (busy while mounted), attach it to
another instance and read the data there; a snapshot of a busy volume, a volume made from it
holding the snapshot's bytes and not later writes; root volumes in DescribeVolumes and
DeleteOnTermination both ways; an image registered from a snapshot that boots. Needs root,
runc and network namespaces; skipped (and reported) otherwise."""

import os
import shutil
import tempfile
import time

import botocore.exceptions
import pytest

from conftest import host_can_run_instances, shut_down, ssh, wait_for, wait_ssh, with_default_image
from conftest import Server

why = host_can_run_instances()
pytestmark = pytest.mark.skipif(why is not None, reason=f"instances need root, runc and netns: {why}")

WAIT = {"Delay": 1, "MaxAttempts": 120}


@pytest.fixture(scope="module")
def cloud(request):
    tmp = tempfile.mkdtemp(prefix="gureum-e2e-vol-")
    s = with_default_image(Server(os.path.join(tmp, "data")).start())
    ec2 = s.client()
    key = os.path.join(tmp, "vol.pem")
    with open(key, "w") as f:
        f.write(ec2.create_key_pair(KeyName="vol")["KeyMaterial"])
    os.chmod(key, 0o600)
    s.key = key
    yield s
    try:
        for v in ec2.describe_volumes()["Volumes"]:
            for a in v["Attachments"]:
                try:
                    ec2.detach_volume(VolumeId=v["VolumeId"], Force=True)
                except botocore.exceptions.ClientError:
                    pass
        shut_down(s, artifact=request.module.__name__)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def launch(cloud, **kw):
    ec2 = cloud.client()
    args = dict(ImageId=cloud.image["ImageId"], InstanceType="t3.micro", KeyName="vol", MinCount=1,
                MaxCount=1)
    args.update(kw)
    iid = ec2.run_instances(**args)["Instances"][0]["InstanceId"]
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig=WAIT)
    inst = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    wait_ssh(cloud.key, inst["PrivateIpAddress"], timeout=60)
    return inst


def sh(cloud, inst, command, check=True, timeout=60):
    return ssh(cloud.key, inst["PrivateIpAddress"], command, check=check, timeout=timeout)


def volume(ec2, vid):
    return ec2.describe_volumes(VolumeIds=[vid])["Volumes"][0]


def attach(ec2, vid, inst, device):
    a = ec2.attach_volume(VolumeId=vid, InstanceId=inst["InstanceId"], Device=device)
    assert a["State"] in ("attaching", "attached") and a["Device"] == device
    ec2.get_waiter("volume_in_use").wait(VolumeIds=[vid], WaiterConfig=WAIT)
    wait_for(lambda: volume(ec2, vid)["Attachments"][0]["State"] == "attached", 30, "attached")


def wait_available(ec2, vid):
    ec2.get_waiter("volume_available").wait(VolumeIds=[vid], WaiterConfig=WAIT)


def test_root_volumes_are_volumes(cloud):
    ec2 = cloud.client()
    inst = launch(cloud)
    root = inst["BlockDeviceMappings"]
    assert [m["DeviceName"] for m in root] == ["/dev/xvda"], root
    vid = root[0]["Ebs"]["VolumeId"]
    assert vid.startswith("vol-") and root[0]["Ebs"]["DeleteOnTermination"] is True
    assert root[0]["Ebs"]["Status"] == "attached"
    v = volume(ec2, vid)
    assert v["State"] == "in-use" and v["Size"] == 8
    assert v["AvailabilityZone"] == inst["Placement"]["AvailabilityZone"]
    assert v["Attachments"][0]["InstanceId"] == inst["InstanceId"]
    assert v["Attachments"][0]["Device"] == "/dev/xvda"
    by_instance = ec2.describe_volumes(
        Filters=[{"Name": "attachment.instance-id", "Values": [inst["InstanceId"]]}])["Volumes"]
    assert [x["VolumeId"] for x in by_instance] == [vid]
    # The root volume is in use: it cannot be detached as a data volume could be deleted.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.delete_volume(VolumeId=vid)
    assert e.value.response["Error"]["Code"] == "VolumeInUse"
    ec2.terminate_instances(InstanceIds=[inst["InstanceId"]])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[inst["InstanceId"]], WaiterConfig=WAIT)
    # DeleteOnTermination: the root volume goes with the instance.
    wait_for(lambda: not ec2.describe_volumes(
        Filters=[{"Name": "volume-id", "Values": [vid]}])["Volumes"], 30, "root volume deleted")


def test_root_volume_kept_when_asked(cloud):
    ec2 = cloud.client()
    inst = launch(cloud, BlockDeviceMappings=[
        {"DeviceName": "/dev/xvda", "Ebs": {"DeleteOnTermination": False, "VolumeSize": 10}},
        {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 1, "VolumeType": "gp3"}}])
    maps = {m["DeviceName"]: m["Ebs"] for m in inst["BlockDeviceMappings"]}
    vid = maps["/dev/xvda"]["VolumeId"]
    assert volume(ec2, vid)["Size"] == 10 and maps["/dev/xvda"]["DeleteOnTermination"] is False
    assert sh(cloud, inst, "df -BG --output=size / | tail -1").stdout.strip() in ("10G", "9G")
    # The launch's extra volume: made, then hot-plugged into the running instance.
    extra = maps["/dev/sdf"]["VolumeId"]
    wait_for(lambda: volume(ec2, extra)["Attachments"][0]["State"] == "attached", 60, "attached")
    assert volume(ec2, extra)["VolumeType"] == "gp3" and volume(ec2, extra)["Size"] == 1
    wait_for(lambda: sh(cloud, inst, "test -b /dev/xvdf", check=False).returncode == 0, 10, "/dev/xvdf")
    sh(cloud, inst, "echo kept-root | sudo tee /root/marker >/dev/null && sync")
    ec2.terminate_instances(InstanceIds=[inst["InstanceId"]])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[inst["InstanceId"]], WaiterConfig=WAIT)
    wait_available(ec2, vid)
    assert volume(ec2, vid)["Attachments"] == []
    # The extra volume's DeleteOnTermination (true by default at launch): gone.
    wait_for(lambda: not ec2.describe_volumes(
        Filters=[{"Name": "volume-id", "Values": [extra]}])["Volumes"], 30, "extra volume deleted")
    # The kept root volume is an ordinary volume holding the whole root file system.
    other = launch(cloud)
    attach(ec2, vid, other, "/dev/sdg")
    wait_for(lambda: sh(cloud, other, "test -b /dev/xvdg", check=False).returncode == 0, 10, "/dev/xvdg")
    sh(cloud, other, "sudo mkdir -p /old && sudo mount -o ro /dev/xvdg /old")
    assert "ID=debian" in sh(cloud, other, "cat /old/etc/os-release").stdout
    assert sh(cloud, other, "sudo cat /old/root/marker").stdout.strip() == "kept-root"
    sh(cloud, other, "sudo umount /old")
    ec2.detach_volume(VolumeId=vid)
    wait_available(ec2, vid)
    ec2.delete_volume(VolumeId=vid)
    ec2.terminate_instances(InstanceIds=[other["InstanceId"]])


def test_attach_mkfs_mount_detach_attach_elsewhere(cloud):
    ec2 = cloud.client()
    a, b = launch(cloud), launch(cloud)
    az = a["Placement"]["AvailabilityZone"]
    assert b["Placement"]["AvailabilityZone"] == az
    vid = ec2.create_volume(AvailabilityZone=az, Size=2, VolumeType="gp3",
                            TagSpecifications=[{"ResourceType": "volume",
                                                "Tags": [{"Key": "Name", "Value": "data"}]}])["VolumeId"]
    wait_available(ec2, vid)

    t0 = time.time()
    attach(ec2, vid, a, "/dev/sdf")
    # On a Xen-style instance /dev/sdf shows as /dev/xvdf.
    wait_for(lambda: sh(cloud, a, "test -b /dev/xvdf", check=False).returncode == 0, 10, "/dev/xvdf")
    print(f"attach to visible: {time.time() - t0:.2f}s")
    sh(cloud, a, "sudo mkfs.ext4 -q /dev/xvdf && sudo mkdir -p /data && sudo mount /dev/xvdf /data"
                 " && echo hello-from-a | sudo tee /data/note >/dev/null && sync")
    assert "/data" in sh(cloud, a, "findmnt -n -o TARGET /dev/xvdf").stdout

    # Taken while the guest has it mounted: the attachment is busy until it lets go.
    ec2.detach_volume(VolumeId=vid)
    wait_for(lambda: volume(ec2, vid)["Attachments"][0]["State"] == "busy", 30, "busy")
    assert sh(cloud, a, "cat /data/note").stdout.strip() == "hello-from-a"
    sh(cloud, a, "sudo umount /data")
    wait_available(ec2, vid)
    wait_for(lambda: sh(cloud, a, "test -e /dev/xvdf", check=False).returncode != 0, 10,
             "/dev/xvdf gone")

    attach(ec2, vid, b, "/dev/sdg")
    wait_for(lambda: sh(cloud, b, "test -b /dev/xvdg", check=False).returncode == 0, 10, "/dev/xvdg")
    sh(cloud, b, "sudo mkdir -p /data && sudo mount /dev/xvdg /data")
    assert sh(cloud, b, "cat /data/note").stdout.strip() == "hello-from-a"

    # Bad input changes nothing.
    for call, code in [
        (lambda: ec2.attach_volume(VolumeId=vid, InstanceId=a["InstanceId"], Device="/dev/sdh"),
         "VolumeInUse"),
        (lambda: ec2.delete_volume(VolumeId=vid), "VolumeInUse"),
    ]:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            call()
        assert e.value.response["Error"]["Code"] == code
    other = ec2.create_volume(AvailabilityZone=az, Size=1)["VolumeId"]
    wait_available(ec2, other)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.attach_volume(VolumeId=other, InstanceId=b["InstanceId"], Device="/dev/sdg")
    assert e.value.response["Error"]["Code"] == "InvalidParameterValue"
    assert volume(ec2, other)["State"] == "available"
    zones = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]]
    elsewhere = ec2.create_volume(AvailabilityZone=next(z for z in zones if z != az), Size=1)["VolumeId"]
    wait_available(ec2, elsewhere)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.attach_volume(VolumeId=elsewhere, InstanceId=b["InstanceId"], Device="/dev/sdh")
    assert e.value.response["Error"]["Code"] == "InvalidVolume.ZoneMismatch"
    for v in (other, elsewhere):
        ec2.delete_volume(VolumeId=v)

    # A snapshot of the busy volume, then more writes: a volume from the snapshot has the
    # snapshot's bytes only.
    t0 = time.time()
    snap = ec2.create_snapshot(VolumeId=vid, Description="data at hello")["SnapshotId"]
    ec2.get_waiter("snapshot_completed").wait(SnapshotIds=[snap], WaiterConfig=WAIT)
    print(f"snapshot completed: {time.time() - t0:.2f}s")
    sh(cloud, b, "echo later | sudo tee /data/later >/dev/null && sync")
    copy = ec2.create_volume(AvailabilityZone=az, SnapshotId=snap)["VolumeId"]
    wait_available(ec2, copy)
    assert volume(ec2, copy)["SnapshotId"] == snap and volume(ec2, copy)["Size"] == 2
    attach(ec2, copy, a, "/dev/sdh")
    wait_for(lambda: sh(cloud, a, "test -b /dev/xvdh", check=False).returncode == 0, 10, "/dev/xvdh")
    sh(cloud, a, "sudo mkdir -p /copy && sudo mount /dev/xvdh /copy")
    assert sh(cloud, a, "cat /copy/note").stdout.strip() == "hello-from-a"
    assert sh(cloud, a, "test -e /copy/later", check=False).returncode != 0

    # Forced detach of a mounted volume.
    ec2.detach_volume(VolumeId=copy, Force=True)
    wait_available(ec2, copy)

    # Terminating an instance detaches its data volumes (their DeleteOnTermination is false).
    sh(cloud, b, "sudo umount /data")
    ec2.terminate_instances(InstanceIds=[b["InstanceId"]])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[b["InstanceId"]], WaiterConfig=WAIT)
    wait_available(ec2, vid)
    for v in (vid, copy):
        ec2.delete_volume(VolumeId=v)
    ec2.delete_snapshot(SnapshotId=snap)
    ec2.terminate_instances(InstanceIds=[a["InstanceId"]])


def test_image_from_a_snapshot_boots(cloud):
    ec2 = cloud.client()
    a = launch(cloud)
    az = a["Placement"]["AvailabilityZone"]
    vid = ec2.create_volume(AvailabilityZone=az, Size=4)["VolumeId"]
    wait_available(ec2, vid)
    attach(ec2, vid, a, "/dev/sdf")
    wait_for(lambda: sh(cloud, a, "test -b /dev/xvdf", check=False).returncode == 0, 10, "/dev/xvdf")
    # The instance's own root, with a mark, copied onto the volume.
    # (Top-level entries one by one: `cp -ax / /mnt/root` refuses to copy / into itself, and
    # the API file systems are left as empty mount points.)
    sh(cloud, a, "echo made-from-a-snapshot | sudo tee /etc/gureum-mark >/dev/null"
                 " && sudo mkfs.ext4 -q /dev/xvdf && sudo mkdir -p /mnt/root"
                 " && sudo mount /dev/xvdf /mnt/root"
                 " && for d in $(ls -A /); do case $d in"
                 " proc|sys|dev|run|tmp|mnt) sudo mkdir -p /mnt/root/$d;;"
                 " *) sudo cp -a /$d /mnt/root/ || exit 1;; esac; done"
                 " && sudo umount /mnt/root", timeout=300)
    snap = ec2.create_snapshot(VolumeId=vid)["SnapshotId"]
    ec2.get_waiter("snapshot_completed").wait(SnapshotIds=[snap], WaiterConfig=WAIT)
    image = ec2.register_image(
        Name="from-snapshot", Architecture="x86_64", VirtualizationType="hvm",
        RootDeviceName="/dev/xvda",
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snap}}])["ImageId"]
    ec2.get_waiter("image_available").wait(ImageIds=[image], WaiterConfig={"Delay": 2, "MaxAttempts": 150})
    img = ec2.describe_images(ImageIds=[image])["Images"][0]
    assert img["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"] == snap
    # The snapshot backs a registered image: it cannot be deleted until the image is.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.delete_snapshot(SnapshotId=snap)
    assert e.value.response["Error"]["Code"] == "InvalidSnapshot.InUse"
    b = launch(cloud, ImageId=image)
    assert sh(cloud, b, "cat /etc/gureum-mark").stdout.strip() == "made-from-a-snapshot"
    ec2.terminate_instances(InstanceIds=[a["InstanceId"], b["InstanceId"]])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[a["InstanceId"], b["InstanceId"]],
                                               WaiterConfig=WAIT)
    ec2.deregister_image(ImageId=image)
    ec2.delete_snapshot(SnapshotId=snap)
    ec2.delete_volume(VolumeId=vid)
