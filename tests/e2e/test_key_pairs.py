"""Key pairs through the real AWS CLI and boto3: the `.pem` works with ssh-keygen, and every
fingerprint is the one AWS would compute."""

import base64
import hashlib
import os
import subprocess

import botocore.exceptions
import pytest

from conftest import b64, need


def code_of(excinfo):
    return excinfo.value.response["Error"]["Code"]


def openssl_colon(cmd):
    out = subprocess.run(cmd, shell=True, capture_output=True, text=True, check=True).stdout
    return out.strip().split("= ")[-1]


def test_cli_create_key_pair_gives_a_working_pem(server, tmp_path):
    need("ssh-keygen")
    need("openssl")
    pem = tmp_path / "demo.pem"
    r = server.aws("ec2", "create-key-pair", "--key-name", "demo", "--query", "KeyMaterial",
                   "--output", "text")
    pem.write_text(r.stdout)
    os.chmod(pem, 0o600)
    assert r.stdout.startswith("-----BEGIN RSA PRIVATE KEY-----")
    pub = subprocess.run(["ssh-keygen", "-y", "-f", str(pem)], capture_output=True, text=True,
                         check=True).stdout.split()
    assert pub[0] == "ssh-rsa"
    # AWS: SHA-1 of the DER PKCS#8 private key for key pairs it created.
    want = openssl_colon(f"openssl pkcs8 -in {pem} -inform PEM -outform DER -topk8 -nocrypt | openssl sha1 -c")
    kp = server.client().describe_key_pairs(KeyNames=["demo"], IncludePublicKey=True)["KeyPairs"][0]
    assert kp["KeyFingerprint"] == want
    assert kp["KeyType"] == "rsa"
    assert kp["PublicKey"].split()[:2] == pub[:2]
    assert kp["KeyPairId"].startswith("key-") and len(kp["KeyPairId"]) == 21


def test_ed25519_and_ppk(ec2, tmp_path):
    need("ssh-keygen")
    r = ec2.create_key_pair(KeyName="ed", KeyType="ed25519")
    pem = tmp_path / "ed.pem"
    pem.write_text(r["KeyMaterial"])
    os.chmod(pem, 0o600)
    subprocess.run(["ssh-keygen", "-y", "-f", str(pem)], check=True, capture_output=True)
    out = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", str(pem)], capture_output=True,
                         text=True, check=True).stdout.split()[1]
    fp = out.removeprefix("SHA256:")
    # AWS shows the base64 SHA-256 with its padding, without the prefix.
    assert r["KeyFingerprint"] == fp + "=" * (-len(fp) % 4)
    ppk = ec2.create_key_pair(KeyName="putty", KeyFormat="ppk")["KeyMaterial"]
    assert ppk.startswith("PuTTY-User-Key-File-2: ssh-rsa")


def test_import_rsa_ed25519_ecdsa(ec2, tmp_path):
    need("ssh-keygen")
    need("openssl")
    for kind, extra in (("rsa", ["-b", "2048"]), ("ed25519", []), ("ecdsa", ["-b", "256"])):
        key = tmp_path / f"id_{kind}"
        subprocess.run(["ssh-keygen", "-q", "-t", kind, *extra, "-N", "", "-C", "me@host", "-f", str(key)],
                       check=True)
        material = (tmp_path / f"id_{kind}.pub").read_bytes()
        r = ec2.import_key_pair(KeyName=f"imp-{kind}", PublicKeyMaterial=material)
        if kind == "rsa":
            # AWS: MD5 of the DER SubjectPublicKeyInfo for imported RSA keys.
            want = openssl_colon(
                f"ssh-keygen -e -m PKCS8 -f {key}.pub | openssl pkey -pubin -outform DER | openssl md5 -c")
        else:
            blob = base64.b64decode(material.split()[1])
            want = base64.b64encode(hashlib.sha256(blob).digest()).decode()
        assert r["KeyFingerprint"] == want, kind
        d = ec2.describe_key_pairs(KeyNames=[f"imp-{kind}"], IncludePublicKey=True)["KeyPairs"][0]
        assert d["KeyType"] == kind
        assert d["PublicKey"].split()[1] == material.split()[1].decode()


def test_cli_import_from_file(server, tmp_path):
    need("ssh-keygen")
    key = tmp_path / "k"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    r = server.aws("ec2", "import-key-pair", "--key-name", "from-file",
                   "--public-key-material", f"fileb://{key}.pub", "--output", "json")
    assert '"KeyName": "from-file"' in r.stdout


