"""Write the fuzz targets' seed corpus (fuzz/corpus/<target>/) from real client output.

Query bodies and signed requests come from botocore itself (its EC2 serializer and its SigV4
signer, as boto3 and the AWS CLI send them); user-data documents are the shapes cloud-init
documents (scripts, #cloud-config, MIME multipart made with Python's email package, gzip).
Run with the test venv: `.venv/bin/python fuzz/seeds/make_seeds.py`; the output is committed.
"""

import gzip
import hashlib
import re
import sys
import urllib.parse
from datetime import datetime, timezone
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from pathlib import Path
from unittest import mock

import botocore.session
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.serialize import create_serializer

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "fuzz" / "corpus"
ENDPOINT = "http://127.0.0.1:8787/"
CREDS = Credentials("AKIAGUREUMEXAMPLE000", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
SSH_KEY = b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJx7ddPy0yV5Ypb7R8Xg5m1nVnS5nqgXrqkq1ZqQ2dhz me@laptop"

session = botocore.session.get_session()
model = session.get_service_model("ec2")
serializer = create_serializer("ec2")

IDS = {
    "InstanceId": "i-0123456789abcdef0", "ImageId": "ami-0abcdef1234567890",
    "SourceImageId": "ami-0abcdef1234567890", "VpcId": "vpc-0a1b2c3d4e5f60718",
    "SubnetId": "subnet-0a1b2c3d4e5f60718", "GroupId": "sg-0a1b2c3d4e5f60718",
    "KeyPairId": "key-0a1b2c3d4e5f60718", "AllocationId": "eipalloc-0a1b2c3d4e5f60718",
    "AssociationId": "eipassoc-0a1b2c3d4e5f60718", "RouteTableId": "rtb-0a1b2c3d4e5f60718",
    "InternetGatewayId": "igw-0a1b2c3d4e5f60718", "GatewayId": "igw-0a1b2c3d4e5f60718",
    "NetworkInterfaceId": "eni-0a1b2c3d4e5f60718", "SecurityGroupRuleId": "sgr-0a1b2c3d4e5f60718",
    "CidrBlock": "10.0.0.0/16", "DestinationCidrBlock": "0.0.0.0/0", "KeyName": "web-key",
    "GroupName": "web", "Description": "web servers", "Name": "web-image",
    "SourceRegion": "us-east-1", "PublicIp": "203.0.113.10", "Value": "true",
}


def fill(shape, name, depth=0):
    """A plausible value for a member, as a person would pass it to boto3."""
    t = shape.type_name
    if t == "structure":
        out = {}
        for m in shape.required_members:
            out[m] = fill(shape.members[m], m, depth + 1)
        if not out and depth < 3:
            for m in list(shape.members)[:2]:
                out[m] = fill(shape.members[m], m, depth + 1)
        return out
    if t == "list":
        return [fill(shape.member, name.rstrip("s"), depth + 1)]
    if t == "string":
        if shape.enum:
            return shape.enum[0]
        for k, v in IDS.items():
            if name == k or name == k + "s":
                return v
        if name.endswith("Id"):
            return "id-0a1b2c3d4e5f60718"
        return "example"
    if t in ("integer", "long"):
        return 5 if "Max" in name else 1
    if t == "boolean":
        return True
    if t == "blob":
        return SSH_KEY
    if t == "timestamp":
        return datetime(2026, 1, 1, tzinfo=timezone.utc)
    return "x"


# What people actually send, for the actions with more than ids in them.
CALLS = {
    "RunInstances": [
        dict(ImageId="ami-0abcdef1234567890", InstanceType="t3.micro", MinCount=1, MaxCount=1,
             KeyName="web-key", SecurityGroupIds=["sg-0a1b2c3d4e5f60718"],
             UserData="IyEvYmluL3NoCmVjaG8gaGVsbG8K",
             TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "web-1"}]}],
             BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 16, "DeleteOnTermination": True, "VolumeType": "gp3"}}],
             MetadataOptions={"HttpTokens": "required", "HttpEndpoint": "enabled", "HttpPutResponseHopLimit": 2},
             InstanceInitiatedShutdownBehavior="terminate", ClientToken="3f6c9a3e-token"),
        dict(ImageId="ami-0abcdef1234567890", MinCount=2, MaxCount=3, DryRun=True,
             NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": "subnet-0a1b2c3d4e5f60718",
                                 "AssociatePublicIpAddress": True, "Groups": ["sg-0a1b2c3d4e5f60718"]}],
             Placement={"AvailabilityZone": "us-east-1a"}),
    ],
    "DescribeInstances": [
        dict(Filters=[{"Name": "instance-state-name", "Values": ["running", "pending"]},
                      {"Name": "tag:Name", "Values": ["web-*"]}], MaxResults=5),
        dict(InstanceIds=["i-0123456789abcdef0", "i-0fedcba9876543210"]),
        dict(MaxResults=1000, NextToken="djE6aS0wMTIzNDU2Nzg5YWJjZGVmMA"),
    ],
    "AuthorizeSecurityGroupIngress": [
        dict(GroupId="sg-0a1b2c3d4e5f60718", IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
             "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "ssh"}]},
            {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": "sg-0a1b2c3d4e5f60718"}]}]),
        dict(GroupName="web", IpProtocol="tcp", FromPort=80, ToPort=80, CidrIp="0.0.0.0/0"),
    ],
    "CreateTags": [dict(Resources=["i-0123456789abcdef0", "ami-0abcdef1234567890"],
                        Tags=[{"Key": "env", "Value": "prod"}, {"Key": "Name", "Value": ""}])],
    "ImportKeyPair": [dict(KeyName="laptop", PublicKeyMaterial=SSH_KEY,
                           TagSpecifications=[{"ResourceType": "key-pair", "Tags": [{"Key": "o", "Value": "me"}]}])],
    "CreateKeyPair": [dict(KeyName="web-key", KeyType="ed25519", KeyFormat="pem")],
    "DescribeKeyPairs": [dict(Filters=[{"Name": "key-name", "Values": ["web-*"]}], IncludePublicKey=True)],
    "ModifyInstanceAttribute": [
        dict(InstanceId="i-0123456789abcdef0", InstanceType={"Value": "t3.large"}),
        dict(InstanceId="i-0123456789abcdef0", Attribute="userData", Value="IyEvYmluL3NoCg=="),
        dict(InstanceId="i-0123456789abcdef0", Groups=["sg-0a1b2c3d4e5f60718"]),
    ],
    "CreateRoute": [dict(RouteTableId="rtb-0a1b2c3d4e5f60718", DestinationCidrBlock="0.0.0.0/0",
                         GatewayId="igw-0a1b2c3d4e5f60718")],
    "DescribeSecurityGroupRules": [dict(Filters=[{"Name": "group-id", "Values": ["sg-0a1b2c3d4e5f60718"]}])],
    "DescribeImages": [dict(Owners=["self", "amazon"], Filters=[{"Name": "name", "Values": ["debian-12-*"]}])],
}


def supported_actions():
    src = (ROOT / "crates/gureum-ec2/src/action.rs").read_text()
    block = src.split("pub const SUPPORTED_ACTIONS", 1)[1].split("];", 1)[0]
    return re.findall(r'"([A-Za-z]+)"', block)


def query_body(action, params):
    op = model.operation_model(action)
    req = serializer.serialize_to_request(params, op)
    return urllib.parse.urlencode(req["body"]).encode()


def write(target, name, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


def write_dict(target, words):
    d = ROOT / "fuzz" / "dict"
    d.mkdir(parents=True, exist_ok=True)
    lines = []
    for w in sorted(words):
        # libFuzzer's dictionary syntax: printable ASCII, with \\, \" and \xNN escapes. Words
        # are bytes: code points below 256 are taken as the byte of that value (gzip's magic).
        raw = w.encode("latin-1") if max(map(ord, w)) < 256 else w.encode()
        esc = "".join(
            "\\" + chr(b) if chr(b) in '\\"' else chr(b) if 32 <= b < 127 else "\\x%02X" % b
            for b in raw
        )
        lines.append('"%s"' % esc)
    (d / f"{target}.dict").write_text("\n".join(lines) + "\n")


def signed_request(body, service="ec2", presign=False, headers=None):
    """The raw HTTP/1.1 request botocore puts on the wire."""
    when = datetime(2025, 11, 24, 16, 0, 0)
    with mock.patch("botocore.auth.get_current_datetime", return_value=when):
        if presign:
            req = AWSRequest("GET", ENDPOINT + "?" + body.decode(), headers=headers or {})
            SigV4QueryAuth(CREDS, service, "us-east-1", expires=300).add_auth(req)
            body = b""
        else:
            h = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
            h.update(headers or {})
            req = AWSRequest("POST", ENDPOINT, data=body, headers=h)
            SigV4Auth(CREDS, service, "us-east-1").add_auth(req)
    prepared = req.prepare()
    target = urllib.parse.urlsplit(prepared.url)
    path = target.path + ("?" + target.query if target.query else "")
    lines = [f"{prepared.method} {path} HTTP/1.1", "Host: 127.0.0.1:8787"]
    lines += [f"{k}: {v}" for k, v in prepared.headers.items() if k.lower() != "host"]
    head = "\r\n".join(lines) + "\r\n\r\n"
    return head.encode() + body


def main():
    n = 0
    bodies = {}
    for action in supported_actions():
        op = model.operation_model(action)
        calls = CALLS.get(action) or [fill(op.input_shape, action)]
        for i, params in enumerate(calls):
            body = query_body(action, params)
            bodies[action] = body
            write("query", f"{action}-{i}", body)
            n += 1
    # libFuzzer dictionaries: the words of real requests, so mutations stay near them.
    words = set()
    for action, body in bodies.items():
        words.add("Action=" + action)
        for k, _ in urllib.parse.parse_qsl(body.decode()):
            words.update(w for w in k.split(".") if not w.isdigit())
    words.update(["=", "&", ".1", ".2", ".10", "%00", "%FF", "%E2%9C%93", "true", "false", "*", "?", "\\"])
    write_dict("query", words)
    write_dict("sigv4", {"Authorization: ", "AWS4-HMAC-SHA256 ", "Credential=", "SignedHeaders=",
                         "Signature=", "/us-east-1/ec2/aws4_request", "/aws4_request", "X-Amz-Date: ",
                         "Date: ", "20251124T160000Z", "Mon, 24 Nov 2025 16:00:00 GMT", "host;x-amz-date",
                         "x-amz-content-sha256: ", "UNSIGNED-PAYLOAD", "X-Amz-Security-Token: ",
                         "X-Amz-Algorithm=", "X-Amz-Credential=", "X-Amz-Date=", "X-Amz-Expires=",
                         "X-Amz-SignedHeaders=", "X-Amz-Signature=", "%2F", "\r\n", ", ", ";"})
    write_dict("filters", {"Filter.", ".Name=", ".Value.", "tag:", "tag-key", "tag-value",
                           "instance-id", "instance-type", "instance-state-name", "ip-address",
                           "MaxResults=", "NextToken=", "djE6", "*", "?", "\\", "%5C", "%2A"})
    write_dict("userdata", {"#!", "#cloud-config", "#include", "\x1f\x8b", "Content-Type: ",
                            "MIME-Version: 1.0", "multipart/mixed; boundary=", "--", "\n\n",
                            "text/x-shellscript", "text/cloud-config", "text/plain",
                            "Content-Transfer-Encoding: base64", "quoted-printable", "charset=",
                            "runcmd:", "write_files:", "users:", "packages:", "- ", "[", "]",
                            "{", "}", "&a", "*a", "!!", "? ", ": "})
    # The query string and body split (`\n`): a presigned GET's query with a body.
    write("query", "split-query-body", b"Action=DescribeRegions&Version=2016-11-15\nRegionName.1=us-east-1")

    write("sigv4", "post-describe-instances", signed_request(bodies["DescribeInstances"]))
    write("sigv4", "post-run-instances", signed_request(bodies["RunInstances"]))
    write("sigv4", "post-sts", signed_request(b"Action=GetCallerIdentity&Version=2011-06-15", "sts"))
    write("sigv4", "presigned-get", signed_request(bodies["DescribeRegions"], presign=True))
    write("sigv4", "post-session-token", signed_request(bodies["DescribeVpcs"], headers={
        "X-Amz-Security-Token": "FQoGZXIvYXdzEJr//////////wEaDEXAMPLETOKEN"}))
    write("sigv4", "unsigned-get", b"GET /?Action=DescribeRegions&Version=2016-11-15 HTTP/1.1\r\nHost: 127.0.0.1:8787\r\n\r\n")
    n += 6

    filters = {
        "state-and-tag": dict(Filters=[{"Name": "instance-state-name", "Values": ["running"]},
                                       {"Name": "tag:env", "Values": ["prod", "d?v"]}]),
        "wildcards": dict(Filters=[{"Name": "instance-type", "Values": ["t2.*", "*.large", "\\*"]},
                                   {"Name": "tag-key", "Values": ["*"]}], MaxResults=5),
        "tag-value": dict(Filters=[{"Name": "tag-value", "Values": ["web-?", "", "한*"]}]),
        "ip-and-id": dict(Filters=[{"Name": "ip-address", "Values": ["172.31.*"]},
                                   {"Name": "instance-id", "Values": ["i-0000000000000000?"]}],
                          MaxResults=5, NextToken="djE6aS0wMDAwMDAwMDAwMDAwMDAwYg"),
        "escapes": dict(Filters=[{"Name": "tag:Name", "Values": ["a\\?b\\\\c", "db\\*primary", "web-3 "]}]),
        "unknown-filter": dict(Filters=[{"Name": "bogus", "Values": ["x"]}]),
    }
    for name, params in filters.items():
        write("filters", name, query_body("DescribeInstances", params))
        n += 1

    script = b"#!/bin/bash\necho hello > /root/hello.txt\n"
    config = b"""#cloud-config
hostname: web-1
packages: [nginx]
write_files:
  - path: /etc/motd
    content: aGVsbG8K
    encoding: b64
    permissions: '0644'
runcmd:
  - [systemctl, enable, --now, nginx]
  - echo done
"""
    # Fixed boundaries (email picks random ones), so a re-run writes the same files.
    mp = MIMEMultipart(boundary="===============5139471834516946273==")
    for payload, sub in ((config, "cloud-config"), (script, "x-shellscript")):
        part = MIMEText(payload.decode(), sub, "utf-8")
        part.add_header("Content-Disposition", "attachment", filename=sub)
        mp.attach(part)
    inc = MIMEText("#include\nhttp://example.invalid/cfg\n", "x-include-url")
    mp.attach(inc)
    write("userdata", "script", script)
    write("userdata", "cloud-config", config)
    write("userdata", "multipart", mp.as_bytes())
    write("userdata", "multipart-gzip", gzip.compress(mp.as_bytes(), mtime=0))
    write("userdata", "script-gzip", gzip.compress(script, mtime=0))
    gz_part = MIMEMultipart(boundary="===============0794315093842123011==")
    from email.mime.application import MIMEApplication
    gz_part.attach(MIMEApplication(gzip.compress(config, mtime=0), "gzip"))
    write("userdata", "multipart-gzip-part", gz_part.as_bytes())
    write("userdata", "cloud-config-users", b"""#cloud-config
users:
  - default
  - name: deploy
    groups: [sudo, adm]
    sudo: "ALL=(ALL) NOPASSWD:ALL"
    shell: /bin/bash
    ssh_authorized_keys: [ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJx7 me@laptop]
ssh_authorized_keys: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJx7 other@laptop
package_update: true
""")
    n += 7
    print(f"wrote {n} seeds under {CORPUS.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
