"""Regions, zones, account attributes and the instance-type catalogue."""

import botocore.exceptions
import pytest


def test_regions_and_zones(ec2, server):
    regions = ec2.describe_regions()["Regions"]
    assert [r["RegionName"] for r in regions] == ["us-east-1"]
    zones = ec2.describe_availability_zones()["AvailabilityZones"]
    assert [z["ZoneName"] for z in zones] == ["us-east-1a", "us-east-1b", "us-east-1c"]
    assert all(z["State"] == "available" and z["RegionName"] == "us-east-1" for z in zones)
    assert zones[0]["ZoneId"] == "use1-az1"
    only_b = ec2.describe_availability_zones(Filters=[{"Name": "zone-name", "Values": ["*b"]}])
    assert [z["ZoneName"] for z in only_b["AvailabilityZones"]] == ["us-east-1b"]
    with pytest.raises(botocore.exceptions.ClientError):
        ec2.describe_availability_zones(ZoneNames=["us-east-1z"])
    attrs = {a["AttributeName"]: [v["AttributeValue"] for v in a["AttributeValues"]]
             for a in ec2.describe_account_attributes()["AccountAttributes"]}
    assert attrs["supported-platforms"] == ["VPC"]
    assert attrs["max-instances"] == ["20"]


def test_instance_types(ec2):
    t = ec2.describe_instance_types(InstanceTypes=["t2.micro"])["InstanceTypes"][0]
    assert t["VCpuInfo"]["DefaultVCpus"] == 1
    assert t["MemoryInfo"]["SizeInMiB"] == 1024
    assert t["FreeTierEligible"] is True
    assert "x86_64" in t["ProcessorInfo"]["SupportedArchitectures"]
    free = ec2.describe_instance_types(Filters=[{"Name": "free-tier-eligible", "Values": ["true"]}])
    assert sorted(x["InstanceType"] for x in free["InstanceTypes"]) == ["t2.micro", "t3.micro"]
    two = ec2.describe_instance_types(Filters=[{"Name": "vcpu-info.default-vcpus", "Values": ["2"]},
                                               {"Name": "memory-info.size-in-mib", "Values": ["8192"]}])
    names = {x["InstanceType"] for x in two["InstanceTypes"]}
    assert {"t3.large", "m5.large"} <= names
    assert all(x["VCpuInfo"]["DefaultVCpus"] == 2 for x in two["InstanceTypes"])
    pages = ec2.get_paginator("describe_instance_types").paginate(PaginationConfig={"PageSize": 5})
    all_names = [x["InstanceType"] for p in pages for x in p["InstanceTypes"]]
    assert len(all_names) >= 24 and len(set(all_names)) == len(all_names)
    for fam in ("t2", "t3", "t3a", "m5", "c5", "r5"):
        assert any(n.startswith(fam + ".") for n in all_names)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.describe_instance_types(InstanceTypes=["t9.huge"])
    assert e.value.response["Error"]["Code"] == "InvalidInstanceType"


def test_instance_type_offerings(ec2):
    o = ec2.describe_instance_type_offerings()["InstanceTypeOfferings"]
    assert {x["Location"] for x in o} == {"us-east-1"}
    o = ec2.describe_instance_type_offerings(
        LocationType="availability-zone",
        Filters=[{"Name": "instance-type", "Values": ["t2.micro"]}])["InstanceTypeOfferings"]
    assert sorted(x["Location"] for x in o) == ["us-east-1a", "us-east-1b", "us-east-1c"]


def test_cli_free_tier_query(server):
    out = server.aws("ec2", "describe-instance-types", "--filters", "Name=free-tier-eligible,Values=true",
                     "--query", "sort(InstanceTypes[].InstanceType)", "--output", "text").stdout.split()
    assert out == ["t2.micro", "t3.micro"]
