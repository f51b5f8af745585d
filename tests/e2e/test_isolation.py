"""Instance isolation, shown from inside running instances as root (sudo): a guest sees no host
process or mount, reaches no host service but the metadata service, reaches another account's
instance only through its public address and only if its security group allows it, cannot send
from another address (IP or MAC) and is confined by its capabilities, seccomp and device cgroup;
a fork bomb stays inside its pids limit and a disk-filling loop inside its root volume. Each
check has a control showing the same probe works where it should, so a missing isolation fails
the test rather than passing for another reason. See docs/SECURITY.md.
Needs root, runc and network namespaces; skipped (and reported) otherwise."""

import glob
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import types
import urllib.request

import pytest

from conftest import (Server, host_can_run_instances, shut_down, ssh, wait_for, wait_ssh,
                      with_default_image)

why = host_can_run_instances()
pytestmark = pytest.mark.skipif(why is not None, reason=f"instances need root, runc and netns: {why}")

# Public addresses from a documentation range (TEST-NET-2) rather than loopback, so a guest can
# use another instance's public address (a guest's 127/8 is its own loopback). Nothing is sent to
# them from the host: a guest's packets to them are DNATed on this host or dropped by the
# network driver (nothing leaves a VPC's bridge but to a public address it maps).
PUBLIC_IPS = "198.51.100.0/24"
MARKER = "1234567"  # the argument of a `sleep` started on the host
UDP_PORT = 9999


def _host_addresses():
    """(interface, address) of every IPv4 address of this host but loopback."""
    out = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True, check=True).stdout
    addrs = []
    for line in out.splitlines():
        f = line.split()
        ip = f[3].split("/")[0]
        if not ip.startswith("127."):
            addrs.append((f[1], ip))
    return addrs


def _bridge_counters():
    """Packets counted by each commented rule of gureum's bridge table (the anti-spoofing)."""
    out = subprocess.run(["nft", "-j", "list", "table", "bridge", "gureum"], capture_output=True, text=True,
                         check=True).stdout
    counts = {}
    for item in json.loads(out)["nftables"]:
        rule = item.get("rule")
        if not rule or "comment" not in rule:
            continue
        for e in rule["expr"]:
            if "counter" in e:
                counts[rule["comment"]] = counts.get(rule["comment"], 0) + e["counter"]["packets"]
    return counts


def _cgroup(kind, iid):
    (path,) = glob.glob(f"/sys/fs/cgroup/{kind}/gureum/{iid}")
    return path


