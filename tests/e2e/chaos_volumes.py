"""Crash safety of EBS: a client drives random volume calls (create, attach, detach, snapshot,
delete volume, delete snapshot) against two running instances while the server is killed with
SIGKILL at random moments and restarted. After each restart every acknowledged volume and
snapshot must be accounted for; at each check, once the volumes settle, what the records say
must be what the host has: each attached volume has exactly one loop device over its file, a
block device node in its instance's `/dev`, its major:minor in the instance's device cgroup and
an entry in the instance's `volumes.json`; nothing else of the pool's is on the host (loop
devices, nodes, cgroup rules, pool files, temporary files). At the end everything is deleted
and the pool must hold nothing. Used by `test_crash_safety.py`."""

import glob
import json
import os
import random
import signal
import subprocess
import threading
import time

import botocore.exceptions

from chaos import quick_client

DEVICES = [f"/dev/sd{c}" for c in "fghijklmnop"]
# Volume and attachment states that are on their way somewhere.
MOVING_VOLUME = {"creating", "deleting"}
MOVING_ATTACHMENT = {"attaching", "detaching", "busy"}
# Answers that mean "not now" (the state refuses the call, another call got there first):
# answered, nothing changed.
REFUSED = {"IncorrectState", "VolumeInUse", "InvalidVolume.NotFound", "InvalidSnapshot.NotFound",
           "InvalidAttachment.NotFound", "IncorrectInstanceState", "InvalidParameterValue",
           "RequestLimitExceeded", "InvalidSnapshot.InUse", "InvalidDevice.InUse",
           "AttachmentLimitExceeded", "InvalidVolume.ZoneMismatch"}
UNANSWERED = (botocore.exceptions.EndpointConnectionError,
              botocore.exceptions.ConnectionClosedError,
              botocore.exceptions.ReadTimeoutError,
              botocore.exceptions.ConnectTimeoutError)


class VolumeChaos:
    """The client side: random volume calls and what the server acknowledged."""

    def __init__(self, rng, instances, zone, max_volumes=6):
        self.rng = rng
        self.instances = instances
        self.zone = zone
        self.max_volumes = max_volumes
        self.volumes = set()      # acknowledged creates not acknowledged as deleted
        self.snapshots = set()
        self.deleted = set()      # acknowledged deletes (volumes and snapshots)
        self.unanswered_creates = []  # ClientTokens of CreateVolume calls with no answer
        self.created_by_token = {}
        self.acked = self.unanswered = self.refused = 0
        self._token = 0

    def _call(self, fn):
        try:
            r = fn()
            self.acked += 1
            return r, True
        except UNANSWERED:
            self.unanswered += 1
            return None, False
        except botocore.exceptions.ClientError as e:
            if e.response["Error"]["Code"] in REFUSED:
                self.refused += 1
                return None, None
            raise

    def one(self, ec2):
        """One random call. Returns False once the server stopped answering."""
        vols = sorted(self.volumes)
        snaps = sorted(self.snapshots)
        choices = (["create"] if len(vols) < self.max_volumes else []) + (
            ["attach", "attach", "detach", "snapshot", "delete"] if vols else []) + (
            ["delete-snapshot"] if snaps else [])
        what = self.rng.choice(choices)
        if what == "create":
            self._token += 1
            token = f"vchaos-{os.getpid()}-{self._token}"
            r, ok = self._call(lambda: ec2.create_volume(
                AvailabilityZone=self.zone, Size=1, VolumeType="gp3", ClientToken=token))
            if ok:
                self.volumes.add(r["VolumeId"])
                self.created_by_token[token] = r["VolumeId"]
            elif ok is False:
                self.unanswered_creates.append(token)
            return ok is not False
        if what == "delete-snapshot":
            sid = self.rng.choice(snaps)
            _, ok = self._call(lambda: ec2.delete_snapshot(SnapshotId=sid))
            if ok:
                self.snapshots.discard(sid)
                self.deleted.add(sid)
            return ok is not False
        vid = self.rng.choice(vols)
        if what == "attach":
            iid = self.rng.choice(self.instances)
            dev = self.rng.choice(DEVICES)
            _, ok = self._call(lambda: ec2.attach_volume(VolumeId=vid, InstanceId=iid, Device=dev))
        elif what == "detach":
            _, ok = self._call(lambda: ec2.detach_volume(VolumeId=vid))
        elif what == "snapshot":
            r, ok = self._call(lambda: ec2.create_snapshot(VolumeId=vid))
            if ok:
                self.snapshots.add(r["SnapshotId"])
        else:
            _, ok = self._call(lambda: ec2.delete_volume(VolumeId=vid))
            if ok:
                self.volumes.discard(vid)
                self.deleted.add(vid)
        return ok is not False

    def drive(self, ec2, stop_event, pace=(0.02, 0.3)):
        while not stop_event.is_set():
            if not self.one(ec2):
                return
            time.sleep(self.rng.uniform(*pace))

    def replay_unanswered(self, ec2):
        """CreateVolume calls that got no answer, replayed with their ClientToken: the volume
        the first call made, or a new one."""
        for token in self.unanswered_creates:
            r = ec2.create_volume(AvailabilityZone=self.zone, Size=1, VolumeType="gp3",
                                  ClientToken=token)
            self.volumes.add(r["VolumeId"])
            self.created_by_token[token] = r["VolumeId"]
        self.unanswered_creates = []


