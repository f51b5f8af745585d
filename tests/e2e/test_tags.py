"""Tags through boto3 and the AWS CLI: CreateTags/DeleteTags/DescribeTags, AWS's limits,
filters and pagination."""

import botocore.exceptions
import pytest


def code_of(e):
    return e.value.response["Error"]["Code"]


@pytest.fixture
def keys(ec2):
    ids = []
    for i in range(3):
        name = f"tagged-{i}-{id(ids)}"
        ids.append(ec2.create_key_pair(KeyName=name, KeyType="ed25519")["KeyPairId"])
    yield ids
    for i in ids:
        ec2.delete_key_pair(KeyPairId=i)


def test_create_describe_delete(ec2, keys):
    ec2.create_tags(Resources=keys[:2], Tags=[{"Key": "env", "Value": "prod"}, {"Key": "Name", "Value": "web"}])
    ec2.create_tags(Resources=[keys[2]], Tags=[{"Key": "env", "Value": "dev"}])
    tags = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": keys}])["Tags"]
    assert len(tags) == 5
    assert all(t["ResourceType"] == "key-pair" for t in tags)
    prod = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": keys},
                                      {"Name": "value", "Values": ["pro*"]}])["Tags"]
    assert sorted(t["ResourceId"] for t in prod) == sorted(keys[:2])
    # Overwrite, then delete by key+value (no match: kept) and by key alone.
    ec2.create_tags(Resources=[keys[0]], Tags=[{"Key": "env", "Value": "stage"}])
    ec2.delete_tags(Resources=[keys[0]], Tags=[{"Key": "env", "Value": "prod"}])
    t0 = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [keys[0]]}])["Tags"]
    assert {t["Key"]: t["Value"] for t in t0} == {"env": "stage", "Name": "web"}
    ec2.delete_tags(Resources=[keys[0]], Tags=[{"Key": "env"}])
    t0 = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [keys[0]]}])["Tags"]
    assert [t["Key"] for t in t0] == ["Name"]
    # Tags show on the resource itself.
    kp = ec2.describe_key_pairs(KeyPairIds=[keys[1]])["KeyPairs"][0]
    assert {t["Key"] for t in kp["Tags"]} == {"env", "Name"}


def test_limits_and_errors_change_nothing(ec2, keys):
    k = keys[0]
    many = [{"Key": f"k{i}", "Value": "v"} for i in range(50)]
    ec2.create_tags(Resources=[k], Tags=many)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.create_tags(Resources=[k], Tags=[{"Key": "one-more", "Value": "v"}])
    assert code_of(e) == "TagLimitExceeded"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.create_tags(Resources=[keys[1]], Tags=[{"Key": "aws:reserved", "Value": "v"}])
    assert code_of(e) == "InvalidParameterValue"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.create_tags(Resources=[keys[1]], Tags=[{"Key": "x" * 129, "Value": "v"}])
    assert code_of(e) == "InvalidParameterValue"
    # One bad resource in the list: nothing is tagged at all.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.create_tags(Resources=[keys[1], "key-0123456789abcdef0"], Tags=[{"Key": "a", "Value": "b"}])
    assert code_of(e) == "InvalidKeyPair.NotFound"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.create_tags(Resources=["bogus-123"], Tags=[{"Key": "a", "Value": "b"}])
    assert code_of(e) == "InvalidID"
    assert ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [keys[1]]}])["Tags"] == []
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.describe_tags(Filters=[{"Name": "nope", "Values": ["x"]}])
    assert code_of(e) == "InvalidParameterValue"


def test_pagination(ec2, keys):
    k = keys[2]
    ec2.create_tags(Resources=[k], Tags=[{"Key": f"p{i:02}", "Value": str(i)} for i in range(23)])
    flt = [{"Name": "resource-id", "Values": [k]}]
    seen, token = [], None
    while True:
        kw = {"Filters": flt, "MaxResults": 5}
        if token:
            kw["NextToken"] = token
        page = ec2.describe_tags(**kw)
        assert len(page["Tags"]) <= 5
        seen += [t["Key"] for t in page["Tags"]]
        token = page.get("NextToken")
        if not token:
            break
    assert seen == sorted(f"p{i:02}" for i in range(23))
    # botocore's paginator, as scripts use it.
    pages = ec2.get_paginator("describe_tags").paginate(Filters=flt, PaginationConfig={"PageSize": 7})
    assert sum(len(p["Tags"]) for p in pages) == 23
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.describe_tags(MaxResults=4)
    assert code_of(e) == "InvalidParameterValue"


def test_pagination_is_stable_under_concurrent_writes(ec2, keys):
    k = keys[1]
    ec2.create_tags(Resources=[k], Tags=[{"Key": f"s{i:02}", "Value": ""} for i in range(20)])
    flt = [{"Name": "resource-id", "Values": [k]}]
    first = ec2.describe_tags(Filters=flt, MaxResults=5)
    got = [t["Key"] for t in first["Tags"]]
    # Between pages: delete something already returned and add something before the cursor.
    ec2.delete_tags(Resources=[k], Tags=[{"Key": got[0]}])
    ec2.create_tags(Resources=[k], Tags=[{"Key": "a-early", "Value": ""}])
    token = first["NextToken"]
    while token:
        page = ec2.describe_tags(Filters=flt, MaxResults=5, NextToken=token)
        got += [t["Key"] for t in page["Tags"]]
        token = page.get("NextToken")
    assert got == [f"s{i:02}" for i in range(20)], "no item repeated or skipped"


def test_cli_tags(server, keys):
    server.aws("ec2", "create-tags", "--resources", keys[0], "--tags", "Key=cli,Value=yes")
    out = server.aws("ec2", "describe-tags", "--filters", f"Name=resource-id,Values={keys[0]}",
                     "Name=key,Values=cli", "--query", "Tags[0].Value", "--output", "text").stdout
    assert out.strip() == "yes"
