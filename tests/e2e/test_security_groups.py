"""Security groups through boto3 and the AWS CLI: AWS's semantics and errors for groups and
rules, the default group, VPCs and subnets. (Enforcement in the kernel is tested with the
network driver.)"""

import botocore.exceptions
import pytest


def code_of(e):
    return e.value.response["Error"]["Code"]


def test_default_vpc_subnets_and_group(ec2):
    vpcs = ec2.describe_vpcs()["Vpcs"]
    assert len(vpcs) == 1 and vpcs[0]["IsDefault"] and vpcs[0]["CidrBlock"] == "172.31.0.0/16"
    subnets = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"]
    assert sorted((s["AvailabilityZone"], s["CidrBlock"]) for s in subnets) == [
        ("us-east-1a", "172.31.0.0/20"), ("us-east-1b", "172.31.16.0/20"), ("us-east-1c", "172.31.32.0/20")]
    assert all(s["MapPublicIpOnLaunch"] and s["VpcId"] == vpcs[0]["VpcId"] for s in subnets)
    default = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]
    assert default["VpcId"] == vpcs[0]["VpcId"]
    ingress = default["IpPermissions"]
    assert ingress[0]["IpProtocol"] == "-1"
    assert ingress[0]["UserIdGroupPairs"][0]["GroupId"] == default["GroupId"]
    assert default["IpPermissionsEgress"][0]["IpRanges"] == [{"CidrIp": "0.0.0.0/0"}]