def describe(ec2):
    """The account's data volumes (root volumes left out) and snapshots, by id."""
    vols = {}
    for page in ec2.get_paginator("describe_volumes").paginate():
        for v in page["Volumes"]:
            if v["State"] != "deleted" and not any(a["Device"] == "/dev/xvda"
                                                   for a in v["Attachments"]):
                vols[v["VolumeId"]] = v
    snaps = {}
    for page in ec2.get_paginator("describe_snapshots").paginate(OwnerIds=["self"]):
        for s in page["Snapshots"]:
            snaps[s["SnapshotId"]] = s
    return vols, snaps


def lost(chaos, ec2):
    """Acknowledged volumes and snapshots the server does not know (or knows as deleted
    although no delete was acknowledged)."""
    vols, snaps = describe(ec2)
    missing = [v for v in chaos.volumes if v not in vols]
    missing += [s for s in chaos.snapshots if s not in snaps]
    return sorted(missing)


def settle(ec2, timeout=120):
    """Wait until no volume is creating or deleting, no attachment is on its way and no
    snapshot is pending. Returns (volumes, snapshots)."""
    deadline = time.time() + timeout
    while True:
        vols, snaps = describe(ec2)
        moving = {v: vol["State"] for v, vol in vols.items() if vol["State"] in MOVING_VOLUME}
        moving.update({f"{v}@{a['InstanceId']}": a["State"] for v, vol in vols.items()
                       for a in vol["Attachments"] if a["State"] in MOVING_ATTACHMENT})
        moving.update({s: sn["State"] for s, sn in snaps.items() if sn["State"] == "pending"})
        if not moving:
            return vols, snaps
        if time.time() > deadline:
            raise AssertionError(f"volumes did not settle: {moving}")
        time.sleep(0.5)


def _out(*cmd):
    return subprocess.run(cmd, capture_output=True, text=True).stdout


def pool_loops(pool):
    """Loop devices over the pool's files: backing file -> [loop devices]."""
    out = {}
    for dev in glob.glob("/sys/block/loop*"):
        try:
            with open(os.path.join(dev, "loop", "backing_file")) as f:
                backing = f.read().strip()
        except OSError:
            continue
        if backing.startswith(pool + "/"):
            with open(os.path.join(dev, "dev")) as f:
                out.setdefault(backing, []).append((os.path.basename(dev), f.read().strip()))
    return out


def container_pid(data_dir, iid):
    out = _out("runc", "--root", os.path.join(data_dir, "instances", ".runc"), "state", iid)
    return json.loads(out)["pid"] if out else None


