"""The tutorial, for real: a key pair, a t2.micro from the default image in a real runc
system container, SSH with the .pem, a server deployed and reached over HTTP, user data,
stop/start keeping files, a resize, terminate leaving nothing behind. Needs root, runc and
network namespaces; skipped (and reported) otherwise."""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request

import botocore.exceptions
import pytest

from conftest import (SSH_OPTS, Server, host_can_run_instances, shut_down, ssh, wait_for,
                      wait_ssh, with_default_image)

why = host_can_run_instances()
pytestmark = pytest.mark.skipif(why is not None, reason=f"instances need root, runc and netns: {why}")


@pytest.fixture(scope="module")
def cloud(request):
    tmp = tempfile.mkdtemp(prefix="gureum-e2e-inst-")
    s = with_default_image(Server(os.path.join(tmp, "data")).start())
    yield s
    try:
        shut_down(s, artifact=request.module.__name__)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


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
    # The tutorial's security group: SSH from anywhere, nothing else yet.
    ec2.create_security_group(GroupName="web", Description="tutorial web server")
    cloud.aws("ec2", "authorize-security-group-ingress", "--group-name", "web", "--protocol", "tcp",
              "--port", "22", "--cidr", "0.0.0.0/0")
    t0 = time.time()
    r = ec2.run_instances(ImageId=cloud.image["ImageId"], InstanceType="t2.micro", KeyName="demo",
                          MinCount=1, MaxCount=1, UserData=user_data, SecurityGroups=["web"],
                          TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "web"}]}])
    inst = r["Instances"][0]
    iid, ip = inst["InstanceId"], inst["PrivateIpAddress"]
    assert inst["State"]["Name"] == "pending"
    assert inst["PrivateDnsName"] == f"ip-{ip.replace('.', '-')}.ec2.internal"
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    d = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    public = d["PublicIpAddress"]
    assert public.startswith("127.100.") and d["PublicDnsName"] == f"ec2-{public.replace('.', '-')}.compute-1.amazonaws.com"
    assert [g["GroupName"] for g in d["SecurityGroups"]] == ["web"]
    # SSH at the public IP, on the real port, as the tutorial does.
    wait_ssh(key, public)
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
    # Listening inside, but the security group does not open 8080 yet.
    wait_for(lambda: ssh(key, ip, "curl -s -m 1 http://127.0.0.1:8080/", check=False).stdout, 15, "the server inside")
    assert _get(f"http://{public}:8080/") is None
    assert _get(f"http://{ip}:8080/") is None
    ec2.authorize_security_group_ingress(GroupName="web", IpProtocol="tcp", FromPort=8080, ToPort=8080,
                                         CidrIp="0.0.0.0/0")
    body = wait_for(lambda: _get(f"http://{public}:8080/"), 5, "port 8080 to open")
    assert body == b"hello from gureum"
    ec2.revoke_security_group_ingress(GroupName="web", IpProtocol="tcp", FromPort=8080, ToPort=8080,
                                      CidrIp="0.0.0.0/0")
    wait_for(lambda: _get(f"http://{public}:8080/") is None, 5, "port 8080 to close")
    # The metadata service answers from inside (IMDSv2), and host services do not.
    meta = ssh(key, ip, "T=$(curl -s -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' "
                        "http://169.254.169.254/latest/api/token); curl -s -H \"X-aws-ec2-metadata-token: $T\" "
                        "http://169.254.169.254/latest/meta-data/instance-id").stdout
    assert meta == iid
    port = cloud.endpoint.rsplit(":", 1)[1]
    blocked = ssh(key, ip, f"curl -s -m 2 -o /dev/null -w '%{{http_code}}' http://172.31.0.1:{port}/healthz", check=False)
    assert blocked.stdout in ("000", ""), "guests must not reach the API"

    # User data ran once, as root, with its output logged.
    assert ssh(key, ip, "sudo cat /root/user-data-count").stdout.count("user-data-ran") == 1
    assert "HELLO-FROM-USER-DATA" in ssh(key, ip, "sudo cat /var/log/cloud-init-output.log").stdout
    # botocore decodes the base64 Output itself, as the AWS CLI does.
    console = ec2.get_console_output(InstanceId=iid).get("Output", "")
    assert "-----BEGIN SSH HOST KEY FINGERPRINTS-----" in console
    # The block lists the three keys sshd really serves (made ahead by the host or in the guest).
    block = console.split("-----BEGIN SSH HOST KEY FINGERPRINTS-----")[1].split("-----END")[0]
    assert len([l for l in block.splitlines() if "SHA256:" in l]) == 3, block
    # (An RSA key made in the guest, when the host's pool was empty, is served from the next boot.)
    for kind in ("ed25519", "ecdsa", "rsa"):
        scan = subprocess.run(["ssh-keyscan", "-t", kind, ip], capture_output=True, text=True, timeout=10).stdout
        if kind == "rsa" and not scan.strip():
            continue
        served = subprocess.run(["ssh-keygen", "-lf", "-"], input=scan, capture_output=True, text=True).stdout
        assert served.split()[1] in block, (kind, served, block)

    # Stop and start keep the root volume; user data does not run again.
    ssh(key, ip, "echo kept > ~/note.txt && sync")
    ec2.stop_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    assert host_resources(iid) in ([], ["mount"]), "no guest network while stopped"
    # Resize while stopped.
    ec2.modify_instance_attribute(InstanceId=iid, InstanceType={"Value": "t2.small"})
    ec2.start_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    # As on AWS, the auto-assigned public IP was released on stop; a new one came with start.
    assert ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["PublicIpAddress"].startswith("127.100.")
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


