"""Fixtures for the end-to-end suite: a real `gureum up` on a free port with a temporary data
dir, the real AWS CLI and boto3 pointed at it, and a raw SigV4 client for requests no SDK
would send."""

import base64
import datetime
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse

import boto3
import botocore.auth
import botocore.awsrequest
import botocore.credentials
import pytest
import urllib3

GUREUM = os.environ.get("GUREUM_BIN") or os.path.join(
    os.path.dirname(__file__), "..", "..", "target", "debug", "gureum"
)
REGION = "us-east-1"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_credentials(path, profile="gureum"):
    ak = sk = None
    section = None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("["):
                section = line.strip("[]")
            elif section == profile and "=" in line:
                k, v = (x.strip() for x in line.split("=", 1))
                if k == "aws_access_key_id":
                    ak = v
                elif k == "aws_secret_access_key":
                    sk = v
    return ak, sk


class Server:
    """One `gureum up` process."""

    def __init__(self, data_dir, port=None, env=None, wrapper=(), args=(), listen_host="127.0.0.1"):
        self.data_dir = data_dir
        # Where the API listens; the tests always reach it at 127.0.0.1.
        self.listen_host = listen_host
        # A command the server runs under (e.g. setpriv to run it as another user), and
        # extra arguments for `gureum up`.
        self.wrapper = list(wrapper)
        self.args = list(args)
        # Extra environment for the server (e.g. GUREUM_WARM_POOL).
        self.extra_env = env or {}
        self.port = port or free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.proc = None
        self.log_path = os.path.join(os.path.dirname(data_dir), f"gureum-{self.port}.log")

    def start(self, timeout=15):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [*self.wrapper, GUREUM, "--data-dir", self.data_dir, "up", "--listen",
             f"{self.listen_host}:{self.port}", *self.args],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **self.extra_env},
        )
        deadline = time.time() + timeout
        http = urllib3.PoolManager()
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gureum exited: {open(self.log_path).read()}")
            try:
                if http.request("GET", self.endpoint + "/healthz", timeout=0.5).status == 200:
                    return self
            except urllib3.exceptions.HTTPError:
                pass
            time.sleep(0.02)
        raise RuntimeError("gureum did not become ready")

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "log", None):
            self.log.close()
        return self.proc.returncode if self.proc else None

    @property
    def credentials_file(self):
        return os.path.join(self.data_dir, "credentials")

    def admin_keys(self):
        return read_credentials(self.credentials_file)

    def env(self, keys=None):
        """Environment for the AWS CLI, as the banner tells users to set it."""
        env = dict(os.environ)
        for k in list(env):
            if k.startswith("AWS_"):
                del env[k]
        env.update(
            AWS_SHARED_CREDENTIALS_FILE=self.credentials_file,
            AWS_CONFIG_FILE=os.path.join(self.data_dir, "config"),
            AWS_PROFILE="gureum",
            AWS_ENDPOINT_URL=self.endpoint,
            AWS_DEFAULT_REGION=REGION,
        )
        if keys:
            del env["AWS_PROFILE"]
            env.update(AWS_ACCESS_KEY_ID=keys[0], AWS_SECRET_ACCESS_KEY=keys[1])
        return env

    def gureum(self, *args, check=True):
        return subprocess.run(
            [GUREUM, "--data-dir", self.data_dir, *args],
            capture_output=True,
            text=True,
            check=check,
        )

    def new_account(self, name):
        out = self.gureum("account", "create", name).stdout
        vals = dict(
            (k.strip(), v.strip()) for k, v in (l.split("=", 1) for l in out.splitlines() if "=" in l)
        )
        acct = out.split()[1]
        return acct, (vals["aws_access_key_id"], vals["aws_secret_access_key"])

    def client(self, keys=None, service="ec2"):
        ak, sk = keys or self.admin_keys()
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=ak,
            aws_secret_access_key=sk,
        )

    def aws(self, *args, keys=None, check=True):
        """Run the real AWS CLI; returns the CompletedProcess."""
        return subprocess.run(
            ["aws", *args], capture_output=True, text=True, env=self.env(keys), check=check
        )

    def raw(self, body, keys=None, service="ec2", region=REGION, skew_seconds=0,
            extra_headers=None, method="POST", sign=True, path="/"):
        """Send a SigV4-signed Query request exactly as given (botocore's signer, our bytes).
        Returns (status, body text)."""
        ak, sk = keys or self.admin_keys()
        if isinstance(body, str):
            body = body.encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
        headers.update(extra_headers or {})
        url = self.endpoint + path
        req = botocore.awsrequest.AWSRequest(method=method, url=url, data=body, headers=headers)
        if sign:
            signer = botocore.auth.SigV4Auth(
                botocore.credentials.Credentials(ak, sk), service, region
            )
            if skew_seconds:
                real = botocore.auth.get_current_datetime
                botocore.auth.get_current_datetime = lambda *a, **k: real(*a, **k) + datetime.timedelta(
                    seconds=skew_seconds
                )
                try:
                    signer.add_auth(req)
                finally:
                    botocore.auth.get_current_datetime = real
            else:
                signer.add_auth(req)
        prepared = req.prepare()
        http = urllib3.PoolManager()
        r = http.request(method, prepared.url, body=prepared.body, headers=dict(prepared.headers),
                         timeout=10, retries=False)
        return r.status, r.data.decode("utf-8", "replace")