def test_errors(ec2):
    ec2.create_key_pair(KeyName="dup", KeyType="ed25519")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.create_key_pair(KeyName="dup", KeyType="ed25519")
    assert code_of(e) == "InvalidKeyPair.Duplicate"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.describe_key_pairs(KeyNames=["nope"])
    assert code_of(e) == "InvalidKeyPair.NotFound"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.describe_key_pairs(KeyPairIds=["key-0123456789abcdef0"])
    assert code_of(e) == "InvalidKeyPair.NotFound"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.import_key_pair(KeyName="bad", PublicKeyMaterial=b"not a key")
    assert code_of(e) == "InvalidKey.Format"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.create_key_pair(KeyName="x", KeyType="dsa")
    assert code_of(e) == "InvalidParameterValue"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.delete_key_pair(KeyPairId="key-0123456789abcdef0")
    assert code_of(e) == "InvalidKeyPair.NotFound"
    # Deleting a name that does not exist succeeds, as on AWS.
    assert ec2.delete_key_pair(KeyName="never-existed")["Return"] is True
    names = [k["KeyName"] for k in ec2.describe_key_pairs()["KeyPairs"]]
    assert "bad" not in names and "x" not in names


def test_dry_run_creates_nothing(ec2):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.create_key_pair(KeyName="dry", DryRun=True)
    assert code_of(e) == "DryRunOperation"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert "dry" not in [k["KeyName"] for k in ec2.describe_key_pairs()["KeyPairs"]]


def test_filters_and_tags(ec2):
    ec2.create_key_pair(
        KeyName="web-1", KeyType="ed25519",
        TagSpecifications=[{"ResourceType": "key-pair", "Tags": [{"Key": "env", "Value": "prod"}]}])
    ec2.create_key_pair(KeyName="web-2", KeyType="ed25519")
    ec2.create_key_pair(KeyName="db-1", KeyType="ed25519")

    def names(**kw):
        return sorted(k["KeyName"] for k in ec2.describe_key_pairs(**kw)["KeyPairs"])

    assert names(Filters=[{"Name": "key-name", "Values": ["web-*"]}]) == ["web-1", "web-2"]
    assert names(Filters=[{"Name": "key-name", "Values": ["web-?"]},
                          {"Name": "tag:env", "Values": ["prod"]}]) == ["web-1"]
    assert names(Filters=[{"Name": "tag-key", "Values": ["env"]}]) == ["web-1"]
    assert "db-1" in names(Filters=[{"Name": "key-type", "Values": ["ed25519"]}])
    one = ec2.describe_key_pairs(KeyNames=["web-1"])["KeyPairs"][0]
    assert one["Tags"] == [{"Key": "env", "Value": "prod"}]
    assert names(Filters=[{"Name": "fingerprint", "Values": [one["KeyFingerprint"]]}]) == ["web-1"]
    assert names(Filters=[{"Name": "key-pair-id", "Values": [one["KeyPairId"]]}]) == ["web-1"]
    assert "PublicKey" not in one
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.describe_key_pairs(Filters=[{"Name": "bogus", "Values": ["x"]}])
    assert code_of(e) == "InvalidParameterValue"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.create_key_pair(KeyName="t", TagSpecifications=[
            {"ResourceType": "instance", "Tags": [{"Key": "a", "Value": "b"}]}])
    assert code_of(e) == "InvalidParameterValue"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.create_key_pair(KeyName="t", TagSpecifications=[
            {"ResourceType": "key-pair", "Tags": [{"Key": "aws:x", "Value": "b"}]}])
    assert code_of(e) == "InvalidParameterValue"
    assert "t" not in names()


def test_private_key_is_never_stored(server):
    ec2 = server.client()
    material = ec2.create_key_pair(KeyName="secret-check", KeyType="ed25519")["KeyMaterial"]
    body = "".join(l for l in material.splitlines() if "PRIVATE" not in l)[:40]
    db = open(os.path.join(server.data_dir, "state.db"), "rb").read()
    wal_path = os.path.join(server.data_dir, "state.db-wal")
    wal = open(wal_path, "rb").read() if os.path.exists(wal_path) else b""
    assert body.encode() not in db and body.encode() not in wal
    log = open(server.log_path, "rb").read()
    assert body.encode() not in log
