"""Images (AMIs) through the real AWS CLI and boto3: the default image, owners and filters,
sharing with another account, copy, deregister, and `gureum image import` of a tarball and a
qcow2 disk made from the built image (bad files register nothing). Needs root (the default
image is built with mmdebstrap, imports mount disks); skipped and reported otherwise."""

import os
import shutil
import subprocess
import tempfile
import time

import botocore.exceptions
import pytest

from conftest import Server

why = None if os.geteuid() == 0 else "not root"
pytestmark = pytest.mark.skipif(why is not None, reason=f"image builds and imports need root: {why}")


def code_of(e):
    return e.value.response["Error"]["Code"]


@pytest.fixture(scope="module")
def cloud():
    tmp = tempfile.mkdtemp(prefix="gureum-e2e-img-")
    s = Server(os.path.join(tmp, "data")).start()
    ec2 = s.client()
    # Right after the first start the default image is registered (pending, or available at
    # once when the build is cached), without blocking the API.
    first = ec2.describe_images(Owners=["gureum"])["Images"]
    assert first and first[0]["State"] in ("pending", "available")
    deadline = time.time() + 600
    while time.time() < deadline:
        imgs = ec2.describe_images(Owners=["gureum"])["Images"]
        if imgs and imgs[0]["State"] == "available":
            s.image = imgs[0]
            break
        assert not imgs or imgs[0]["State"] != "failed", imgs
        time.sleep(1)
    else:
        raise AssertionError("default image never became available")
    s.tmp = tmp
    yield s
    s.stop()
    shutil.rmtree(tmp, ignore_errors=True)


def rootfs_of_default(cloud):
    """The built image's rootfs in the shared cache."""
    out = subprocess.run(["bash", "-c", "ls -d /var/cache/gureum/builds/debian-12-*/current/rootfs"],
                         capture_output=True, text=True).stdout.split()
    assert out, "no cached rootfs"
    return out[0]


def test_filters_and_owners(cloud):
    ec2 = cloud.client()
    img = cloud.image
    assert img["ImageOwnerAlias"] == "gureum"
    by = lambda **kw: [i["ImageId"] for i in ec2.describe_images(**kw)["Images"]]
    assert img["ImageId"] in by(Filters=[{"Name": "name", "Values": ["debian-12-*"]}])
    assert img["ImageId"] in by(Filters=[{"Name": "owner-alias", "Values": ["gureum"]},
                                         {"Name": "architecture", "Values": ["x86_64"]},
                                         {"Name": "state", "Values": ["available"]},
                                         {"Name": "is-public", "Values": ["true"]},
                                         {"Name": "root-device-type", "Values": ["ebs"]}])
    assert by(Filters=[{"Name": "name", "Values": ["ubuntu-*"]}]) == []
    assert by(Owners=["self"]) == []
    assert by(ImageIds=[img["ImageId"]]) == [img["ImageId"]]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.describe_images(ImageIds=["ami-0123456789abcdef0"])
    assert code_of(e) == "InvalidAMIID.NotFound"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.describe_images(ImageIds=["ami-xyz"])
    assert code_of(e) == "InvalidAMIID.Malformed"
    out = cloud.aws("ec2", "describe-images", "--owners", "gureum", "--query", "Images[0].Name",
                    "--output", "text").stdout.strip()
    assert out == img["Name"]