def _state(ec2, iid):
    return ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["State"]["Name"]


def _init_start_time(cloud, iid):
    """PID and start time (clock ticks since boot) of the guest's PID 1, from runc's state."""
    path = os.path.join(cloud.data_dir, "instances", ".runc", iid, "state.json")
    st = json.load(open(path))
    pid = st["init_process_pid"]
    # Field 22 of /proc/PID/stat is the start time; it changes if the guest was restarted.
    start = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[19]
    return pid, start


def test_kill_9_at_every_step_converges(cloud, tmp_path):
    """kill -9 the server right after each lifecycle call; a restart finishes the operation,
    the recorded state matches the host, a ClientToken replay returns the original instance,
    and nothing leaks."""
    ec2 = cloud.client()
    key = tmp_path / "k.pem"
    key.write_text(ec2.create_key_pair(KeyName="crash", KeyType="ed25519")["KeyMaterial"])
    os.chmod(key, 0o600)
    img = cloud.image["ImageId"]

    def crash_and_restart():
        cloud.stop(signal.SIGKILL)
        cloud.start()
        return cloud.client()

    # Run, then die before the boot finished.
    r = ec2.run_instances(ImageId=img, MinCount=1, MaxCount=1, KeyName="crash", ClientToken="crash-1")
    iid, ip = r["Instances"][0]["InstanceId"], r["Instances"][0]["PrivateIpAddress"]
    ec2 = crash_and_restart()
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    wait_ssh(key, ip)
    again = ec2.run_instances(ImageId=img, MinCount=1, MaxCount=1, KeyName="crash", ClientToken="crash-1")
    assert again["Instances"][0]["InstanceId"] == iid
    assert len([i for res in ec2.describe_instances()["Reservations"] for i in res["Instances"]
                if i["State"]["Name"] != "terminated"]) == 1

    # A restart does not stop running instances: the same guest keeps running.
    before = _init_start_time(cloud, iid)
    cloud.stop()
    cloud.start()
    ec2 = cloud.client()
    assert _state(ec2, iid) == "running"
    assert _init_start_time(cloud, iid) == before, "the guest was not restarted"
    wait_ssh(key, ip)

    # Stop, then die mid-stop.
    ec2.stop_instances(InstanceIds=[iid])
    ec2 = crash_and_restart()
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    # Start, then die mid-start.
    ec2.start_instances(InstanceIds=[iid])
    ec2 = crash_and_restart()
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    wait_ssh(key, ip)
    # Terminate, then die mid-terminate: nothing is left on the host.
    ec2.terminate_instances(InstanceIds=[iid])
    ec2 = crash_and_restart()
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    wait_for(lambda: host_resources(iid) == [], 10, "host resources to be freed")


