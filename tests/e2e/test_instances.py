"""The tutorial, for real: a key pair, a t2.micro from the default image in a real runc
system container, SSH with the .pem, a server deployed and reached over HTTP, user data,
stop/start keeping files, a resize, terminate leaving nothing behind. Needs root, runc and
network namespaces; skipped (and reported) otherwise."""

import base64
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request

import botocore.exceptions
import pytest

from conftest import Server

SSH_OPTS = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "BatchMode=yes", "-o", "ConnectTimeout=3", "-o", "LogLevel=ERROR"]


def host_can_run_instances():
    if os.geteuid() != 0:
        return "not root"
    for tool in ("runc", "ip", "nft", "ssh"):
        if shutil.which(tool) is None and not os.path.exists(f"/usr/sbin/{tool}"):
            return f"{tool} not installed"
    return None


why = host_can_run_instances()
pytestmark = pytest.mark.skipif(why is not None, reason=f"instances need root, runc and netns: {why}")


def wait_for(pred, timeout, what, every=0.25):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def cloud():
    tmp = tempfile.mkdtemp(prefix="gureum-e2e-inst-")
    s = Server(os.path.join(tmp, "data")).start()
    ec2 = s.client()

    def default_image():
        imgs = ec2.describe_images(Owners=["gureum"])["Images"]
        avail = [i for i in imgs if i["State"] == "available"]
        failed = [i for i in imgs if i["State"] == "failed"]
        assert not failed, failed
        return avail[0] if avail else None

    s.image = wait_for(default_image, 600, "the default image", every=1)
    yield s
    # Terminate whatever a failed test left, then stop the server.
    try:
        ids = [i["InstanceId"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]
               if i["State"]["Name"] != "terminated"]
        if ids:
            ec2.terminate_instances(InstanceIds=ids)
            ec2.get_waiter("instance_terminated").wait(InstanceIds=ids, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    finally:
        s.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def ssh(key, ip, command, check=True, timeout=30):
    return subprocess.run(["ssh", *SSH_OPTS, "-i", str(key), f"admin@{ip}", command],
                          capture_output=True, text=True, check=check, timeout=timeout)


def wait_ssh(key, ip, timeout=30):
    def ok():
        try:
            return ssh(key, ip, "true", check=False, timeout=10).returncode == 0
        except subprocess.TimeoutExpired:
            return False
    wait_for(ok, timeout, f"ssh to {ip}", every=0.2)


def host_resources(instance_id):
    """Everything of this instance on the host: containers, netns, mounts."""
    left = []
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    if instance_id in out:
        left.append("netns")
    if instance_id in open("/proc/mounts").read():
        left.append("mount")
    return left


def test_default_image_is_an_ami(cloud):
    img = cloud.image
    assert img["ImageId"].startswith("ami-") and len(img["ImageId"]) == 21
    assert img["Name"].startswith("debian-12-amd64-")
    assert img["ImageOwnerAlias"] == "gureum" and img["Public"] is True
    assert img["RootDeviceName"] == "/dev/xvda" and img["RootDeviceType"] == "ebs"
    assert img["VirtualizationType"] == "hvm" and img["Architecture"] == "x86_64"
    assert img["PlatformDetails"] == "Linux/UNIX"
    assert "admin" in img["Description"]


def test_the_tutorial(cloud, tmp_path):
    ec2 = cloud.client()
    key = tmp_path / "demo.pem"
    key.write_text(ec2.create_key_pair(KeyName="demo")["KeyMaterial"])
    os.chmod(key, 0o600)
    user_data = "#!/bin/bash\necho user-data-ran >> /root/user-data-count\necho HELLO-FROM-USER-DATA\n"
    t0 = time.time()
    r = ec2.run_instances(ImageId=cloud.image["ImageId"], InstanceType="t2.micro", KeyName="demo",
                          MinCount=1, MaxCount=1, UserData=user_data,
                          TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "web"}]}])
    inst = r["Instances"][0]
    iid, ip = inst["InstanceId"], inst["PrivateIpAddress"]
    assert inst["State"]["Name"] == "pending"
    assert inst["PrivateDnsName"] == f"ip-{ip.replace('.', '-')}.ec2.internal"
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    wait_ssh(key, ip)
    print(f"launch to SSH ready: {time.time() - t0:.2f} s")

    out = ssh(key, ip, "sudo systemctl is-system-running --wait; nproc; free -m | awk '/Mem:/{print $2}'; "
                       "df -BG --output=size / | tail -1; hostname").stdout.split()
    assert out[0] in ("running", "degraded"), out
    assert out[1] == "1", "t2.micro has 1 vCPU"
    assert 900 <= int(out[2]) <= 1024, f"t2.micro has 1 GiB: {out[2]}"
    assert out[3] in ("7G", "8G"), f"8 GiB root volume: {out[3]}"
    assert out[4] == f"ip-{ip.replace('.', '-')}"

    # Deploy a small server and reach it from the host.
    server_py = tmp_path / "server.py"
    server_py.write_text("import http.server, socketserver\n"
                         "class H(http.server.BaseHTTPRequestHandler):\n"
                         "    def do_GET(self):\n"
                         "        self.send_response(200); self.end_headers(); self.wfile.write(b'hello from gureum')\n"
                         "socketserver.TCPServer(('', 8080), H).serve_forever()\n")
    subprocess.run(["scp", *SSH_OPTS, "-i", str(key), str(server_py), f"admin@{ip}:server.py"], check=True,
                   capture_output=True, timeout=30)
    ssh(key, ip, "nohup python3 server.py >/dev/null 2>&1 &")
    body = wait_for(lambda: _get(f"http://{ip}:8080/"), 15, "the deployed server")
    assert body == b"hello from gureum"

    # User data ran once, as root, with its output logged.
    assert ssh(key, ip, "sudo cat /root/user-data-count").stdout.count("user-data-ran") == 1
    assert "HELLO-FROM-USER-DATA" in ssh(key, ip, "sudo cat /var/log/cloud-init-output.log").stdout
    console = base64.b64decode(ec2.get_console_output(InstanceId=iid).get("Output", "")).decode(errors="replace")
    assert "-----BEGIN SSH HOST KEY FINGERPRINTS-----" in console

    # Stop and start keep the root volume; user data does not run again.
    ssh(key, ip, "echo kept > ~/note.txt && sync")
    ec2.stop_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    assert host_resources(iid) in ([], ["mount"]), "no guest network while stopped"
    # Resize while stopped.
    ec2.modify_instance_attribute(InstanceId=iid, InstanceType={"Value": "t2.small"})
    ec2.start_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    wait_ssh(key, ip)
    out = ssh(key, ip, "cat ~/note.txt; free -m | awk '/Mem:/{print $2}'; sudo cat /root/user-data-count").stdout.split()
    assert out[0] == "kept"
    assert 1900 <= int(out[1]) <= 2048, f"t2.small has 2 GiB: {out[1]}"
    assert out[2:] == ["user-data-ran"], "user data ran exactly once"

    # Terminate: everything on the host goes.
    ec2.terminate_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    assert host_resources(iid) == []
    d = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    assert d["State"] == {"Code": 48, "Name": "terminated"}


