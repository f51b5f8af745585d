"""The friendly CLI (`gureum launch`, `ls`, `ssh`, `logs`, `stop`, `start`, `reboot`,
`terminate`) as a user runs it: a real API client of a running `gureum up`, configured only by
the data dir. The instance tests need root, runc and network namespaces and are skipped (with
the reason) otherwise."""

import os
import re
import shutil
import stat
import subprocess
import tempfile
import time

import pytest

from conftest import GUREUM, Server, host_can_run_instances, wait_for

# ssh options for the test runner only: no prompts, and no writes to the user's known_hosts.
SSH_EXTRA = ["-o", "BatchMode=yes", "-o", "UserKnownHostsFile=/dev/null",
             "-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR"]


def run(server, *args, cwd=None, env_extra=None, timeout=180):
    """`gureum --data-dir D ARGS` with no AWS_* variables from the runner's environment, so
    the data dir alone decides endpoint and credentials."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(env_extra or {})
    return subprocess.run([GUREUM, "--data-dir", server.data_dir, *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=timeout)


def ok(r):
    assert r.returncode == 0, f"exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    return r


def table(out):
    """`gureum ls` output as a list of dicts keyed by its header (columns are 2+ spaces
    apart; empty cells are `-`)."""
    lines = out.splitlines()
    header = re.split(r"\s{2,}", lines[0].strip())
    return [dict(zip(header, re.split(r"\s{2,}", line.strip()))) for line in lines[1:]]


# ---------------------------------------------------------------- without instances

def test_ls_on_an_empty_cloud(server):
    r = ok(run(server, "ls"))
    assert r.stdout.split() == ["NAME", "ID", "STATE", "TYPE", "PRIVATE", "IP", "PUBLIC", "IP",
                                "KEY", "LAUNCHED"]
    assert table(r.stdout) == []
    assert "gureum launch" in r.stderr, "an empty list says how to launch"


def test_unknown_instance_names_fail_clearly(server):
    for args in (["logs", "nope"], ["ssh", "nope"], ["stop", "nope"], ["terminate", "web", "nope"]):
        r = run(server, *args)
        assert r.returncode == 1, (args, r)
        assert r.stderr.startswith("error: no instance named "), r.stderr
        assert r.stdout == ""


def test_api_errors_show_code_and_message(server):
    r = run(server, "stop", "i-0123456789abcdef0")
    assert r.returncode == 1
    assert r.stderr.strip() == ("error: InvalidInstanceID.NotFound: "
                                "The instance ID 'i-0123456789abcdef0' does not exist")
    r = run(server, "launch", "--image", "ami-0123456789abcdef0")
    assert r.returncode == 1
    assert r.stderr.startswith("error: InvalidAMIID.NotFound: "), r.stderr


def test_a_failed_launch_creates_no_key(server, tmp_path):
    # The image is resolved before the key pair is created, so a bad --image leaves nothing.
    r = run(server, "launch", "--image", "no-such-image-*", "--create-key", "k1", cwd=tmp_path)
    assert r.returncode == 1
    assert 'no available image named "no-such-image-*"' in r.stderr
    assert not (tmp_path / "k1.pem").exists(), "no key is saved when the launch cannot happen"
    assert server.client().describe_key_pairs()["KeyPairs"] == []


def test_credentials_and_endpoint_overrides(server, tmp_path):
    # Environment keys win over the data dir's: a bad one is refused by the server.
    r = run(server, "ls", env_extra={"AWS_ACCESS_KEY_ID": "AKIAEXAMPLEEXAMPLE00",
                                     "AWS_SECRET_ACCESS_KEY": "x"})
    assert r.returncode == 1 and r.stderr.startswith("error: AuthFailure: "), r.stderr
    # Another account's keys see only that account's (empty) cloud.
    _, keys = server.new_account("friendly-other")
    r = ok(run(server, "ls", env_extra={"AWS_ACCESS_KEY_ID": keys[0],
                                        "AWS_SECRET_ACCESS_KEY": keys[1]}))
    assert table(r.stdout) == []
    # --endpoint overrides the config file's endpoint_url.
    r = run(server, "ls", "--endpoint", "http://127.0.0.1:1")
    assert r.returncode == 1
    assert r.stderr.startswith("error: cannot reach gureum at http://127.0.0.1:1"), r.stderr
    # An unknown --profile has no endpoint (nor credentials) in the data dir.
    r = run(server, "ls", "--profile", "nobody")
    assert r.returncode == 1 and "no endpoint" in r.stderr, r.stderr
    # A data dir without client files says what is missing.
    r = subprocess.run([GUREUM, "--data-dir", str(tmp_path), "ls"], capture_output=True, text=True)
    assert r.returncode == 1 and r.stderr.startswith("error: no endpoint: "), r.stderr


# ---------------------------------------------------------------- with instances

why = host_can_run_instances()
needs_instances = pytest.mark.skipif(why is not None,
                                     reason=f"instances need root, runc and netns: {why}")


@pytest.fixture(scope="module")
def cloud():
    """A cloud with its default image available; whatever a test leaves running is
    terminated before the server stops."""
    if why is not None:
        pytest.skip(f"instances need root, runc and netns: {why}")
    tmp = tempfile.mkdtemp(prefix="gureum-e2e-cli-")
    s = Server(os.path.join(tmp, "data")).start()
    ec2 = s.client()

    def default_image():
        imgs = ec2.describe_images(Owners=["gureum"])["Images"]
        assert not [i for i in imgs if i["State"] == "failed"], imgs
        return [i for i in imgs if i["State"] == "available"]

    try:
        wait_for(default_image, 600, "the default image", every=1)
        yield s
    finally:
        try:
            ids = [i["InstanceId"] for r in ec2.describe_instances()["Reservations"]
                   for i in r["Instances"] if i["State"]["Name"] != "terminated"]
            if ids:
                ec2.terminate_instances(InstanceIds=ids)
                ec2.get_waiter("instance_terminated").wait(
                    InstanceIds=ids, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        finally:
            s.stop()
            shutil.rmtree(tmp, ignore_errors=True)


def ls_row(cloud, name):
    rows = [r for r in table(ok(run(cloud, "ls")).stdout) if r["NAME"] == name]
    assert len(rows) == 1, rows
    return rows[0]


@needs_instances
def test_the_friendly_tutorial(cloud, tmp_path):
    # Launch with a new key, named, waiting until SSH answers.
    r = ok(run(cloud, "launch", "--create-key", "demo", "--name", "web", "--wait", cwd=tmp_path))
    lines = r.stdout.splitlines()
    iid = lines[0]
    assert re.fullmatch(r"i-[0-9a-f]{17}", iid), r.stdout
    pem = tmp_path / "demo.pem"
    assert stat.S_IMODE(pem.stat().st_mode) == 0o600
    assert pem.read_text().startswith("-----BEGIN RSA PRIVATE KEY-----")
    # The printed command uses the public IP (the default subnet maps one on launch).
    m = re.fullmatch(r"ssh -i demo\.pem admin@(127\.100\.\d+\.\d+)", lines[1])
    assert m, r.stdout
    public = m.group(1)

    row = ls_row(cloud, "web")
    ip = row["PRIVATE IP"]
    assert ip.startswith("172.31.")
    assert row == {"NAME": "web", "ID": iid, "STATE": "running", "TYPE": "t2.micro",
                   "PRIVATE IP": ip, "PUBLIC IP": public, "KEY": "demo",
                   "LAUNCHED": row["LAUNCHED"]}
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", row["LAUNCHED"])

    # The printed ssh command works as printed, at once.
    direct = subprocess.run(["ssh", *SSH_EXTRA, "-o", "StrictHostKeyChecking=no",
                             *lines[1].split()[1:], "true"],
                            capture_output=True, text=True, cwd=tmp_path, timeout=30)
    assert direct.returncode == 0, direct.stderr

    # gureum ssh by name, with extra ssh options and a command after `--`.
    expected_host = "ip-" + ip.replace(".", "-")
    r = ok(run(cloud, "ssh", "web", "-i", "demo.pem", "--", *SSH_EXTRA, "hostname", cwd=tmp_path))
    assert r.stdout.strip() == expected_host
    # By id, and with the key found as ./<key name>.pem.
    r = ok(run(cloud, "ssh", iid, "--", *SSH_EXTRA, "id", "-un", cwd=tmp_path))
    assert r.stdout.strip() == "admin"
    # ssh's own exit status comes through (the process is replaced by ssh).
    r = run(cloud, "ssh", "web", "--", *SSH_EXTRA, "exit 7", cwd=tmp_path)
    assert r.returncode == 7

    # The console shows the boot.
    out = wait_for(lambda: (lambda o: o if expected_host in o else None)(
        ok(run(cloud, "logs", "web")).stdout), 20, "the hostname on the console")
    assert "Reached target" in out

    # Reboot: --wait returns once the guest is back and answering SSH.
    r = ok(run(cloud, "reboot", "web", "--wait"))
    assert r.stdout.strip() == f"web ({iid}): rebooting"
    ok(run(cloud, "ssh", "web", "--", *SSH_EXTRA, "true", cwd=tmp_path))

    # Stop and start, by name, waiting.
    r = ok(run(cloud, "stop", "web", "--wait"))
    assert r.stdout.strip() == f"web ({iid}): running -> stopping"
    assert ls_row(cloud, "web")["STATE"] == "stopped"
    r = run(cloud, "ssh", "web", cwd=tmp_path)
    assert r.returncode == 1 and "is stopped" in r.stderr and "gureum start web" in r.stderr
    r = ok(run(cloud, "start", "web", "--wait"))
    assert r.stdout.strip() == f"web ({iid}): stopped -> pending"
    assert ls_row(cloud, "web")["STATE"] == "running"
    r = ok(run(cloud, "ssh", "web", "-i", "demo.pem", "--", *SSH_EXTRA, "hostname", cwd=tmp_path))
    assert r.stdout.strip() == expected_host

    # Terminate; the name then means the terminated instance, still listed.
    r = ok(run(cloud, "terminate", "web", "--wait"))
    assert r.stdout.strip() == f"web ({iid}): running -> shutting-down"
    row = ls_row(cloud, "web")
    assert (row["STATE"], row["PRIVATE IP"]) == ("terminated", "-")
    r = run(cloud, "ssh", "web", cwd=tmp_path)
    assert r.returncode == 1 and "is terminated" in r.stderr


@needs_instances
def test_launch_options_and_name_rules(cloud, tmp_path):
    ec2 = cloud.client()
    ud = tmp_path / "ud.sh"
    ud.write_text("#!/bin/sh\necho friendly-user-data > /root/ud\n")
    # By image name (wildcard), type, existing key, count, user data; no --wait.
    ok(run(cloud, "launch", "--create-key", "k2", "--name", "once", "--type", "t3.nano",
           cwd=tmp_path))
    ok(run(cloud, "terminate", "once"))
    r = ok(run(cloud, "launch", "--image", "debian-12-*", "--type", "t3.micro", "--key", "k2",
               "--name", "pair", "--count", "2", "--user-data", str(ud), cwd=tmp_path))
    ids = r.stdout.split()
    assert len(ids) == 2 and all(re.fullmatch(r"i-[0-9a-f]{17}", i) for i in ids), r.stdout
    insts = [i for res in ec2.describe_instances(InstanceIds=ids)["Reservations"]
             for i in res["Instances"]]
    assert {i["InstanceType"] for i in insts} == {"t3.micro"}
    assert {i["KeyName"] for i in insts} == {"k2"}
    assert all({"Key": "Name", "Value": "pair"} in i["Tags"] for i in insts)
    attr = ec2.describe_instance_attribute(InstanceId=ids[0], Attribute="userData")
    assert attr["UserData"]["Value"], "user data was sent"

    # Two live instances named alike: a name is ambiguous, ids are not.
    r = run(cloud, "logs", "pair")
    assert r.returncode == 1 and "2 instances are named \"pair\"" in r.stderr, r.stderr
    # The existing key file is never overwritten.
    r = run(cloud, "launch", "--create-key", "k2", cwd=tmp_path)
    assert r.returncode == 1 and "k2.pem already exists" in r.stderr
    # stop --force and terminate several at once, by id.
    ec2.get_waiter("instance_running").wait(InstanceIds=ids,
                                            WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    r = ok(run(cloud, "stop", "--force", "--wait", *ids))
    assert len(r.stdout.splitlines()) == 2
    r = ok(run(cloud, "terminate", "--wait", *ids))
    assert all(f"pair ({i}): stopped -> " in r.stdout for i in ids), r.stdout
    states = {row["ID"]: row["STATE"] for row in table(ok(run(cloud, "ls")).stdout)}
    assert all(states[i] == "terminated" for i in ids)
