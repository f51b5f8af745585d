"""Ansible's own integration tests for EBS against gureum: the `ec2_vol` and `ec2_snapshot`
targets of the amazon.aws collection, unchanged, run with ansible-playbook and boto3 pointed at
a real `gureum up` (they launch real instances, make a VPC and a subnet, and create, attach,
detach, modify, snapshot, share and delete volumes).

The targets ship only in the source distribution of the `ansible` package on PyPI (the wheel
and Galaxy's build leave tests out), so the test downloads that once into a cache directory
and takes `ansible_collections/amazon/aws` from it; nothing of it is committed. ansible-test
itself is not used: it wants its own checkout layout and containers. Each target is a role
(its `meta/main.yml` pulls in `setup_ec2_facts`), so a one-play playbook over localhost with
the targets directory as the roles path runs it as ansible-test would, with the variables
ansible-test gives (`aws_access_key`, `aws_secret_key`, `aws_region`, `resource_prefix`) and
gureum's default image in place of the Fedora AMI the facts role looks for."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

import pytest
import urllib3

from conftest import REGION, Server, host_can_run_instances, need, shut_down, with_default_image

ANSIBLE_VERSION = "12.3.0"
CACHE = os.environ.get("GUREUM_TEST_CACHE") or os.path.expanduser("~/.cache/gureum-tests")


def collection_dir():
    """`<cache>/ansible-<version>`, holding `ansible_collections/amazon/aws` with its tests."""
    dest = os.path.join(CACHE, f"ansible-{ANSIBLE_VERSION}")
    marker = os.path.join(dest, "ansible_collections", "amazon", "aws", "MANIFEST.json")
    if os.path.exists(marker):
        return dest
    os.makedirs(CACHE, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        # The sdist's address and digest from PyPI's simple index (`pip download
        # --no-binary` would build the package's metadata, and its build dependencies from
        # source).
        http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=30, read=120), retries=3)
        index = json.loads(http.request(
            "GET", "https://pypi.org/simple/ansible/",
            headers={"Accept": "application/vnd.pypi.simple.v1+json"}).data)
        name = f"ansible-{ANSIBLE_VERSION}.tar.gz"
        sdist = next(f for f in index["files"] if f["filename"] == name)
        data = http.request("GET", sdist["url"]).data
        assert hashlib.sha256(data).hexdigest() == sdist["hashes"]["sha256"], "sdist digest"
        with open(os.path.join(tmp, name), "wb") as f:
            f.write(data)
        prefix = f"ansible-{ANSIBLE_VERSION}/ansible_collections/amazon/aws/"
        staged = os.path.join(tmp, "out")
        with tarfile.open(os.path.join(tmp, name)) as tar:
            members = [m for m in tar.getmembers() if m.name.startswith(prefix)]
            for m in members:
                m.name = m.name[len(f"ansible-{ANSIBLE_VERSION}/"):]
            tar.extractall(staged, members=members, filter="data")
        shutil.rmtree(dest, ignore_errors=True)
        os.rename(staged, dest)
    return dest


@pytest.fixture(scope="module")
def cloud():
    why = host_can_run_instances()
    if why:
        pytest.skip(f"cannot run instances here: {why}")
    need("ansible-playbook")
    tmp = tempfile.mkdtemp(prefix="gureum-e2e-")
    s = with_default_image(Server(os.path.join(tmp, "data")).start())
    yield s
    shut_down(s, artifact="ansible-targets", max_attempts=120)
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.mark.parametrize("target", [
    # ec2_vol passes its first 107 tasks (create, attach, detach, modify type/size/IOPS/
    # throughput, tags, info) and stops at "Create disk with multi-attach enabled":
    # io1/io2 Multi-Attach is not built yet (issue 17 stays open for it).
    pytest.param("ec2_vol", marks=pytest.mark.xfail(
        strict=True, reason="EBS Multi-Attach (io1/io2 MultiAttachEnabled) is not built yet")),
    "ec2_snapshot",
])
def test_amazon_aws_target(cloud, target, tmp_path):
    collections = collection_dir()
    targets = os.path.join(collections, "ansible_collections", "amazon", "aws", "tests",
                           "integration", "targets")
    ak, sk = cloud.admin_keys()
    image = cloud.image
    playbook = tmp_path / "play.yml"
    playbook.write_text(
        "- hosts: localhost\n"
        "  connection: local\n"
        "  gather_facts: false\n"
        f"  roles:\n    - role: {target}\n"
    )
    extra = {
        "aws_access_key": ak,
        "aws_secret_key": sk,
        "aws_region": REGION,
        "resource_prefix": f"gureum-{target.replace('_', '-')}",
        # setup_ec2_facts looks for a Fedora image by name and owner: ours instead.
        "ec2_ami_name": image["Name"],
        "ec2_ami_owner_id": image["OwnerId"],
        "ansible_python_interpreter": sys.executable,
    }
    env = cloud.env()
    env.update(
        ANSIBLE_COLLECTIONS_PATH=collections,
        ANSIBLE_ROLES_PATH=targets,
        ANSIBLE_HOST_KEY_CHECKING="False",
        ANSIBLE_LOCALHOST_WARNING="False",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="False",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_STDOUT_CALLBACK="default",
        ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"),
        ANSIBLE_REMOTE_TEMP=str(tmp_path / "ansible-tmp"),
        AWS_ACCESS_KEY_ID=ak,
        AWS_SECRET_ACCESS_KEY=sk,
    )
    env.pop("AWS_PROFILE", None)
    vars_file = tmp_path / "vars.json"
    vars_file.write_text(json.dumps(extra))
    proc = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,",
         "-e", f"@{vars_file}", str(playbook)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1800,
    )
    log = os.path.join(os.path.dirname(__file__), "..", "artifacts", f"ansible-{target}.log")
    os.makedirs(os.path.dirname(log), exist_ok=True)
    with open(log, "w") as f:
        f.write(proc.stdout + proc.stderr)
    tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-60:])
    assert proc.returncode == 0, f"{target} failed (full log: tests/artifacts/ansible-{target}.log):\n{tail}"
    assert "failed=0" in proc.stdout