SSH_OPTS = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "BatchMode=yes", "-o", "ConnectTimeout=3", "-o", "LogLevel=ERROR"]


def host_can_run_instances():
    """None if this host can run instances, else why not."""
    if os.geteuid() != 0:
        return "not root"
    for tool in ("runc", "ip", "nft", "ssh"):
        if shutil.which(tool) is None and not os.path.exists(f"/usr/sbin/{tool}"):
            return f"{tool} not installed"
    return None


def wait_for(pred, timeout, what, every=0.25):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def ssh(key, ip, command, check=True, timeout=30, input=None):
    """Run `command` in the instance at `ip` as its login user with the key pair's .pem."""
    return subprocess.run(["ssh", *SSH_OPTS, "-i", str(key), f"admin@{ip}", command],
                          capture_output=True, text=True, check=check, timeout=timeout, input=input)


def wait_ssh(key, ip, timeout=30):
    def ok():
        try:
            return ssh(key, ip, "true", check=False, timeout=10).returncode == 0
        except subprocess.TimeoutExpired:
            return False
    wait_for(ok, timeout, f"ssh to {ip}", every=0.2)


def warm_guests(data_dir, waiting_only=True):
    """Ids of the warm guests on the host: marked `warm` in the runtime's state directory and,
    if `waiting_only`, with their agent waiting on its FIFO (done booting)."""
    out = []
    for marker in glob.glob(os.path.join(data_dir, "instances", "i-*", "warm")):
        d = os.path.dirname(marker)
        if not waiting_only or os.path.exists(os.path.join(d, "rootfs/var/lib/gureum/claim")):
            out.append(os.path.basename(d))
    return sorted(out)


def with_default_image(s, timeout=600):
    """Wait for the server's default image (built or taken from the cache on first start) into
    `s.image`, and open SSH in the default group (it admits only its own members; these tests
    SSH in from the host). Returns `s`."""
    ec2 = s.client()
    deadline = time.time() + timeout
    while True:
        imgs = ec2.describe_images(Owners=["gureum"])["Images"]
        failed = [i for i in imgs if i["State"] == "failed"]
        assert not failed, failed
        avail = [i for i in imgs if i["State"] == "available"]
        if avail:
            s.image = avail[0]
            break
        assert time.time() < deadline, "timed out waiting for the default image"
        time.sleep(1)
    ec2.authorize_security_group_ingress(GroupName="default", IpProtocol="tcp", FromPort=22, ToPort=22,
                                         CidrIp="0.0.0.0/0")
    return s


def shut_down(s, artifact=None, max_attempts=60):
    """A module's server at the end: terminate whatever its tests left running, stop it, and
    keep its log as tests/artifacts/<artifact>-gureum.log."""
    ec2 = s.client()
    try:
        ids = [i["InstanceId"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]
               if i["State"]["Name"] != "terminated"]
        if ids:
            ec2.terminate_instances(InstanceIds=ids)
            ec2.get_waiter("instance_terminated").wait(
                InstanceIds=ids, WaiterConfig={"Delay": 1, "MaxAttempts": max_attempts})
    finally:
        s.stop()
        if artifact:
            art = os.path.join(os.path.dirname(__file__), "..", "artifacts")
            os.makedirs(art, exist_ok=True)
            shutil.copy(s.log_path, os.path.join(art, f"{artifact}-gureum.log"))


@pytest.fixture(scope="module")
def server():
    """A gureum shared by the tests of one module."""
    tmp = tempfile.mkdtemp(prefix="gureum-e2e-")
    s = Server(os.path.join(tmp, "data")).start()
    yield s
    s.stop()
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def fresh_server():
    """A gureum of the test's own."""
    tmp = tempfile.mkdtemp(prefix="gureum-e2e-")
    s = Server(os.path.join(tmp, "data")).start()
    yield s
    s.stop()
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def ec2(server):
    return server.client()


def need(tool):
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} not installed")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def form(**params):
    return urllib.parse.urlencode(params)