@pytest.fixture(scope="module")
def iso(request, tmp_path_factory):
    """One server (API on every host address, routable public addresses, a warm pool of 3) and
    three t2.micro instances: A and B of the admin account in its default group, C of another
    account."""
    tmp = tempfile.mkdtemp(prefix="gureum-e2e-iso-")
    s = Server(os.path.join(tmp, "data"), listen_host="0.0.0.0",
               env={"GUREUM_WARM_POOL": "3", "GUREUM_PUBLIC_IPS": PUBLIC_IPS}).start()
    keys_dir = tmp_path_factory.mktemp("keys")
    ec2b = None
    try:
        with_default_image(s)
        ec2 = s.client()
        _, keys2 = s.new_account("iso-other")
        ec2b = s.client(keys2)
        ec2b.authorize_security_group_ingress(GroupName="default", IpProtocol="tcp", FromPort=22, ToPort=22,
                                              CidrIp="0.0.0.0/0")
        key = keys_dir / "a.pem"
        key.write_text(ec2.create_key_pair(KeyName="iso")["KeyMaterial"])
        key2 = keys_dir / "b.pem"
        key2.write_text(ec2b.create_key_pair(KeyName="iso")["KeyMaterial"])
        for k in (key, key2):
            os.chmod(k, 0o600)
        img = s.image["ImageId"]
        ab = ec2.run_instances(ImageId=img, InstanceType="t2.micro", KeyName="iso", MinCount=2, MaxCount=2)
        c = ec2b.run_instances(ImageId=img, InstanceType="t2.micro", KeyName="iso", MinCount=1, MaxCount=1)
        ids_a = [i["InstanceId"] for i in ab["Instances"]]
        ids_b = [c["Instances"][0]["InstanceId"]]
        ec2.get_waiter("instance_running").wait(InstanceIds=ids_a, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        ec2b.get_waiter("instance_running").wait(InstanceIds=ids_b, WaiterConfig={"Delay": 1, "MaxAttempts": 60})

        def describe(client, iid):
            return client.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]

        a, b = (describe(ec2, i) for i in ids_a)
        c = describe(ec2b, ids_b[0])
        for k, inst in ((key, a), (key, b), (key2, c)):
            wait_ssh(k, inst["PrivateIpAddress"], timeout=60)
        ns = types.SimpleNamespace(server=s, ec2=ec2, ec2b=ec2b, key=key, key2=key2, a=a, b=b, c=c)
        for inst in (a, b, c):
            k = key2 if inst is c else key
            inst["Mac"] = ssh(k, inst["PrivateIpAddress"], "cat /sys/class/net/eth0/address").stdout.strip()
        yield ns
    finally:
        # Another account's instances are not the admin's to see: terminate them first (or the
        # server stops with them still running), then everything else with the server.
        ids = []
        try:
            for client in (s.client(), ec2b):
                ids += [i["InstanceId"] for r in client.describe_instances()["Reservations"]
                        for i in r["Instances"]] if client else []
            if ec2b:
                mine = [i["InstanceId"] for r in ec2b.describe_instances()["Reservations"] for i in r["Instances"]
                        if i["State"]["Name"] != "terminated"]
                if mine:
                    ec2b.terminate_instances(InstanceIds=mine)
                    ec2b.get_waiter("instance_terminated").wait(
                        InstanceIds=mine, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        finally:
            shut_down(s, artifact=request.module.__name__)
        # Nothing of these instances may be left on the host.
        mounts = open("/proc/mounts").read()
        netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        left = [p for i in ids for p in glob.glob(f"/sys/fs/cgroup/*/gureum/{i}")]
        left += [f"mount {i}" for i in ids if i in mounts] + [f"netns {i}" for i in ids if i in netns]
        maps = subprocess.run(["nft", "list", "map", "inet", "gureum", "public_to_private"], capture_output=True,
                              text=True).stdout
        left += ["public address mapping"] if PUBLIC_IPS.rsplit(".", 1)[0] + "." in maps else []
        shutil.rmtree(tmp, ignore_errors=True)
        assert not left, f"left on the host: {left}"


def root(key, inst, command, check=True, timeout=30, input=None):
    """`command` as root in the instance."""
    return ssh(key, inst["PrivateIpAddress"], f"sudo sh -c {_quote(command)}", check=check, timeout=timeout,
               input=input)


def _quote(s):
    return "'" + s.replace("'", "'\"'\"'") + "'"


# What a guest's root reports about its own processes, mounts and privileges.
INTROSPECT = r"""
import json, os
procs = {}
for p in os.listdir('/proc'):
    if p.isdigit():
        try:
            procs[p] = open(f'/proc/{p}/cmdline', 'rb').read().replace(b'\0', b' ').decode().strip()
        except OSError:
            pass
status = dict(l.split(':\t', 1) for l in open('/proc/self/status').read().splitlines() if ':\t' in l)
print(json.dumps({
    'procs': procs,
    'mountinfo': open('/proc/self/mountinfo').read(),
    'uid_map': open('/proc/self/uid_map').read().split(),
    'cap_bnd': int(status['CapBnd'], 16),
    'cap_eff': int(status['CapEff'], 16),
    'seccomp': status['Seccomp'].strip(),
}))
"""


def test_a_guest_sees_no_host_process_or_mount(iso):
    """1. `ps -e` and /proc in the guest list its own processes only: not a marker `sleep` started
    on the host, not the gureum server; its mount table names no host path."""
    marker = subprocess.Popen(["sleep", MARKER])
    try:
        host_cmdlines = [open(f"/proc/{p}/cmdline", "rb").read() for p in os.listdir("/proc") if p.isdigit()
                         and os.path.exists(f"/proc/{p}/cmdline")]
        assert any(f"sleep\0{MARKER}".encode() in c for c in host_cmdlines), "control: the host sees it"
        a = iso.a
        ps = root(iso.key, a, "ps -e -o pid=,args=").stdout
        assert f"sleep {MARKER}" not in ps, ps
        assert iso.server.data_dir not in ps, "the gureum server is a host process"
        seen = json.loads(root(iso.key, a, "python3 -", input=INTROSPECT).stdout)
        guest = seen["procs"]
        assert not [c for c in guest.values() if MARKER in c or iso.server.data_dir in c], guest
        assert guest["1"].startswith("/sbin/init"), "PID 1 is the guest's own init"
        assert str(marker.pid) not in guest or MARKER not in guest[str(marker.pid)]
        assert len(guest) < len(host_cmdlines), (len(guest), len(host_cmdlines))
        mi = seen["mountinfo"]
        host_paths = [iso.server.data_dir, os.path.dirname(iso.server.data_dir), "/var/cache/gureum", "/work"]
        # The control: those paths are in the host's mount table (the instance's overlay).
        host_mi = open("/proc/self/mountinfo").read()
        assert iso.server.data_dir in host_mi
        leaked = [p for p in host_paths if p in mi]
        assert not leaked, f"the guest's mount table names host paths {leaked}:\n{mi}"
    finally:
        marker.kill()
        marker.wait()


def test_guest_root_is_confined(iso):
    """The isolation model's own parts, seen by the guest's root: no user namespace (root is the
    host's uid 0, see docs/SECURITY.md), hence no CAP_SYS_ADMIN/SYS_MODULE/SYS_RAWIO/SYS_TIME,
    seccomp filtering, no mounts, read-only host sysctls, no host block device, and no way back
    to mount powers through a nested user namespace."""
    a = iso.a
    seen = json.loads(root(iso.key, a, "python3 -", input=INTROSPECT).stdout)
    assert seen["uid_map"] == ["0", "0", "4294967295"], "no user namespace (documented)"
    for name, bit in (("SYS_ADMIN", 21), ("SYS_MODULE", 16), ("SYS_RAWIO", 17), ("SYS_TIME", 25),
                      ("AUDIT_CONTROL", 30), ("MAC_ADMIN", 33), ("SYSLOG", 34), ("BPF", 39)):
        assert not seen["cap_bnd"] & (1 << bit), f"CAP_{name} in the guest's bounding set"
    assert seen["cap_eff"] & (1 << 12), "control: root keeps CAP_NET_ADMIN for its own network"
    assert seen["seccomp"] == "2", "a seccomp filter is installed"
    # Each probe prints ok if the guest's root could do it.
    probes = {
        "mount": "mkdir -p /mnt/p && mount -t proc proc /mnt/p",
        "sysctl": "echo '|/bin/false' > /proc/sys/kernel/core_pattern",
        "sysfs-rw": "mount -o remount,rw /sys",
        # The host's root disk, by its device number: the device cgroup refuses it.
        "blockdev": "mknod /root/hostdisk b {maj} {min} && head -c 512 /root/hostdisk >/dev/null",
        "nested-proc": "unshare -Urmpf --mount-proc true",
        "nested-remount": "unshare -Urm mount -o remount,rw /proc/sys",
        # init_module(NULL, 0, NULL): EPERM without CAP_SYS_MODULE, EFAULT with it.
        "init_module": _syscall_probe(175, 0, 0, 0),
        # Allowed to any process unless seccomp denies them.
        "keyctl": _syscall_probe(250, 0, -3, 0),
        "userfaultfd": _syscall_probe(323, 0),
    }
    st = os.stat(subprocess.run(["findmnt", "-no", "SOURCE", "/"], capture_output=True, text=True).stdout.strip())
    probes["blockdev"] = probes["blockdev"].format(maj=os.major(st.st_rdev), min=os.minor(st.st_rdev))
    script = "; ".join(f"( {cmd} ) >/dev/null 2>&1 && echo {name}=ok || echo {name}=refused"
                       for name, cmd in probes.items())
    out = dict(l.split("=") for l in root(iso.key, a, script + "; rm -f /root/hostdisk").stdout.split())
    assert out == {name: "refused" for name in probes}, out
    control = root(iso.key, a, "mknod /root/null c 1 3 && head -c 1 /root/null && rm /root/null && "
                               "echo 1 > /proc/sys/net/ipv4/ip_forward && cat /proc/sys/net/ipv4/ip_forward && "
                               "echo 0 > /proc/sys/net/ipv4/ip_forward && unshare -Ur id -u")
    assert control.stdout.split() == ["1", "0"], \
        "control: root makes allowed devices, owns its network's sysctls, and may nest a user namespace"


def _syscall_probe(nr, *args):
    """A command that succeeds unless the syscall fails with EPERM."""
    return (f"python3 -c 'import ctypes, sys; l = ctypes.CDLL(None, use_errno=True); "
            f"r = l.syscall({nr}, {', '.join(f'ctypes.c_long({a})' for a in args)}); "
            f"sys.exit(1 if r < 0 and ctypes.get_errno() == 1 else 0)'")


def test_a_guest_reaches_no_host_service_but_the_metadata_service(iso):
    """2. The API listens on every host address (0.0.0.0): the host reaches it at each, the guest
    at none (its gateway, the other gateways, the host's own addresses, the metadata address);
    http://169.254.169.254/latest/meta-data/ answers."""
    port = iso.server.port
    addrs = [ip for _, ip in _host_addresses()]
    gateway = root(iso.key, iso.a, "ip -4 route show default").stdout.split()[2]
    assert gateway in addrs, (gateway, addrs)
    assert "169.254.169.254" in addrs
    for ip in addrs:
        with urllib.request.urlopen(f"http://{ip}:{port}/healthz", timeout=2) as r:
            assert r.status == 200, f"control: the host reaches the API at {ip}"
    probe = " ".join(f"(echo {ip} $(curl -s -m 2 -o /dev/null -w '%{{http_code}}' http://{ip}:{port}/healthz)) &"
                     for ip in addrs) + " wait"
    codes = dict(l.split() for l in root(iso.key, iso.a, probe).stdout.splitlines())
    assert codes == {ip: "000" for ip in addrs}, f"the guest reached the API: {codes}"
    meta = root(iso.key, iso.a, "curl -s -m 2 -w ' %{http_code}' http://169.254.169.254/latest/meta-data/",
                check=False).stdout
    listening = subprocess.run(["ss", "-ltnp"], capture_output=True, text=True).stdout
    assert meta.endswith(" 200"), f"the metadata service answers: {meta!r}\n{listening}"
    assert meta.endswith(" 200") and "instance-id" in meta, meta
    iid = root(iso.key, iso.a, "curl -s -m 2 http://169.254.169.254/latest/meta-data/instance-id").stdout
    assert iid == iso.a["InstanceId"]


def test_another_accounts_instance_only_through_its_public_address_if_its_group_allows(iso):
    """3. C (another account) opens everything to 0.0.0.0/0 and serves on 8080: from A its
    private address answers neither ping nor TCP, its public address does; once C's group stops
    allowing it, the public address does not either. A and B (same account, default group)
    reach each other."""
    a, b, c = iso.a, iso.b, iso.c
    assert c["PublicIpAddress"].startswith("198.51.100.")
    root(iso.key2, c, "mkdir -p /tmp/www && echo c-here > /tmp/www/id && cd /tmp/www && "
                      "(nohup python3 -m http.server 8080 >/dev/null 2>&1 &)")
    wait_for(lambda: root(iso.key2, c, "curl -s -m 1 http://127.0.0.1:8080/id", check=False).stdout, 10,
             "C's server")
    perm = [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]

    def reach(ip):
        r = root(iso.key, a, f"ping -c 1 -W 1 {ip} >/dev/null && echo ping; curl -s -m 2 http://{ip}:8080/id",
                 check=False)
        return r.stdout.split()

    iso.ec2b.authorize_security_group_ingress(GroupName="default", IpPermissions=perm)
    try:
        assert "ping" in reach(b["PrivateIpAddress"]), "control: A pings B in its own VPC"
        assert wait_for(lambda: reach(c["PublicIpAddress"]) == ["ping", "c-here"], 5,
                        "A to reach C's public address, open to 0.0.0.0/0")
        assert reach(c["PrivateIpAddress"]) == [], "A reached another account's private address"
    finally:
        iso.ec2b.revoke_security_group_ingress(GroupName="default", IpPermissions=perm)
    wait_for(lambda: reach(c["PublicIpAddress"]) == [], 5, "C's public address to close with its group")


# A guest's root sends UDP datagrams to B and to the host, each tagged, through raw sockets:
# from its own MAC and IP (the control), another instance's IP, an address of no instance,
# a made-up MAC, another instance's MAC and IP together; then the same with the kernel's help
# (IP_HDRINCL, a secondary address, a changed MAC), restoring the MAC at the end.
SPOOF = r"""
import json, socket, struct, subprocess, sys, time
cfg = json.loads(sys.argv[1])
def csum(b):
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff)
    return ~(s + (s >> 16)) & 0xffff
def udp(src, dst, tag):
    data = b'gureum-iso:' + tag.encode()
    u = struct.pack('!HHHH', 40000, cfg['port'], 8 + len(data), 0) + data
    h = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(u), 0, 0x4000, 64, 17, 0,
                    socket.inet_aton(src), socket.inet_aton(dst))
    return h[:10] + struct.pack('!H', csum(h)) + h[12:] + u
mac = lambda m: bytes.fromhex(m.replace(':', ''))
own_mac, own_ip = cfg['own_mac'], cfg['own_ip']
l2 = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
l2.bind(('eth0', 0))
sent = {'ip': 0, 'mac': 0}
frames = []
for t, dmac, dip in (('b', cfg['b_mac'], cfg['b_ip']), ('h', cfg['gw_mac'], cfg['gw_ip'])):
    frames += [('ctl-' + t, own_mac, own_ip, dmac, dip, None),
               ('ip1-' + t, own_mac, cfg['c_ip'], dmac, dip, 'ip'),
               ('ip2-' + t, own_mac, '203.0.113.7', dmac, dip, 'ip'),
               ('mac-' + t, '02:00:00:de:ad:01', own_ip, dmac, dip, 'mac')]
frames += [('imp-h', cfg['b_mac'], cfg['b_ip'], cfg['gw_mac'], cfg['gw_ip'], 'mac'),
           ('imp-b', cfg['c_mac'], cfg['c_ip'], cfg['b_mac'], cfg['b_ip'], 'mac')]
for _ in range(3):
    for tag, smac, sip, dmac, dip, kind in frames:
        l2.send(mac(dmac) + mac(smac) + b'\x08\x00' + udp(sip, dip, tag))
        if kind:
            sent[kind] += 1
raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
for _ in range(3):
    raw.sendto(udp(cfg['c_ip'], cfg['b_ip'], 'hdr-b'), (cfg['b_ip'], 0))
    sent['ip'] += 1
def send(tag, src=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if src:
        s.bind((src, 0))
    s.sendto(b'gureum-iso:' + tag.encode(), (cfg['b_ip'], cfg['port']))
    s.close()
run = lambda *a: subprocess.run(['ip', *a], check=True)
run('addr', 'add', cfg['c_ip'] + '/32', 'dev', 'eth0')
try:
    for _ in range(3):
        send('addr-b', cfg['c_ip'])
        sent['ip'] += 1
        time.sleep(0.05)
finally:
    run('addr', 'del', cfg['c_ip'] + '/32', 'dev', 'eth0')
run('link', 'set', 'eth0', 'address', '02:00:00:de:ad:02')
try:
    for _ in range(3):
        send('lnk-b')
        time.sleep(0.05)
finally:
    run('link', 'set', 'eth0', 'address', own_mac)
for _ in range(10):
    send('ok-b')
    time.sleep(0.1)
print(json.dumps(sent))
"""

LISTEN = ("import socket\n"
          "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('0.0.0.0', {port}))\n"
          "f = open('/tmp/udp.log', 'a')\n"
          "while True:\n"
          "    d, a = s.recvfrom(2048); f.write(d.decode() + ' ' + a[0] + '\\n'); f.flush()\n")


def _capture(ifname, stop, got):
    """Tagged payloads that reach the host on `ifname` (after the bridge's own filtering)."""
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    s.bind((ifname, 0))
    s.settimeout(0.2)
    try:
        while not stop.is_set():
            try:
                frame = s.recv(65535)
            except socket.timeout:
                continue
            i = frame.find(b"gureum-iso:")
            if i >= 0:
                got.append(frame[i + len(b"gureum-iso:"):].decode(errors="replace"))
    finally:
        s.close()


def test_a_guest_cannot_send_from_another_address(iso):
    """4. As root, A sends to B and to the host from other IP and MAC addresses (raw frames,
    IP_HDRINCL, a secondary address, a changed MAC): none arrives, the bridge's anti-spoofing
    counters count them, and the same frames from A's own addresses arrive, before and after."""
    a, b, c = iso.a, iso.b, iso.c
    (bridge,) = [ifname for ifname, ip in _host_addresses() if ip == "172.31.0.1"]
    gw_mac = open(f"/sys/class/net/{bridge}/address").read().strip()
    ssh(iso.key, b["PrivateIpAddress"], "rm -f /tmp/udp.log; (nohup timeout 120 python3 -c "
        f"{_quote(LISTEN.format(port=UDP_PORT))} >/dev/null 2>&1 &)")
    time.sleep(0.5)
    cfg = {"port": UDP_PORT, "own_mac": a["Mac"], "own_ip": a["PrivateIpAddress"], "b_mac": b["Mac"],
           "b_ip": b["PrivateIpAddress"], "c_ip": c["PrivateIpAddress"], "c_mac": c["Mac"], "gw_mac": gw_mac,
           "gw_ip": "172.31.0.1"}
    before = _bridge_counters()
    stop, got = threading.Event(), []
    cap = threading.Thread(target=_capture, args=(bridge, stop, got))
    cap.start()
    try:
        time.sleep(0.2)
        out = root(iso.key, a, f"python3 - {_quote(json.dumps(cfg))}", input=SPOOF, timeout=60)
        sent = json.loads(out.stdout)
        time.sleep(0.5)
    finally:
        stop.set()
        cap.join()
    after = _bridge_counters()
    at_b = {line.split()[0].removeprefix("gureum-iso:") for line in
            ssh(iso.key, b["PrivateIpAddress"], "cat /tmp/udp.log; pkill -f udp.log", check=False).stdout.splitlines()}
    at_host = {t.split()[0] for t in got}
    assert {"ctl-b", "ok-b"} <= at_b, f"control: A's own datagrams reach B: {at_b}"
    assert "ctl-h" in at_host, f"control: A's own frame reaches the host: {at_host}"
    assert at_b <= {"ctl-b", "ok-b"}, f"spoofed datagrams reached B: {at_b}"
    assert at_host <= {"ctl-h"}, f"spoofed frames reached the host: {at_host}"
    d_ip = after["spoofed source ip"] - before["spoofed source ip"]
    d_mac = after["spoofed source mac"] - before["spoofed source mac"]
    assert d_ip >= sent["ip"], (d_ip, sent)
    assert d_mac >= sent["mac"], (d_mac, sent)
    print(f"spoofing: {sent['ip']} foreign-IP and {sent['mac']} foreign-MAC datagrams sent (+3 from a changed "
          f"MAC); dropped: spoofed source ip +{d_ip}, spoofed source mac +{d_mac}")
    # A's network works as before.
    assert root(iso.key, a, f"ping -c 1 -W 1 {b['PrivateIpAddress']} >/dev/null && echo ok").stdout.strip() == "ok"


# The main shell execs into sleep (no fork needed), so it outlives the bomb and `timeout` ends
# by killing the whole process group.
BOMB = "b() { b | b & }; b; exec sleep 30\n"


def test_a_fork_bomb_stays_inside_its_pids_limit(iso):
    """5a. A fork bomb as root in B (`timeout -s KILL 10`) reaches B's pids.max and no further;
    meanwhile the host forks, the API answers and A answers SSH; afterwards B answers too. All
    instances together are capped below the host's pid_max."""
    b = iso.b
    cg = _cgroup("pids", b["InstanceId"])
    pids_max = int(open(f"{cg}/pids.max").read())
    assert pids_max == 4096, "t2.micro: 4096 per vCPU"
    assert root(iso.key, b, "cat /sys/fs/cgroup/pids/pids.max").stdout.strip() == str(pids_max), \
        "the guest sees its own limit (cgroup namespace)"
    # Whatever the instances' own limits add up to, together they leave the host a quarter of
    # its process ids (4096 per vCPU would let one t2.2xlarge take all 32768 of a host whose
    # init keeps the kernel's default pid_max).
    pid_max = int(open("/proc/sys/kernel/pid_max").read())
    parent_max = int(open(os.path.join(os.path.dirname(cg), "pids.max")).read())
    assert parent_max <= pid_max * 3 // 4, (parent_max, pid_max)
    hits_before = int(open(f"{cg}/pids.events").read().split()[1])
    ssh(iso.key, b["PrivateIpAddress"], "cat > /tmp/bomb.sh", input=BOMB)
    bomb = subprocess.Popen(["ssh", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                             "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "-i", str(iso.key),
                             f"admin@{b['PrivateIpAddress']}", "sudo timeout -s KILL 10 bash /tmp/bomb.sh"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(6)
        # The rest of the host, while the bomb runs.
        t0 = time.time()
        subprocess.run(["true"], check=True)
        fork_ms = (time.time() - t0) * 1000
        t0 = time.time()
        iso.ec2.describe_instances(InstanceIds=[b["InstanceId"]])
        api_ms = (time.time() - t0) * 1000
        t0 = time.time()
        assert ssh(iso.key, iso.a["PrivateIpAddress"], "echo up", timeout=15).stdout.strip() == "up"
        ssh_ms = (time.time() - t0) * 1000
        host_free = _host_free_pids()
        bomb.wait(timeout=30)
    finally:
        if bomb.poll() is None:
            bomb.kill()
            bomb.wait()
    hits = int(open(f"{cg}/pids.events").read().split()[1]) - hits_before
    peak = int(open(f"{cg}/pids.peak").read())  # the most the cgroup ever held
    print(f"fork bomb: peak {peak} of pids.max {pids_max}, pids.events max +{hits}; during it: host fork "
          f"{fork_ms:.0f} ms, DescribeInstances {api_ms:.0f} ms, SSH to A {ssh_ms:.0f} ms, {host_free} host pids free")
    assert peak == pids_max, peak
    assert hits > 0, "the bomb reached pids.max"
    assert host_free > pid_max // 4 - 1000, host_free
    wait_for(lambda: int(open(f"{cg}/pids.current").read()) < 200, 15, "the bomb's processes to go")
    wait_ssh(iso.key, b["PrivateIpAddress"], timeout=30)


def _host_free_pids():
    """Process ids left on the host (threads take them too)."""
    return int(open("/proc/sys/kernel/pid_max").read()) - int(open("/proc/loadavg").read().split()[3].split("/")[1])


def _allocated(top):
    """Bytes allocated under `top`, not crossing into mounts (instances' volumes and roots)."""
    total = 0
    for d, dirs, files in os.walk(top):
        dirs[:] = [x for x in dirs if not os.path.ismount(os.path.join(d, x))]
        for f in files:
            try:
                total += os.lstat(os.path.join(d, f)).st_blocks * 512
            except FileNotFoundError:
                pass
    return total


def test_a_full_disk_stays_inside_the_root_volume(iso):
    """5b. Filling B's root file system as root (fallocate, then dd of real data) ends with
    ENOSPC at the volume's size; the host's file system loses at most that much and the volume
    file never grows past its size; the server and the other instances carry on."""
    b = iso.b
    vol = os.path.join(iso.server.data_dir, "instances", b["InstanceId"], "volume.img")
    size = os.stat(vol).st_size
    assert size == 8 << 30, "the default image's 8 GiB root volume"
    host_free_before = shutil.disk_usage(iso.server.data_dir).free
    others_before = _allocated(iso.server.data_dir) - os.stat(vol).st_blocks * 512
    fill = ("set -e; free=$(( $(stat -f -c '%f' /) * $(stat -f -c '%S' /) )); "
            "fallocate -l $((free - 256*1024*1024)) /big1; "
            "dd if=/dev/zero of=/big2 bs=1M 2>/tmp/dd.err || true; "
            "fallocate -l 1G /big3 2>/tmp/fa.err || true; sync; "
            "echo $free $(stat -c %s /big1) $(stat -c %s /big2) $(( $(stat -f -c '%f' /) * $(stat -f -c '%S' /) )); "
            "cat /tmp/dd.err /tmp/fa.err")
    t0 = time.time()
    out = root(iso.key, b, fill, timeout=120).stdout
    took = time.time() - t0
    free, big1, big2, free_after = (int(x) for x in out.split("\n", 1)[0].split())
    errors = out.split("\n", 1)[1]
    assert errors.count("No space left on device") == 2, errors
    written = big1 + big2
    host_free_after = shutil.disk_usage(iso.server.data_dir).free
    used = os.stat(vol).st_blocks * 512
    others = _allocated(iso.server.data_dir) - used - others_before
    print(f"disk fill: {written / 2**30:.2f} GiB written in {took:.1f} s of {free / 2**30:.2f} GiB free, "
          f"{free_after >> 20} MiB left; volume file {used / 2**30:.2f} GiB allocated of {size >> 30} GiB; "
          f"host free space {(host_free_after - host_free_before) / 2**30:+.2f} GiB, rest of the data dir "
          f"{others / 2**20:+.1f} MiB")
    assert free_after < 64 << 20, "the volume is full"
    assert written >= free - (64 << 20), "ENOSPC came at the volume's size, not before"
    assert written <= size and used <= size
    assert host_free_before - host_free_after <= size
    assert abs(others) < 16 << 20, "the rest of the data dir is unaffected"
    # The server, the other instance and B itself carry on.
    iso.ec2.describe_instances(InstanceIds=[b["InstanceId"]])
    assert ssh(iso.key, iso.a["PrivateIpAddress"], "echo up").stdout.strip() == "up"
    assert root(iso.key, b, "rm -f /big1 /big2 /big3 && echo gone").stdout.strip() == "gone"


def test_console_output_is_bounded_on_the_host(iso):
    """A guest's root flooding /dev/console, and PID 1's stdout, for 3 s each: the host's
    console.log stays within the 8 MiB the relay bounds it to while it runs (before, it grew
    by about 16 MB/s until the next start). The newest output is still there."""
    b = iso.b
    log = os.path.join(iso.server.data_dir, "instances", b["InstanceId"], "console.log")
    for target in ("/dev/console", "/proc/1/fd/1"):
        root(iso.key, b, f"timeout 3 sh -c 'yes gureum-isolation-console-flood > {target}'", check=False)
        time.sleep(1)
        size = os.path.getsize(log)
        print(f"console flood into {target}: console.log {size / 2**20:.1f} MiB after 3 s")
        assert size <= 9 << 20, (target, size)
    with open(log, "rb") as f:
        f.seek(max(0, size - 4096))
        assert b"gureum-isolation-console-flood" in f.read()