def check_host(data_dir, instances, vols, snaps):
    """Problems: differences between the records and the host."""
    problems = []
    pool = os.path.join(data_dir, "ebs")
    loops = pool_loops(pool)
    attached = {}  # instance -> {volume id: device}
    for vid, v in vols.items():
        for a in v["Attachments"]:
            if a["State"] == "attached":
                attached.setdefault(a["InstanceId"], {})[vid] = a["Device"]
    # Loop devices: one per attachment, none for a volume that is not attached.
    for backing, devs in loops.items():
        vid = os.path.basename(backing).removesuffix(".img")
        n = sum(vid in a for a in attached.values())
        if len(devs) != n:
            problems.append(f"{vid}: {len(devs)} loop devices for {n} attachments ({devs})")
    for iid in instances:
        want = attached.get(iid, {})
        idir = os.path.join(data_dir, "instances", iid)
        try:
            with open(os.path.join(idir, "volumes.json")) as f:
                record = {r["volume_id"]: r for r in json.load(f)}
        except FileNotFoundError:
            record = {}
        if set(record) != set(want):
            problems.append(f"{iid}: volumes.json lists {sorted(record)}, the records {sorted(want)}")
        pid = container_pid(data_dir, iid)
        devroot = f"/proc/{pid}/root/dev"
        nodes = {os.path.basename(p) for p in glob.glob(os.path.join(devroot, "xvd*"))}
        want_nodes = {"xvd" + d[len("/dev/sd"):] if d.startswith("/dev/sd") else os.path.basename(d)
                      for d in want.values()}
        if nodes != want_nodes:
            problems.append(f"{iid}: /dev has {sorted(nodes)}, the attachments want {sorted(want_nodes)}")
        # Device cgroup (v1 and hybrid hosts): loop devices let in are exactly the attached ones.
        for lst in glob.glob(f"/sys/fs/cgroup/devices/gureum/{iid}/devices.list"):
            with open(lst) as f:
                allowed = {line.split()[1] for line in f if line.startswith("b 7:")}
            mine = {r["major"].__str__() + ":" + str(r["minor"]) for r in record.values()}
            if allowed != mine:
                problems.append(f"{iid}: device cgroup lets in loop {sorted(allowed)}, "
                                f"attached {sorted(mine)}")
    # Pool files: exactly the volumes and snapshots that exist, and no temporary file.
    files = {os.path.basename(p).removesuffix(".img")
             for p in glob.glob(os.path.join(pool, "volumes", "*.img"))}
    if files != set(vols):
        problems.append(f"pool volume files {sorted(files ^ set(vols))} differ from the records")
    sfiles = {os.path.basename(p).removesuffix(".img")
              for p in glob.glob(os.path.join(pool, "snapshots", "*.img"))}
    if sfiles != set(snaps):
        problems.append(f"pool snapshot files {sorted(sfiles ^ set(snaps))} differ from the records")
    temps = glob.glob(os.path.join(pool, "*", ".tmp-*"))
    if temps:
        problems.append(f"temporary files left: {temps}")
    return problems


def run(server, instances, zone, kills, check_every, seed, log=print):
    """Kill the server `kills` times while the client drives volume calls. Returns a summary;
    raises AssertionError on the first problem."""
    rng = random.Random(seed)
    chaos = VolumeChaos(rng, instances, zone)
    summary = {"kills": 0, "checks": 0, "restart_s": []}
    for k in range(1, kills + 1):
        stop = threading.Event()
        worker = threading.Thread(target=chaos.drive, args=(quick_client(server), stop), daemon=True)
        worker.start()
        time.sleep(rng.uniform(0.3, 2.5))
        server.stop(signal.SIGKILL)
        summary["kills"] += 1
        stop.set()
        worker.join(30)
        t0 = time.time()
        server.start(timeout=60)
        summary["restart_s"].append(round(time.time() - t0, 2))
        ec2 = quick_client(server)
        chaos.replay_unanswered(ec2)
        missing = lost(chaos, ec2)
        assert not missing, f"kill {k}: acknowledged volumes or snapshots lost: {missing}"
        if k % check_every == 0 or k == kills:
            vols, snaps = settle(ec2)
            problems = check_host(server.data_dir, instances, vols, snaps)
            summary["checks"] += 1
            attached = sum(a["State"] == "attached" for v in vols.values() for a in v["Attachments"])
            log(f"kill {k}: {len(vols)} volumes ({attached} attached), {len(snaps)} snapshots, "
                f"{chaos.acked} calls acknowledged, {chaos.unanswered} unanswered, "
                f"{chaos.refused} refused")
            assert not problems, f"kill {k}: {problems}"
    summary.update(acked=chaos.acked, unanswered=chaos.unanswered, refused=chaos.refused,
                   volumes_made=len(chaos.created_by_token), snapshots_left=len(chaos.snapshots))
    return summary


def delete_everything(ec2, timeout=120):
    """Detach and delete every data volume and delete every snapshot, then wait until none is
    left."""
    vols, snaps = settle(ec2)
    for vid, v in vols.items():
        if v["Attachments"]:
            ec2.detach_volume(VolumeId=vid, Force=True)
    vols, snaps = settle(ec2)
    deadline = time.time() + timeout
    while vols or snaps:
        for vid, v in vols.items():
            if v["State"] == "available":
                ec2.delete_volume(VolumeId=vid)
        for sid in snaps:
            try:
                ec2.delete_snapshot(SnapshotId=sid)
            except botocore.exceptions.ClientError as e:
                if e.response["Error"]["Code"] != "InvalidSnapshot.NotFound":
                    raise
        time.sleep(0.5)
        vols, snaps = describe(ec2)
        if time.time() > deadline:
            raise AssertionError(f"could not delete {sorted(vols) + sorted(snaps)}")
