"""Accounts, credentials, isolation, restarts and the command line."""

import os
import signal
import stat
import subprocess

import time

import boto3
import botocore.exceptions
import pytest
import urllib3

from conftest import GUREUM, Server, free_port


def code_of(e):
    return e.value.response["Error"]["Code"]


def test_credentials_file(fresh_server):
    path = fresh_server.credentials_file
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    text = open(path).read()
    assert text.startswith("[gureum]\n")
    ak, sk = fresh_server.admin_keys()
    assert ak.startswith("AKIA") and len(ak) == 20 and len(sk) == 40
    # The banner tells users how to point their tools at it; the env file works as said.
    log = open(fresh_server.log_path).read()
    assert "AWS_SHARED_CREDENTIALS_FILE" in log and "AWS_PROFILE=gureum" in log
    assert sk not in log, "no secret in the log"
    out = subprocess.run(["bash", "-c", f"source {fresh_server.data_dir}/env && aws ec2 describe-regions "
                          "--query Regions[0].RegionName --output text"], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "us-east-1"


def test_accounts_are_isolated(fresh_server):
    s = fresh_server
    admin = s.client()
    kid = admin.create_key_pair(KeyName="mine", KeyType="ed25519")["KeyPairId"]
    admin.create_tags(Resources=[kid], Tags=[{"Key": "owner", "Value": "admin"}])
    bob_id, bob_keys = s.new_account("bob")
    bob = s.client(bob_keys)
    assert s.client(bob_keys, "sts").get_caller_identity()["Account"] == bob_id
    assert bob.describe_key_pairs()["KeyPairs"] == []
    assert bob.describe_tags()["Tags"] == []
    # Another account's resource answers exactly as a nonexistent one.
    for call in (lambda: bob.describe_key_pairs(KeyPairIds=[kid]),
                 lambda: bob.describe_key_pairs(KeyNames=["mine"]),
                 lambda: bob.delete_key_pair(KeyPairId=kid),
                 lambda: bob.create_tags(Resources=[kid], Tags=[{"Key": "a", "Value": "b"}]),
                 lambda: bob.delete_tags(Resources=[kid])):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            call()
        assert code_of(e) == "InvalidKeyPair.NotFound"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        bob.describe_key_pairs(KeyPairIds=["key-0123456789abcdef0"])
    assert code_of(e) == "InvalidKeyPair.NotFound"
    # Bob may use the same name; deleting by name touches only his own.
    bob.create_key_pair(KeyName="mine", KeyType="ed25519")
    bob.delete_key_pair(KeyName="mine")
    assert [k["KeyName"] for k in admin.describe_key_pairs()["KeyPairs"]] == ["mine"]
    assert admin.describe_tags()["Tags"][0]["Value"] == "admin"
    # A second access key for bob works; the account list shows both accounts.
    out = s.gureum("access-key", "create", "bob").stdout
    ak2 = [l.split("=")[1].strip() for l in out.splitlines() if l.startswith("aws_access_key_id")][0]
    sk2 = [l.split("=")[1].strip() for l in out.splitlines() if l.startswith("aws_secret_access_key")][0]
    assert s.client((ak2, sk2)).describe_key_pairs()["KeyPairs"] == []
    listing = s.gureum("account", "list").stdout
    assert "admin" in listing and "bob" in listing and bob_id in listing
    assert s.gureum("account", "create", "bob", check=False).returncode != 0


def test_restart_keeps_everything(fresh_server):
    s = fresh_server
    ec2 = s.client()
    kid = ec2.create_key_pair(KeyName="persist", KeyType="ed25519")["KeyPairId"]
    ec2.create_tags(Resources=[kid], Tags=[{"Key": "k", "Value": "v"}])
    keys = s.admin_keys()
    assert s.stop() == 0, "SIGTERM is a clean shutdown"
    s.start()
    assert s.admin_keys() == keys, "same admin credentials after a restart"
    kp = s.client().describe_key_pairs(KeyNames=["persist"])["KeyPairs"][0]
    assert kp["KeyPairId"] == kid and kp["Tags"] == [{"Key": "k", "Value": "v"}]
    # SIGINT also stops it cleanly; kill -9 loses nothing committed.
    assert s.stop(signal.SIGINT) == 0
    s.start()
    s.client().create_key_pair(KeyName="before-kill", KeyType="ed25519")
    s.stop(signal.SIGKILL)
    s.start()
    names = [k["KeyName"] for k in s.client().describe_key_pairs()["KeyPairs"]]
    assert sorted(names) == ["before-kill", "persist"]


def test_env_equivalents_and_cli(tmp_path):
    port = free_port()
    env = dict(os.environ, GUREUM_DATA_DIR=str(tmp_path / "d"), GUREUM_LISTEN=f"127.0.0.1:{port}",
               GUREUM_REGION="eu-west-2")
    proc = subprocess.Popen([GUREUM, "up"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        s = Server(str(tmp_path / "d"), port=port)
        http = urllib3.PoolManager()
        for _ in range(300):
            try:
                if http.request("GET", s.endpoint + "/healthz", timeout=0.5).status == 200:
                    break
            except urllib3.exceptions.HTTPError:
                time.sleep(0.02)
        ak, sk = s.admin_keys()
        ec2 = boto3.client("ec2", endpoint_url=s.endpoint, region_name="eu-west-2",
                           aws_access_key_id=ak, aws_secret_access_key=sk)
        zones = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]]
        assert zones == ["eu-west-2a", "eu-west-2b", "eu-west-2c"]
    finally:
        proc.terminate()
        proc.wait(10)
    assert proc.returncode == 0
    help_text = subprocess.run([GUREUM, "--help"], capture_output=True, text=True, check=True).stdout
    assert "up" in help_text and "account" in help_text
    assert subprocess.run([GUREUM, "--version"], capture_output=True, text=True, check=True).stdout.startswith("gureum ")
    comp = subprocess.run([GUREUM, "completions", "bash"], capture_output=True, text=True, check=True).stdout
    assert "complete" in comp and "gureum" in comp
    bad = subprocess.run([GUREUM, "--data-dir", str(tmp_path / "x"), "up", "--region", "Mars"],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "region" in bad.stderr
