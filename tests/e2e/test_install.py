"""The fresh-machine install, for real, in a clean root filesystem: mmdebstrap builds a minimal
Debian 12 (no runc, no nftables, no QEMU) holding a qemu-utils of another version than
Debian's, as a machine with qemu-utils from backports has; `gureum install` runs inside it
(apt talks to Debian's mirror as on any fresh machine). The core must install, VMs must say
why they are off and how to fix it, and `gureum doctor` must say the same.

The conflicting qemu-utils is a stand-in package of that version (built here with dpkg-deb),
so the test needs no backports source: apt sees exactly what it saw on the machine where one
`apt-get install` of everything failed as a whole."""

import os
import shutil
import subprocess
import tempfile
import textwrap

import pytest

from conftest import GUREUM

CONFLICTING = "1:10.0.2+ds-2+deb13u1~bpo12+1"
MIRROR = "http://deb.debian.org/debian"


def stand_in_qemu_utils(workdir):
    """A qemu-utils package of the backports version, whose qemu-img only says its version."""
    pkg = os.path.join(workdir, "qemu-utils")
    os.makedirs(os.path.join(pkg, "DEBIAN"))
    os.makedirs(os.path.join(pkg, "usr/bin"))
    with open(os.path.join(pkg, "DEBIAN/control"), "w") as f:
        f.write(textwrap.dedent(f"""\
            Package: qemu-utils
            Version: {CONFLICTING}
            Architecture: amd64
            Maintainer: gureum tests <tests@gureum.invalid>
            Description: stand-in for a qemu-utils from another release
            """))
    img = os.path.join(pkg, "usr/bin/qemu-img")
    with open(img, "w") as f:
        f.write("#!/bin/sh\necho 'qemu-img version 10.0.2'\n")
    os.chmod(img, 0o755)
    deb = os.path.join(workdir, "qemu-utils.deb")
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", pkg, deb], check=True,
                   capture_output=True)
    return deb


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mmdebstrap, chroot)")
def test_a_fresh_debian_installs_the_core_and_reports_vms_off():
    if not shutil.which("mmdebstrap"):
        pytest.skip("needs mmdebstrap (gureum install brings it)")
    work = tempfile.mkdtemp(prefix="gureum-install-")
    try:
        deb = stand_in_qemu_utils(work)
        shutil.copy(GUREUM, os.path.join(work, "gureum"))
        out = os.path.join(work, "out")
        os.makedirs(out)
        # The hooks run inside mmdebstrap's set-up chroot (proc, sys, dev and resolv.conf
        # are there), so apt inside works as on a fresh machine; the rootfs is thrown away.
        script = textwrap.dedent(f"""\
            set -e
            root="$1"
            cp {work}/gureum "$root/usr/local/bin/gureum"
            cp {deb} "$root/tmp/qemu-utils.deb"
            chroot "$root" dpkg -i /tmp/qemu-utils.deb >/dev/null
            for c in runc nft lxcfs qemu-system-x86_64; do
                if chroot "$root" sh -c "command -v $c" >/dev/null; then
                    echo "the clean root already has $c" >&2; exit 1
                fi
            done
            set +e
            chroot "$root" gureum install > {out}/install.txt 2>&1
            echo $? > {out}/install.rc
            chroot "$root" gureum doctor > {out}/doctor.txt 2>&1
            echo $? > {out}/doctor.rc
            chroot "$root" dpkg-query -W -f '${{Version}}' qemu-utils > {out}/qemu-utils.version
            for c in runc nft lxcfs ip ssh-keygen mmdebstrap; do
                chroot "$root" sh -c "command -v $c" >> {out}/commands.txt
            done
            cp "$root/var/cache/gureum/packages.json" {out}/ 2>/dev/null
            exit 0
            """)
        hook = os.path.join(work, "hook.sh")
        with open(hook, "w") as f:
            f.write(script)
        r = subprocess.run(
            ["mmdebstrap", "--variant=minbase", "--quiet", "--format=null",
             f"--customize-hook=sh {hook} \"$1\"",
             "bookworm", "/dev/null", MIRROR],
            capture_output=True, text=True, timeout=900,
        )
        assert r.returncode == 0, r.stderr[-3000:]

        def read(name):
            with open(os.path.join(out, name)) as f:
                return f.read()

        install = read("install.txt")
        assert read("install.rc").strip() == "0", install
        # The core installed: every command of the group is there now.
        commands = read("commands.txt").split()
        assert len(commands) == 6, (commands, install)
        assert "core: installed" in install and "runc" in install, install
        # VMs are off with one clear line and the fix; the other qemu-utils is untouched.
        vm_line = [l for l in install.splitlines() if l.startswith("vms:")]
        assert len(vm_line) == 1, install
        assert "VM instances are off" in vm_line[0] and CONFLICTING in vm_line[0], install
        assert "--replace-qemu-utils" in vm_line[0], install
        assert read("qemu-utils.version") == CONFLICTING
        # doctor says the same: core ok, VMs off with the fix, runc and nftables work.
        doctor = read("doctor.txt")
        assert "ok    core (instances)" in doctor, doctor
        assert "off   vms (VM instances)" in doctor and "fix: gureum install --replace-qemu-utils" in doctor, doctor
        assert "ok    runc" in doctor and "ok    nftables" in doctor, doctor
        assert '"state": "unavailable"' in read("packages.json")
    finally:
        shutil.rmtree(work, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (to run a server as root, then as nobody)")
def test_a_server_that_cannot_run_instances_says_so_at_once():
    """The same data dir served as root (the default image is there), then by an unprivileged
    user: RunInstances answers InsufficientInstanceCapacity at once, with the reason, and
    records nothing; no instance is left `pending`."""
    import time

    import boto3
    import botocore.config
    import botocore.exceptions

    from conftest import Server, with_default_image

    tmp = tempfile.mkdtemp(prefix="gureum-e2e-")
    os.chmod(tmp, 0o755)
    data = os.path.join(tmp, "data")
    try:
        s = with_default_image(Server(data, args=["--warm-pool", "0"]).start())
        image = s.image["ImageId"]
        s.stop()
        subprocess.run(["chown", "-R", "65534:65534", data], check=True)
        s = Server(data, args=["--no-default-image"],
                   wrapper=["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]).start()
        try:
            # One attempt: EC2 answers InsufficientInstanceCapacity with HTTP 500, which boto3
            # retries by default (four more times, with back-off), as it does against AWS.
            ec2 = boto3.client("ec2", endpoint_url=s.endpoint, region_name="us-east-1",
                               aws_access_key_id=s.admin_keys()[0],
                               aws_secret_access_key=s.admin_keys()[1],
                               config=botocore.config.Config(retries={"total_max_attempts": 1}))
            started = time.monotonic()
            with pytest.raises(botocore.exceptions.ClientError) as e:
                ec2.run_instances(ImageId=image, InstanceType="t2.micro", MinCount=1, MaxCount=1)
            took = time.monotonic() - started
            err = e.value.response["Error"]
            assert err["Code"] == "InsufficientInstanceCapacity", err
            assert "not running as root" in err["Message"], err
            assert took < 1, took
            assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
            assert ec2.describe_instances()["Reservations"] == []
        finally:
            s.stop()
        with open(s.log_path) as f:
            log = f.read()
        assert "instances are unavailable on this host" in log, log[-2000:]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
