"""VM instances end to end under whatever accelerator the host's probe picks (TCG here and in
CI): a t3.micro asked for with the tag gureum:hypervisor=vm, from the debian-12-vm recipe image
(the image's own kernel, a qcow2 overlay root, a tap on the VPC bridge); SSH with the key pair
at the public address, the guest's kernel, vCPUs and memory of the type, user data and IMDS,
a security group change applied live, stop/start keeping a file, terminate leaving no tap,
overlay, process or user. Needs root, runc, nft and qemu-system-x86_64; skipped otherwise."""

import os
import re
import shutil
import subprocess
import tempfile
import time

import pytest

from conftest import SSH_OPTS, Server, host_can_run_instances, shut_down, ssh, wait_for, wait_ssh

why = host_can_run_instances()
if why is None and shutil.which("qemu-system-x86_64") is None:
    why = "qemu-system-x86_64 not installed (gureum up installs qemu-system-x86)"
pytestmark = pytest.mark.skipif(why is not None, reason=f"VMs need root, runc, netns and qemu: {why}")

VM_TAG = {"ResourceType": "instance", "Tags": [{"Key": "gureum:hypervisor", "Value": "vm"}]}


@pytest.fixture(scope="module")
def cloud():
    tmp = tempfile.mkdtemp(prefix="gureum-e2e-vm-")
    os.environ["GUREUM_NO_DEFAULT_IMAGE"] = "1"
    try:
        s = Server(os.path.join(tmp, "data")).start()
    finally:
        del os.environ["GUREUM_NO_DEFAULT_IMAGE"]
    ec2 = s.client()
    s.vm_image = s.gureum("image", "build", "debian-12-vm").stdout.strip().splitlines()[-1]
    assert s.vm_image.startswith("ami-"), s.vm_image
    ec2.authorize_security_group_ingress(GroupName="default", IpProtocol="tcp", FromPort=22, ToPort=22,
                                         CidrIp="0.0.0.0/0")
    yield s
    try:
        shut_down(s, artifact="test_vms", max_attempts=120)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def qemu_of(iid):
    out = subprocess.run(["pgrep", "-f", f"gureum-{iid},process="], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def tap_of(iid):
    out = subprocess.run(["ip", "-d", "-o", "link"], capture_output=True, text=True).stdout
    return [l for l in out.splitlines() if f"alias {iid}" in l]


def test_a_vm_instance_from_launch_to_terminate(cloud, tmp_path):
    ec2 = cloud.client()
    key = tmp_path / "vm.pem"
    key.write_text(ec2.create_key_pair(KeyName="vm")["KeyMaterial"])
    os.chmod(key, 0o600)
    user_data = "#!/bin/sh\necho vm-user-data-ran > /root/user-data-ran\n"
    t0 = time.time()
    r = ec2.run_instances(ImageId=cloud.vm_image, InstanceType="t3.micro", KeyName="vm", MinCount=1,
                          MaxCount=1, UserData=user_data, TagSpecifications=[VM_TAG])
    iid = r["Instances"][0]["InstanceId"]
    ip = r["Instances"][0]["PrivateIpAddress"]
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 600})
    d = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    assert d["Hypervisor"] == "vm"
    assert {"Key": "gureum:hypervisor", "Value": "vm"} in d["Tags"]
    public = d["PublicIpAddress"]
    wait_ssh(key, public, timeout=240)
    ready = time.time() - t0
    print(f"VM launch to SSH ready: {ready:.1f} s")

    # The guest's own kernel, the type's vCPUs and memory, a tap port, its own QEMU user.
    out = ssh(key, public, "uname -r; nproc; free -m | awk '/Mem:/{print $2}'; "
                           "sudo cat /root/user-data-ran; "
                           "curl -s http://169.254.169.254/latest/meta-data/instance-id",
              timeout=60).stdout.split()
    assert out[0].endswith("-cloud-amd64") and out[0] != os.uname().release, out
    assert out[1] == "2", "t3.micro has 2 vCPUs"
    assert 800 <= int(out[2]) <= 1024, f"t3.micro has 1 GiB: {out[2]}"
    assert out[3] == "vm-user-data-ran"
    assert out[4] == iid, "IMDS through the tap"
    assert tap_of(iid), "no tap on the bridge"
    pids = qemu_of(iid)
    assert len(pids) == 1
    uid_line = [l for l in open(f"/proc/{pids[0]}/status") if l.startswith("Uid:")][0]
    assert uid_line.split()[1] != "0", "QEMU runs as root"
    console = ec2.get_console_output(InstanceId=iid, Latest=True)["Output"]
    assert console

    # A security group change applies live to the tap.
    ec2.revoke_security_group_ingress(GroupName="default", IpProtocol="tcp", FromPort=22, ToPort=22,
                                      CidrIp="0.0.0.0/0")
    wait_for(lambda: ssh(key, public, "true", check=False, timeout=10).returncode != 0, 15, "SSH refused")
    ec2.authorize_security_group_ingress(GroupName="default", IpProtocol="tcp", FromPort=22, ToPort=22,
                                         CidrIp="0.0.0.0/0")
    wait_ssh(key, public, timeout=30)

    # Stop (ACPI power-off) and start keep the disk.
    ssh(key, public, "echo kept | sudo tee /root/kept >/dev/null; sync")
    ec2.stop_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    assert not qemu_of(iid)
    ec2.start_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    public = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["PublicIpAddress"]
    wait_ssh(key, public, timeout=240)
    out = ssh(key, public, "sudo cat /root/kept; sudo cat /root/user-data-ran | wc -l").stdout.split()
    assert out == ["kept", "1"], out

    # Terminate leaves no tap, overlay, process or user.
    ec2.terminate_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    assert not qemu_of(iid)
    assert not tap_of(iid)
    assert not os.path.exists(os.path.join(cloud.data_dir, "vms", iid))
    assert subprocess.run(["id", f"gureum-{iid}"], capture_output=True).returncode != 0