def test_group_lifecycle_and_rules(server):
    ec2 = server.client()
    gid = ec2.create_security_group(GroupName="web", Description="web servers")["GroupId"]
    assert gid.startswith("sg-")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.create_security_group(GroupName="web", Description="again")
    assert code_of(e) == "InvalidGroup.Duplicate"
    # The CLI shorthand, as the tutorial types it.
    server.aws("ec2", "authorize-security-group-ingress", "--group-name", "web", "--protocol", "tcp",
               "--port", "22", "--cidr", "0.0.0.0/0")
    r = ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80,
         "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "http"}, {"CidrIp": "10.1.2.3/32"}]},
        {"IpProtocol": "icmp", "FromPort": -1, "ToPort": -1, "IpRanges": [{"CidrIp": "172.31.0.0/16"}]},
        {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": gid}]},
    ])
    assert r["Return"] is True and len(r["SecurityGroupRules"]) == 4
    assert all(x["SecurityGroupRuleId"].startswith("sgr-") for x in r["SecurityGroupRules"])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.authorize_security_group_ingress(GroupId=gid, IpProtocol="tcp", FromPort=22, ToPort=22, CidrIp="0.0.0.0/0")
    assert code_of(e) == "InvalidPermission.Duplicate"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.authorize_security_group_ingress(GroupId=gid, IpProtocol="tcp", FromPort=1, ToPort=2, CidrIp="300.0.0.0/8")
    assert code_of(e) == "InvalidParameterValue"
    g = ec2.describe_security_groups(GroupIds=[gid])["SecurityGroups"][0]
    perms = {(p["IpProtocol"], p.get("FromPort"), p.get("ToPort")): p for p in g["IpPermissions"]}
    assert perms[("tcp", 22, 22)]["IpRanges"] == [{"CidrIp": "0.0.0.0/0"}]
    assert {x["CidrIp"] for x in perms[("tcp", 80, 80)]["IpRanges"]} == {"0.0.0.0/0", "10.1.2.3/32"}
    assert perms[("-1", None, None)]["UserIdGroupPairs"][0]["GroupId"] == gid
    # Filters.
    found = ec2.describe_security_groups(Filters=[{"Name": "ip-permission.from-port", "Values": ["80"]}])
    assert [x["GroupId"] for x in found["SecurityGroups"]] == [gid]
    found = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["we*"]}])
    assert [x["GroupName"] for x in found["SecurityGroups"]] == ["web"]
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [gid]}])["SecurityGroupRules"]
    assert len(rules) == 6  # 5 ingress + the default egress
    # Revoke by permission and by rule id.
    ec2.revoke_security_group_ingress(GroupId=gid, IpProtocol="tcp", FromPort=22, ToPort=22, CidrIp="0.0.0.0/0")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.revoke_security_group_ingress(GroupId=gid, IpProtocol="tcp", FromPort=22, ToPort=22, CidrIp="0.0.0.0/0")
    assert code_of(e) == "InvalidPermission.NotFound"
    icmp = [x for x in rules if x["IpProtocol"] == "icmp"][0]["SecurityGroupRuleId"]
    ec2.revoke_security_group_ingress(GroupId=gid, SecurityGroupRuleIds=[icmp])
    left = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [gid]}])["SecurityGroupRules"]
    assert len(left) == 4
    # Egress.
    ec2.authorize_security_group_egress(GroupId=gid, IpPermissions=[
        {"IpProtocol": "udp", "FromPort": 53, "ToPort": 53, "IpRanges": [{"CidrIp": "172.31.0.2/32"}]}])
    ec2.revoke_security_group_egress(GroupId=gid, IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    g = ec2.describe_security_groups(GroupIds=[gid])["SecurityGroups"][0]
    assert [(p["IpProtocol"], p["FromPort"]) for p in g["IpPermissionsEgress"]] == [("udp", 53)]
    # Delete: the default group never; a referenced group not while referenced.
    other = ec2.create_security_group(GroupName="db", Description="db")["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=other, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "UserIdGroupPairs": [{"GroupId": gid}]}])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.delete_security_group(GroupId=gid)
    assert code_of(e) == "DependencyViolation"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.delete_security_group(GroupName="default")
    assert code_of(e) == "CannotDelete"
    ec2.delete_security_group(GroupId=other)
    ec2.delete_security_group(GroupId=gid)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.describe_security_groups(GroupIds=[gid])
    assert code_of(e) == "InvalidGroup.NotFound"


def test_rule_limit_and_isolation(server):
    ec2 = server.client()
    gid = ec2.create_security_group(GroupName="many", Description="many rules")["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": p, "ToPort": p, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]} for p in range(1000, 1060)])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.authorize_security_group_ingress(GroupId=gid, IpProtocol="tcp", FromPort=1, ToPort=1, CidrIp="0.0.0.0/0")
    assert code_of(e) == "RulesPerSecurityGroupLimitExceeded"
    _, keys = server.new_account("sg-bob")
    bob = server.client(keys)
    assert [g["GroupName"] for g in bob.describe_security_groups()["SecurityGroups"]] == ["default"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        bob.delete_security_group(GroupId=gid)
    assert code_of(e) == "InvalidGroup.NotFound"
    ec2.delete_security_group(GroupId=gid)


def _perms(ec2, gid):
    g = ec2.describe_security_groups(GroupIds=[gid])["SecurityGroups"][0]
    return sorted((p["IpProtocol"], p.get("FromPort"), p.get("ToPort")) for p in g["IpPermissions"])


def test_protocols_as_aws_names_and_numbers_them(server):
    """Every protocol AWS accepts, by name or number, is stored and described as AWS describes
    it; anything else is refused with AWS's error and changes nothing."""
    ec2 = server.client()
    gid = ec2.create_security_group(GroupName="protocols", Description="protocols")["GroupId"]
    cidr = [{"CidrIp": "10.0.0.0/8"}]
    for proto, ports in [("6", (22, 22)), ("UDP", (53, 53)), ("1", (8, -1)), ("icmpv6", None),
                         ("47", (1, 2)), ("132", None), ("0", None)]:
        perm = {"IpProtocol": proto, "IpRanges": cidr}
        if ports:
            perm.update(FromPort=ports[0], ToPort=ports[1])
        ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[perm])
    # Names for 6/17/1/58 and numbers otherwise; ports only where the protocol has them
    # (ICMPv6 without a type and code: every type and code).
    assert _perms(ec2, gid) == sorted([
        ("tcp", 22, 22), ("udp", 53, 53), ("icmp", 8, -1), ("icmpv6", -1, -1),
        ("47", None, None), ("132", None, None), ("0", None, None)])
    # 58 is icmpv6: the same rule again is a duplicate.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[
            {"IpProtocol": "58", "FromPort": -1, "ToPort": -1, "IpRanges": cidr}])
    assert code_of(e) == "InvalidPermission.Duplicate"
    rules = ec2.describe_security_group_rules(
        Filters=[{"Name": "group-id", "Values": [gid]}])["SecurityGroupRules"]
    assert sorted(r["IpProtocol"] for r in rules if not r["IsEgress"]) == sorted(
        ["tcp", "udp", "icmp", "icmpv6", "47", "132", "0"])
    before = _perms(ec2, gid)
    for bad in ["256", "-2", "icmp6", "ipv6-icmp", "gre", "6.0"]:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[
                {"IpProtocol": bad, "FromPort": 1, "ToPort": 2, "IpRanges": cidr}])
        assert code_of(e) == "InvalidParameterValue", bad
        assert e.value.response["Error"]["Message"] == \
            f"Invalid value '{bad}' for IP protocol. Unknown protocol."
    assert _perms(ec2, gid) == before
    # Revoking by number finds the rule stored by name.
    ec2.revoke_security_group_ingress(GroupId=gid, IpPermissions=[
        {"IpProtocol": "58", "FromPort": -1, "ToPort": -1, "IpRanges": cidr}])
    assert ("icmpv6", -1, -1) not in _perms(ec2, gid)
    ec2.delete_security_group(GroupId=gid)