def test_guest_poweroff_follows_shutdown_behaviour(cloud, tmp_path):
    ec2 = cloud.client()
    key = tmp_path / "p.pem"
    key.write_text(ec2.create_key_pair(KeyName="poweroff", KeyType="ed25519")["KeyMaterial"])
    os.chmod(key, 0o600)
    img = cloud.image["ImageId"]
    a = ec2.run_instances(ImageId=img, MinCount=1, MaxCount=1, KeyName="poweroff")["Instances"][0]
    b = ec2.run_instances(ImageId=img, MinCount=1, MaxCount=1, KeyName="poweroff",
                          InstanceInitiatedShutdownBehavior="terminate")["Instances"][0]
    ids = [a["InstanceId"], b["InstanceId"]]
    ec2.get_waiter("instance_running").wait(InstanceIds=ids, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    ec2.get_waiter("instance_status_ok").wait(InstanceIds=ids, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    # `sudo reboot` inside: the instance comes back by itself and stays running.
    wait_ssh(key, a["PrivateIpAddress"])
    boot_id = ssh(key, a["PrivateIpAddress"], "cat /proc/sys/kernel/random/boot_id; systemctl show -p ActiveEnterTimestampMonotonic init.scope").stdout
    ssh(key, a["PrivateIpAddress"], "sudo systemctl reboot", check=False)
    time.sleep(3)
    wait_ssh(key, a["PrivateIpAddress"])
    assert _state(ec2, a["InstanceId"]) == "running"
    assert ssh(key, a["PrivateIpAddress"], "cat /proc/sys/kernel/random/boot_id; systemctl show -p ActiveEnterTimestampMonotonic init.scope").stdout != boot_id
    for inst in (a, b):
        # A command sent while sshd reloads (the RSA host key arrives after boot) can be lost:
        # ask again until the guest is really going down.
        def gone():
            return _state(ec2, inst["InstanceId"]) != "running"
        for _ in range(5):
            wait_ssh(key, inst["PrivateIpAddress"])
            ssh(key, inst["PrivateIpAddress"], "sudo systemctl poweroff", check=False)
            try:
                wait_for(gone, 10, "the guest to power off")
                break
            except AssertionError:
                continue
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[a["InstanceId"]], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[b["InstanceId"]], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    d = ec2.describe_instances(InstanceIds=[a["InstanceId"]])["Reservations"][0]["Instances"][0]
    assert d["StateReason"]["Code"] == "Client.InstanceInitiatedShutdown"
    ec2.terminate_instances(InstanceIds=[a["InstanceId"]])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[a["InstanceId"]], WaiterConfig={"Delay": 1, "MaxAttempts": 60})


def test_create_image_from_an_instance(cloud, tmp_path):
    ec2 = cloud.client()
    key = tmp_path / "c.pem"
    key.write_text(ec2.create_key_pair(KeyName="ci", KeyType="ed25519")["KeyMaterial"])
    os.chmod(key, 0o600)
    src = ec2.run_instances(ImageId=cloud.image["ImageId"], MinCount=1, MaxCount=1, KeyName="ci")["Instances"][0]
    ec2.get_waiter("instance_running").wait(InstanceIds=[src["InstanceId"]], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    wait_ssh(key, src["PrivateIpAddress"])
    ssh(key, src["PrivateIpAddress"], "echo configured | sudo tee /etc/motd-gureum >/dev/null && sync")
    ami = ec2.create_image(InstanceId=src["InstanceId"], Name="my-configured-image",
                           TagSpecifications=[{"ResourceType": "image", "Tags": [{"Key": "k", "Value": "v"}]}])["ImageId"]
    ec2.get_waiter("image_available").wait(ImageIds=[ami], WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    img = ec2.describe_images(ImageIds=[ami])["Images"][0]
    assert img["Public"] is False and img["Tags"] == [{"Key": "k", "Value": "v"}]
    assert img.get("SourceInstanceId") == src["InstanceId"]
    # The source instance is running again after the (rebooting) snapshot.
    ec2.get_waiter("instance_running").wait(InstanceIds=[src["InstanceId"]], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    wait_ssh(key, src["PrivateIpAddress"])
    new = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, KeyName="ci")["Instances"][0]
    ec2.get_waiter("instance_running").wait(InstanceIds=[new["InstanceId"]], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    wait_ssh(key, new["PrivateIpAddress"])
    out = ssh(key, new["PrivateIpAddress"], "cat /etc/motd-gureum; hostname").stdout.split()
    assert out == ["configured", f"ip-{new['PrivateIpAddress'].replace('.', '-')}"]
    ids = [src["InstanceId"], new["InstanceId"]]
    ec2.terminate_instances(InstanceIds=ids)
    ec2.get_waiter("instance_terminated").wait(InstanceIds=ids, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