def test_a_bad_hypervisor_tag_is_refused(cloud):
    ec2 = cloud.client()
    import botocore.exceptions
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.run_instances(ImageId=cloud.vm_image, InstanceType="t3.micro", MinCount=1, MaxCount=1,
                          TagSpecifications=[{"ResourceType": "instance",
                                              "Tags": [{"Key": "gureum:hypervisor", "Value": "xen"}]}])
    assert e.value.response["Error"]["Code"] == "InvalidParameterValue"


def test_a_stock_cloud_init_image_configures_itself_from_imds(cloud, tmp_path):
    """debian-12-cloud has no gureum agent: Debian's own cloud-init, EC2 datasource only, finds
    the login user's key, the hostname and the user data at 169.254.169.254."""
    ec2 = cloud.client()
    ami = cloud.gureum("image", "build", "debian-12-cloud").stdout.strip().splitlines()[-1]
    assert ami.startswith("ami-"), ami
    key = tmp_path / "ci.pem"
    key.write_text(ec2.create_key_pair(KeyName="ci", KeyType="ed25519")["KeyMaterial"])
    os.chmod(key, 0o600)
    user_data = "#cloud-config\nruncmd:\n  - echo cloud-init-ran > /root/cloud-init-ran\n"
    r = ec2.run_instances(ImageId=ami, InstanceType="t3.micro", KeyName="ci", MinCount=1, MaxCount=1,
                          UserData=user_data, TagSpecifications=[VM_TAG])
    iid = r["Instances"][0]["InstanceId"]
    ip = r["Instances"][0]["PrivateIpAddress"]
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 600})
    wait_ssh(key, ip, timeout=300)
    wait_for(lambda: ssh(key, ip, "sudo test -f /root/cloud-init-ran", check=False).returncode == 0, 120,
             "cloud-init's runcmd")
    out = ssh(key, ip, "cloud-init query ds 2>/dev/null | head -c 0; sudo cloud-init status; "
                       "sudo cat /var/run/cloud-init/status.json | grep -o 'DataSourceEc2[A-Za-z]*' | head -1; "
                       "hostname").stdout.split()
    assert "done" in out[1] or "status:" in out[0], out
    assert any(o.startswith("DataSourceEc2") for o in out), out
    assert out[-1] == f"ip-{ip.replace('.', '-')}", out
    ec2.terminate_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 120})