def _get(url):
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.read()
    except OSError:
        return None


def test_lifecycle_errors(cloud):
    ec2 = cloud.client()
    img = cloud.image["ImageId"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.run_instances(ImageId="ami-0123456789abcdef0", MinCount=1, MaxCount=1)
    assert e.value.response["Error"]["Code"] == "InvalidAMIID.NotFound"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.run_instances(ImageId=img, InstanceType="t9.huge", MinCount=1, MaxCount=1)
    assert e.value.response["Error"]["Code"] == "InvalidParameterValue"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.stop_instances(InstanceIds=["i-0123456789abcdef0"])
    assert e.value.response["Error"]["Code"] == "InvalidInstanceID.NotFound"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.start_instances(InstanceIds=["i-bogus"])
    assert e.value.response["Error"]["Code"] == "InvalidInstanceID.Malformed"
    r = ec2.run_instances(ImageId=img, MinCount=1, MaxCount=1, DisableApiTermination=True, ClientToken="tok-e2e")
    iid = r["Instances"][0]["InstanceId"]
    again = ec2.run_instances(ImageId=img, MinCount=1, MaxCount=1, DisableApiTermination=True, ClientToken="tok-e2e")
    assert again["Instances"][0]["InstanceId"] == iid, "ClientToken makes RunInstances idempotent"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.terminate_instances(InstanceIds=[iid])
    assert e.value.response["Error"]["Code"] == "OperationNotPermitted"
    ec2.modify_instance_attribute(InstanceId=iid, DisableApiTermination={"Value": False})
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.modify_instance_attribute(InstanceId=iid, InstanceType={"Value": "t2.small"})
    assert e.value.response["Error"]["Code"] == "IncorrectInstanceState"
    ec2.terminate_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.start_instances(InstanceIds=[iid])
    assert e.value.response["Error"]["Code"] == "IncorrectInstanceState"
