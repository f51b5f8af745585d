"""The Query protocol and SigV4 through a real server: every bad request gets AWS's error
code, status and a request id, changes nothing, and cannot crash or hang the server."""

import re
import time

import botocore.exceptions
import pytest
import urllib3

from conftest import form

DESCRIBE = "Action=DescribeKeyPairs&Version=2016-11-15"


def error_of(body):
    code = re.search(r"<Code>(.*?)</Code>", body)
    rid = re.search(r"<RequestID>(.*?)</RequestID>", body)
    return (code.group(1) if code else None), (rid.group(1) if rid else None)


def assert_error(status_body, status, code):
    st, body = status_body
    got, rid = error_of(body)
    assert (st, got) == (status, code), body
    assert rid and len(rid) == 36, body


def key_count(server):
    return len(server.client().describe_key_pairs()["KeyPairs"])


def test_signed_get_and_post(server):
    st, body = server.raw(DESCRIBE)
    assert st == 200 and "<DescribeKeyPairsResponse" in body and "<requestId>" in body
    assert 'xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"' in body
    st, body = server.raw(b"", method="GET", path="/?" + DESCRIBE)
    assert st == 200 and "<keySet" in body


def test_authentication_failures(server):
    ak, sk = server.admin_keys()
    # No authentication at all: EC2 answers MissingParameter (AWSAccessKeyId).
    assert_error(server.raw(DESCRIBE, sign=False), 400, "MissingParameter")
    # Unknown access key.
    assert_error(server.raw(DESCRIBE, keys=("AKIAUNKNOWNUNKNOWN00", sk)), 401, "AuthFailure")
    # Right key, wrong secret.
    assert_error(server.raw(DESCRIBE, keys=(ak, "x" * 40)), 403, "SignatureDoesNotMatch")
    # Credential scoped to the wrong region or service.
    assert_error(server.raw(DESCRIBE, region="eu-west-1"), 403, "SignatureDoesNotMatch")
    assert_error(server.raw(DESCRIBE, service="s3"), 403, "SignatureDoesNotMatch")
    # Clock skew beyond 15 minutes either way; within it is fine.
    assert_error(server.raw(DESCRIBE, skew_seconds=16 * 60), 400, "RequestExpired")
    assert_error(server.raw(DESCRIBE, skew_seconds=-16 * 60), 400, "RequestExpired")
    assert server.raw(DESCRIBE, skew_seconds=-14 * 60)[0] == 200
    # Garbage Authorization header.
    http = urllib3.PoolManager()
    r = http.request("POST", server.endpoint + "/", body=DESCRIBE,
                     headers={"Authorization": "AWS4-HMAC-SHA256 nonsense",
                              "Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 400 and error_of(r.data.decode())[0] == "IncompleteSignature"


def test_a_failed_signature_changes_nothing(server):
    before = key_count(server)
    body = form(Action="CreateKeyPair", Version="2016-11-15", KeyName="forged")
    ak, _ = server.admin_keys()
    assert_error(server.raw(body, keys=(ak, "wrong" * 8)), 403, "SignatureDoesNotMatch")
    assert_error(server.raw(body, skew_seconds=3600), 400, "RequestExpired")
    assert key_count(server) == before


def fetch(method, url):
    r = urllib3.PoolManager().request(method, url, retries=False, timeout=10)
    return r.status, r.data.decode("utf-8", "replace")


def test_presigned_urls(server):
    # botocore presigns EC2 operations for their model's HTTP method, POST, with every
    # parameter in the query string and an empty body. A URL is for opening, so a GET of
    # it works too (a documented deviation: AWS signs the method and refuses the GET).
    ec2 = server.client()
    cases = [
        ("describe_instances", {"MaxResults": 5,
                                "Filters": [{"Name": "instance-state-name",
                                             "Values": ["running", "stopped"]}]},
         "<DescribeInstancesResponse"),
        ("describe_regions", {"RegionNames": ["us-east-1"]}, "<regionName>us-east-1<"),
        ("describe_key_pairs", {}, "<keySet"),
    ]
    for op, params, expect in cases:
        for signed_for in (None, "GET"):
            url = ec2.generate_presigned_url(op, Params=params, ExpiresIn=60,
                                             HttpMethod=signed_for)
            assert "X-Amz-Signature=" in url and "Authorization" not in url
            for method in ("GET", "POST"):
                st, body = fetch(method, url)
                assert st == 200 and expect in body, (op, signed_for, method, body)

    # A mutating action with parameters runs once per fetch, as its owner signed it.
    url = ec2.generate_presigned_url("create_key_pair",
                                     Params={"KeyName": "presigned", "KeyType": "ed25519"},
                                     ExpiresIn=60)
    st, body = fetch("GET", url)
    assert st == 200 and "<keyName>presigned</keyName>" in body, body
    assert "BEGIN OPENSSH PRIVATE KEY" in body
    st, body = fetch("GET", url)
    assert (st, error_of(body)[0]) == (400, "InvalidKeyPair.Duplicate"), body
    names = [k["KeyName"] for k in ec2.describe_key_pairs()["KeyPairs"]]
    assert names.count("presigned") == 1

    # Past X-Amz-Date + X-Amz-Expires: EC2's RequestExpired, for either method.
    url = ec2.generate_presigned_url("describe_key_pairs", ExpiresIn=1)
    assert fetch("GET", url)[0] == 200
    time.sleep(2.1)
    for method in ("GET", "POST"):
        assert_error(fetch(method, url), 400, "RequestExpired")

    # Tampering with any signed part breaks the signature, and changes nothing.
    before = key_count(server)
    url = ec2.generate_presigned_url("create_key_pair", Params={"KeyName": "signed"},
                                     ExpiresIn=60)
    for tampered in (url.replace("KeyName=signed", "KeyName=forged"),
                     url.replace("X-Amz-Expires=60", "X-Amz-Expires=600"),
                     url.replace("Action=CreateKeyPair", "Action=DeleteKeyPair"),
                     url + "&KeyType=ed25519"):
        assert tampered != url
        for method in ("GET", "POST"):
            assert_error(fetch(method, tampered), 403, "SignatureDoesNotMatch")
    # Parameters posted in a body ride on no signature: the URL no longer verifies.
    r = urllib3.PoolManager().request(
        "POST", url, body="KeyType=ed25519",
        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert_error((r.status, r.data.decode()), 403, "SignatureDoesNotMatch")
    assert key_count(server) == before
    # Only GET and POST are the Query API's methods.
    assert fetch("PUT", url)[0] == 400


def test_protocol_errors(server):
    assert_error(server.raw("Action=LaunchRockets&Version=2016-11-15"), 400, "InvalidAction")
    assert_error(server.raw("Version=2016-11-15"), 400, "MissingAction")
    st, body = server.raw(DESCRIBE + "&Bogus=1")
    assert (st, error_of(body)[0]) == (400, "UnknownParameter")
    assert "The parameter Bogus is not recognized" in body
    assert_error(server.raw("Action=CreateKeyPair&Version=2016-11-15"), 400, "MissingParameter")
    assert_error(server.raw(DESCRIBE + "&KeyName.1=%FF%FE"), 400, "InvalidCharacter")
    assert_error(server.raw(b"Action=DescribeKeyPairs&KeyName.1=\xff\xfe"), 400, "InvalidCharacter")
    assert_error(server.raw(DESCRIBE + "&Filter.1.Name=key-name&Filter.1.Nonsense=1"), 400,
                 "UnknownParameter")
    assert_error(server.raw("Action=DescribeTags&Version=2016-11-15&MaxResults=abc"), 400,
                 "InvalidParameterValue")
    assert_error(server.raw("Action=DescribeTags&Version=2016-11-15&NextToken=garbage"), 400,
                 "InvalidPaginationToken")
    assert_error(server.raw("Action=CreateKeyPair&Version=2016-11-15&KeyName=" + "k" * 256), 400,
                 "InvalidParameterValue")


def test_oversized_bodies_are_refused_and_the_server_survives(server):
    big = DESCRIBE + "&KeyName.1=" + "a" * (2 * 1024 * 1024)
    http = urllib3.PoolManager()
    try:
        r = http.request("POST", server.endpoint + "/", body=big,
                         headers={"Content-Type": "application/x-www-form-urlencoded"}, retries=False)
        assert r.status == 413
    except urllib3.exceptions.ProtocolError:
        pass  # the server may close the connection after refusing the body
    assert http.request("GET", server.endpoint + "/healthz").status == 200
    assert server.raw(DESCRIBE)[0] == 200


def test_fuzzed_forms_never_crash(server):
    samples = [b"", b"&&&", b"=", b"Action", b"Action=", b"Action=DescribeKeyPairs&KeyName.0=x",
               b"Action=DescribeKeyPairs&KeyName.999999999999=x", b"Action=DescribeKeyPairs&Filter.1.Value.1=x",
               b"Action=CreateTags&ResourceId.1=key-zz&Tag.1.Key=a", b"%", b"%zz=1", b"Action=%E2%9C",
               b"Action=DescribeKeyPairs&" + b"KeyName.1=a&" * 2000]
    for s in samples:
        st, body = server.raw(s)
        assert st in (200, 400), (s, st, body)
        assert "<RequestID>" in body or st == 200
    assert urllib3.PoolManager().request("GET", server.endpoint + "/healthz").status == 200


def test_sts_get_caller_identity(server):
    ident = server.client(service="sts").get_caller_identity()
    acct = ident["Account"]
    assert len(acct) == 12 and acct.isdigit()
    assert ident["Arn"] == f"arn:aws:iam::{acct}:root"
    r = server.aws("sts", "get-caller-identity", "--query", "Account", "--output", "text")
    assert r.stdout.strip() == acct


def test_browser_visit_gets_a_page_not_an_error(server):
    r = urllib3.PoolManager().request("GET", server.endpoint + "/")
    assert r.status == 200 and b"gureum" in r.data


def test_client_errors_surface_as_botocore_codes(ec2):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.describe_key_pairs(KeyNames=["nope"])
    err = e.value.response
    assert err["Error"]["Code"] == "InvalidKeyPair.NotFound"
    assert err["ResponseMetadata"]["RequestId"]


def test_control_characters_never_break_the_xml(server):
    """Found by fuzzing (fuzz/query): text XML cannot carry, quoted back or stored, made the
    whole response unparseable. It comes back as U+FFFD; a carriage return survives."""
    import xml.etree.ElementTree as ET

    st, body = server.raw(DESCRIBE + "&Key%00Name.1=x")
    assert (st, error_of(body)[0]) == (400, "UnknownParameter")
    ET.fromstring(body.encode())
    ec2 = server.client()
    kid = ec2.create_key_pair(KeyName="ctl", KeyType="ed25519")["KeyPairId"]
    ec2.create_tags(Resources=[kid], Tags=[{"Key": "note", "Value": "a\x01b\rc"}])
    tags = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [kid]}])["Tags"]
    assert [t["Value"] for t in tags] == ["a\ufffdb\rc"]
    ec2.delete_key_pair(KeyPairId=kid)