def test_copy_share_and_deregister(cloud):
    ec2 = cloud.client()
    copy = ec2.copy_image(SourceImageId=cloud.image["ImageId"], SourceRegion="us-east-1", Name="my-copy")["ImageId"]
    mine = ec2.describe_images(Owners=["self"])["Images"]
    assert [i["ImageId"] for i in mine] == [copy] and mine[0]["Public"] is False
    ec2.create_tags(Resources=[copy], Tags=[{"Key": "team", "Value": "a"}])
    assert ec2.describe_images(Filters=[{"Name": "tag:team", "Values": ["a"]}])["Images"][0]["ImageId"] == copy
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.copy_image(SourceImageId=cloud.image["ImageId"], SourceRegion="us-east-1", Name="my-copy")
    assert code_of(e) == "InvalidAMIName.Duplicate"

    bob_id, bob_keys = cloud.new_account("bob-img")
    bob = cloud.client(bob_keys)
    assert copy not in [i["ImageId"] for i in bob.describe_images()["Images"]]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        bob.describe_images(ImageIds=[copy])
    assert code_of(e) == "InvalidAMIID.NotFound"
    # Share with bob: he sees it (without its tags) and may launch it, not change it.
    ec2.modify_image_attribute(ImageId=copy, LaunchPermission={"Add": [{"UserId": bob_id}]})
    perms = ec2.describe_image_attribute(ImageId=copy, Attribute="launchPermission")["LaunchPermissions"]
    assert perms == [{"UserId": bob_id}]
    seen = bob.describe_images(ImageIds=[copy])["Images"][0]
    assert seen.get("Tags", []) == []
    assert copy in [i["ImageId"] for i in bob.describe_images(ExecutableUsers=["self"])["Images"]]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        bob.deregister_image(ImageId=copy)
    assert code_of(e) == "AuthFailure"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.modify_image_attribute(ImageId=copy, LaunchPermission={"Add": [{"UserId": "12"}]})
    assert code_of(e) == "InvalidUserID.Malformed"
    ec2.reset_image_attribute(ImageId=copy, Attribute="launchPermission")
    with pytest.raises(botocore.exceptions.ClientError):
        bob.describe_images(ImageIds=[copy])
    # Public, then deregistered: gone for everyone.
    ec2.modify_image_attribute(ImageId=copy, LaunchPermission={"Add": [{"Group": "all"}]})
    assert copy in [i["ImageId"] for i in bob.describe_images(ExecutableUsers=["all"])["Images"]]
    ec2.deregister_image(ImageId=copy)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.describe_images(ImageIds=[copy])
    assert code_of(e) == "InvalidAMIID.NotFound"
    # The built-in image is not ours to deregister.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.deregister_image(ImageId=cloud.image["ImageId"])
    assert code_of(e) == "AuthFailure"


def test_import_tarball_and_qcow2(cloud):
    ec2 = cloud.client()
    rootfs = rootfs_of_default(cloud)
    tarball = os.path.join(cloud.tmp, "rootfs.tar.gz")
    subprocess.run(["tar", "-C", rootfs, "--numeric-owner", "-czf", tarball, "."], check=True)
    out = cloud.gureum("image", "import", tarball, "--name", "my-tarball", "--login-user", "admin").stdout
    ami = out.strip().splitlines()[-1]
    img = ec2.describe_images(ImageIds=[ami])["Images"][0]
    assert img["Name"] == "my-tarball" and img["State"] == "available" and img["Public"] is False
    assert "ImageOwnerAlias" not in img

    # A qcow2 disk with a partition table, made from the same rootfs: the filesystem is built
    # from the directory (mkfs.ext4 -d, no mount needed) and written at the partition's offset.
    raw = os.path.join(cloud.tmp, "disk.raw")
    fs = os.path.join(cloud.tmp, "fs.ext4")
    qcow = os.path.join(cloud.tmp, "disk.qcow2")
    subprocess.run(["truncate", "-s", "1G", raw], check=True)
    subprocess.run(["sfdisk", "-q", raw], input="label: dos\nstart=2048,type=83\n", text=True, check=True)
    subprocess.run(["truncate", "-s", str(1024 * 1024 * 1024 - 2048 * 512), fs], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", rootfs, fs], check=True)
    subprocess.run(["dd", f"if={fs}", f"of={raw}", "bs=1M", "seek=1", "conv=notrunc,sparse", "status=none"],
                   check=True)
    subprocess.run(["qemu-img", "convert", "-O", "qcow2", raw, qcow], check=True)
    out = cloud.gureum("image", "import", qcow, "--name", "my-qcow2").stdout
    ami2 = out.strip().splitlines()[-1]
    assert ec2.describe_images(ImageIds=[ami2])["Images"][0]["State"] == "available"


def test_bad_imports_register_nothing(cloud):
    ec2 = cloud.client()
    before = {i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]}
    junk = os.path.join(cloud.tmp, "junk.bin")
    with open(junk, "wb") as f:
        f.write(os.urandom(100_000))
    empty_tar = os.path.join(cloud.tmp, "empty.tar")
    subprocess.run(["tar", "-cf", empty_tar, "--files-from", "/dev/null"], check=True)
    truncated = os.path.join(cloud.tmp, "trunc.tar.gz")
    subprocess.run(["bash", "-c", f"tar -C /etc -czf - . 2>/dev/null | head -c 20000 > {truncated}"], check=True)
    for f in (junk, empty_tar, truncated):
        r = cloud.gureum("image", "import", f, "--name", "bad-" + os.path.basename(f), check=False)
        assert r.returncode != 0, f
        assert r.stderr.strip(), "a clear error"
    after = {i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]}
    assert after == before
    leftovers = [d for d in os.listdir(os.path.join(cloud.data_dir, "images")) if d.startswith("import-")] \
        if os.path.isdir(os.path.join(cloud.data_dir, "images")) else []
    registered = len(after)
    assert len(leftovers) == registered, f"no half-imported image left: {leftovers}"
