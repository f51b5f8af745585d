"""Networking with real instances and real TCP: an Elastic IP moved between two instances, kept
through stop/start; security-group rules modified in place; a non-default VPC whose public
addresses work only once its route table sends 0.0.0.0/0 to an attached internet gateway, and
which is isolated from the default VPC; metadata options changed on a running instance.
Needs root, runc and network namespaces; skipped (and reported) otherwise."""

import os
import subprocess
import time

import botocore.exceptions
import pytest

from conftest import ssh, wait_for, wait_ssh
from test_instances import _get, cloud, why  # noqa: F401 (fixture)

pytestmark = pytest.mark.skipif(why is not None, reason=f"instances need root, runc and netns: {why}")

WEB = ("mkdir -p /tmp/www && hostname > /tmp/www/id && cd /tmp/www && "
       "(nohup python3 -m http.server {port} >/dev/null 2>&1 &)")


def code_of(e):
    return e.value.response["Error"]["Code"]


def _key(ec2, tmp_path, name):
    key = tmp_path / f"{name}.pem"
    key.write_text(ec2.create_key_pair(KeyName=name)["KeyMaterial"])
    os.chmod(key, 0o600)
    return key


def _launch(cloud, ec2, key_name, count=1, **kw):
    r = ec2.run_instances(ImageId=cloud.image["ImageId"], InstanceType="t2.nano", KeyName=key_name,
                          MinCount=count, MaxCount=count, **kw)
    ids = [i["InstanceId"] for i in r["Instances"]]
    ec2.get_waiter("instance_running").wait(InstanceIds=ids, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    return [ec2.describe_instances(InstanceIds=[i])["Reservations"][0]["Instances"][0] for i in ids]


def _terminate(ec2, ids):
    ec2.terminate_instances(InstanceIds=ids)
    ec2.get_waiter("instance_terminated").wait(InstanceIds=ids, WaiterConfig={"Delay": 1, "MaxAttempts": 60})


def _who(ip, port=8080):
    body = _get(f"http://{ip}:{port}/id")
    return body.decode().strip() if body else None


def test_elastic_ip_moves_between_instances(cloud, tmp_path):
    ec2 = cloud.client()
    key = _key(ec2, tmp_path, "eip")
    gid = ec2.create_security_group(GroupName="eip-web", Description="eip test")["GroupId"]
    r = ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
        {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    web_rule = [x for x in r["SecurityGroupRules"] if x["FromPort"] == 8080][0]["SecurityGroupRuleId"]
    a, b = _launch(cloud, ec2, "eip", count=2, SecurityGroupIds=[gid])
    names = {}
    for inst in (a, b):
        wait_ssh(key, inst["PrivateIpAddress"])
        ssh(key, inst["PrivateIpAddress"], WEB.format(port=8080))
        names[inst["InstanceId"]] = wait_for(lambda: _who(inst["PrivateIpAddress"]), 15, "the web server")

    alloc = ec2.allocate_address(Domain="vpc")
    eip, alloc_id = alloc["PublicIp"], alloc["AllocationId"]
    assert eip.startswith("127.100.") and alloc_id.startswith("eipalloc-")
    assert eip not in (a["PublicIpAddress"], b["PublicIpAddress"])
    assert _who(eip) is None, "nothing answers on an unassociated Elastic IP"

    assoc = ec2.associate_address(AllocationId=alloc_id, InstanceId=a["InstanceId"])["AssociationId"]
    wait_for(lambda: _who(eip) == names[a["InstanceId"]], 2, "the Elastic IP to reach A")
    d = ec2.describe_instances(InstanceIds=[a["InstanceId"]])["Reservations"][0]["Instances"][0]
    assert d["PublicIpAddress"] == eip
    assert wait_for(lambda: _who(a["PublicIpAddress"]) is None, 2, "A's old address to go"), \
        "the auto-assigned address is released"

    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.associate_address(AllocationId=alloc_id, InstanceId=b["InstanceId"])
    assert code_of(e) == "Resource.AlreadyAssociated"
    # Moved: within a second the same address answers from B.
    t0 = time.time()
    ec2.associate_address(AllocationId=alloc_id, InstanceId=b["InstanceId"], AllowReassociation=True)
    wait_for(lambda: _who(eip) == names[b["InstanceId"]], 2, "the Elastic IP to reach B", every=0.02)
    print(f"Elastic IP moved in {time.time() - t0:.3f} s")
    # A got an auto-assigned address back.
    a_now = wait_for(lambda: ec2.describe_instances(InstanceIds=[a["InstanceId"]])["Reservations"][0]
                     ["Instances"][0].get("PublicIpAddress"), 5, "A's new public address")
    assert a_now != eip
    wait_for(lambda: _who(a_now) == names[a["InstanceId"]], 5, "A at its new address")

    addrs = ec2.describe_addresses(Filters=[{"Name": "instance-id", "Values": [b["InstanceId"]]}])["Addresses"]
    assert [(x["PublicIp"], x["AllocationId"], x["PrivateIpAddress"]) for x in addrs] == \
        [(eip, alloc_id, b["PrivateIpAddress"])]
    assert addrs[0]["AssociationId"] != assoc and addrs[0]["Domain"] == "vpc"
    nics = ec2.describe_network_interfaces(Filters=[{"Name": "association.public-ip", "Values": [eip]}])
    assert [n["Attachment"]["InstanceId"] for n in nics["NetworkInterfaces"]] == [b["InstanceId"]]
    assert nics["NetworkInterfaces"][0]["Association"]["AllocationId"] == alloc_id
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.release_address(AllocationId=alloc_id)
    assert code_of(e) == "InvalidIPAddress.InUse"

    # Modify the web rule in place: 8080 closes, 8081 opens.
    ssh(key, b["PrivateIpAddress"], WEB.format(port=8081))
    ec2.modify_security_group_rules(GroupId=gid, SecurityGroupRules=[{
        "SecurityGroupRuleId": web_rule,
        "SecurityGroupRule": {"IpProtocol": "tcp", "FromPort": 8081, "ToPort": 8081, "CidrIpv4": "0.0.0.0/0"}}])
    wait_for(lambda: _who(eip, 8081) == names[b["InstanceId"]], 2, "8081 to open")
    wait_for(lambda: _who(eip, 8080) is None, 2, "8080 to close")

    # Stop and start keep the Elastic IP.
    ec2.stop_instances(InstanceIds=[b["InstanceId"]])
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[b["InstanceId"]], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    d = ec2.describe_instances(InstanceIds=[b["InstanceId"]])["Reservations"][0]["Instances"][0]
    assert d["PublicIpAddress"] == eip
    ec2.start_instances(InstanceIds=[b["InstanceId"]])
    ec2.get_waiter("instance_running").wait(InstanceIds=[b["InstanceId"]], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    wait_ssh(key, eip)

    cloud.aws("ec2", "disassociate-address", "--public-ip", eip)
    wait_for(lambda: subprocess.run(["ssh", "-o", "ConnectTimeout=1", "-o", "BatchMode=yes", f"admin@{eip}", "true"],
                                    capture_output=True).returncode == 255, 5, "the address to stop answering")
    ec2.release_address(AllocationId=alloc_id)
    assert ec2.describe_addresses()["Addresses"] == []
    _terminate(ec2, [a["InstanceId"], b["InstanceId"]])
    ec2.delete_security_group(GroupId=gid)


def test_metadata_options_on_a_running_instance(cloud, tmp_path):
    ec2 = cloud.client()
    key = _key(ec2, tmp_path, "imds")
    (inst,) = _launch(cloud, ec2, "imds")
    ip, iid = inst["PrivateIpAddress"], inst["InstanceId"]
    wait_ssh(key, ip)
    v1 = "curl -s -o /dev/null -w '%{http_code}' http://169.254.169.254/latest/meta-data/instance-id"
    assert ssh(key, ip, v1).stdout == "200"
    r = ec2.modify_instance_metadata_options(InstanceId=iid, HttpTokens="required", HttpPutResponseHopLimit=2)
    assert r["InstanceMetadataOptions"]["HttpTokens"] == "required"
    assert ssh(key, ip, v1).stdout == "401", "IMDSv1 refused once tokens are required"
    v2 = ("T=$(curl -s -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' http://169.254.169.254/latest/api/token);"
          " curl -s -H \"X-aws-ec2-metadata-token: $T\" http://169.254.169.254/latest/meta-data/security-groups")
    assert ssh(key, ip, v2).stdout == "default"
    d = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["MetadataOptions"]
    assert (d["HttpTokens"], d["HttpPutResponseHopLimit"]) == ("required", 2)
    ec2.modify_instance_metadata_options(InstanceId=iid, HttpEndpoint="disabled")
    assert ssh(key, ip, v1).stdout != "200"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.modify_instance_metadata_options(InstanceId="i-0123456789abcdef0", HttpTokens="required")
    assert code_of(e) == "InvalidInstanceID.NotFound"
    _terminate(ec2, [iid])


def test_custom_vpc_public_ip_needs_an_internet_gateway(cloud, tmp_path):
    ec2 = cloud.client()
    key = _key(ec2, tmp_path, "vpc")
    vpc = ec2.create_vpc(CidrBlock="10.77.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.77.1.0/24", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    ec2.modify_subnet_attribute(SubnetId=subnet, MapPublicIpOnLaunch={"Value": True})
    gid = ec2.create_security_group(GroupName="vpc-ssh", Description="ssh", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=gid, IpProtocol="tcp", FromPort=22, ToPort=22, CidrIp="0.0.0.0/0")
    ec2.authorize_security_group_ingress(GroupId=gid, IpProtocol="tcp", FromPort=8080, ToPort=8080, CidrIp="0.0.0.0/0")
    # A security group of another VPC is refused.
    default_sg = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]["GroupId"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.run_instances(ImageId=cloud.image["ImageId"], MinCount=1, MaxCount=1, SubnetId=subnet,
                          SecurityGroupIds=[default_sg])
    assert code_of(e) == "InvalidParameter"

    (inst,) = _launch(cloud, ec2, "vpc", SubnetId=subnet, SecurityGroupIds=[gid])
    ip, public = inst["PrivateIpAddress"], inst["PublicIpAddress"]
    assert ip.startswith("10.77.1.") and inst["VpcId"] == vpc
    wait_ssh(key, ip)
    ssh(key, ip, WEB.format(port=8080))
    wait_for(lambda: _who(ip), 15, "the web server")
    # No internet gateway yet: the public address is assigned but answers nothing.
    assert _who(public) is None
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    assert _who(public) is None, "attached, but no route yet"
    rtb = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]},
                                             {"Name": "association.main", "Values": ["true"]}])["RouteTables"][0]
    ec2.create_route(RouteTableId=rtb["RouteTableId"], DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    wait_for(lambda: _who(public), 3, "the public address once routed")
    # Separate VPCs are isolated: an instance of the default VPC cannot reach it, even with the
    # group open to everything.
    # (the module's fixture opened SSH in the default group)
    (other,) = _launch(cloud, ec2, "vpc", SecurityGroupIds=[default_sg])
    wait_ssh(key, other["PrivateIpAddress"])
    probe = ssh(key, other["PrivateIpAddress"], f"curl -s -m 2 http://{ip}:8080/id", check=False)
    assert probe.stdout == "", "no path between VPCs"
    # The route goes: the public address stops answering.
    ec2.delete_route(RouteTableId=rtb["RouteTableId"], DestinationCidrBlock="0.0.0.0/0")
    wait_for(lambda: _who(public) is None, 3, "the public address to stop once unrouted")
    _terminate(ec2, [inst["InstanceId"], other["InstanceId"]])
    # The VPC's bridge leaves the host with its last instance.
    wait_for(lambda: vpc not in subprocess.run(["ip", "-d", "link", "show", "type", "bridge"], capture_output=True,
                                               text=True).stdout, 10, "the VPC's bridge to go")
    ec2.detach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    ec2.delete_internet_gateway(InternetGatewayId=igw)
    ec2.delete_security_group(GroupId=gid)
    ec2.delete_subnet(SubnetId=subnet)
    ec2.delete_vpc(VpcId=vpc)


def test_groups_between_instances_accounts_and_spoofing(cloud, tmp_path):
    """Security groups between instances: the default group admits its members; another group
    admits them only once a rule names the default group; another account's instance is not a
    member of anything here; a guest sending from an address that is not its own is dropped."""
    ec2 = cloud.client()
    key = _key(ec2, tmp_path, "peers")
    default_sg = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]["GroupId"]
    other = ec2.create_security_group(GroupName="peers-other", Description="other")["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=other, IpProtocol="tcp", FromPort=22, ToPort=22, CidrIp="0.0.0.0/0")
    a, b = _launch(cloud, ec2, "peers", count=2)          # both in the default group
    (c,) = _launch(cloud, ec2, "peers", SecurityGroupIds=[other])
    for inst in (a, b, c):
        wait_ssh(key, inst["PrivateIpAddress"])
        ssh(key, inst["PrivateIpAddress"], WEB.format(port=8080))
    ip_a, ip_b, ip_c = (i["PrivateIpAddress"] for i in (a, b, c))

    def reach(src, dst):
        out = ssh(key, src, f"curl -s -m 2 http://{dst}:8080/id", check=False).stdout.strip()
        return out or None

    assert wait_for(lambda: reach(ip_a, ip_b), 10, "A to reach B in the same default group")
    assert reach(ip_a, ip_c) is None, "another group admits nobody on 8080"
    ec2.authorize_security_group_ingress(GroupId=other, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "UserIdGroupPairs": [{"GroupId": default_sg}]}])
    assert wait_for(lambda: reach(ip_a, ip_c), 3, "A to reach C once C's group names the default group")
    assert reach(ip_c, ip_a) is None, "C is not in the default group"

    # Another account: its instance is a member of none of these groups.
    _, keys2 = cloud.new_account("peers-two")
    ec2b = cloud.client(keys2)
    key2 = _key(ec2b, tmp_path, "peers2")
    ec2b.authorize_security_group_ingress(GroupName="default", IpProtocol="tcp", FromPort=22, ToPort=22,
                                          CidrIp="0.0.0.0/0")
    (d,) = _launch(cloud, ec2b, "peers2")
    ip_d = d["PrivateIpAddress"]
    wait_ssh(key2, ip_d)
    out = ssh(key2, ip_d, f"curl -s -m 2 http://{ip_a}:8080/id; curl -s -m 2 http://{ip_c}:8080/id",
              check=False).stdout
    assert out.strip() == "", "another account's instance reaches nothing the groups do not open"
    # Even open to 0.0.0.0/0, a private address is not reachable from another account's VPC.
    ec2.authorize_security_group_ingress(GroupId=other, IpProtocol="tcp", FromPort=8080, ToPort=8080,
                                         CidrIp="0.0.0.0/0")
    assert wait_for(lambda: _who(c["PublicIpAddress"]), 3, "C open to everyone at its public address")
    out = ssh(key2, ip_d, f"curl -s -m 2 http://{ip_c}:8080/id", check=False).stdout
    assert out.strip() == "", "no path between two accounts' VPCs"

    # Spoofing: B claims A's address and tries C (which admits the default group, so A).
    spoof = ssh(key, ip_b, f"sudo ip addr add {ip_a}/32 dev eth0 && "
                           f"curl -s -m 2 --interface {ip_a} http://{ip_c}:8080/id; "
                           f"sudo ip addr del {ip_a}/32 dev eth0", check=False)
    assert spoof.stdout.strip() == "", "a foreign source address is dropped"
    assert reach(ip_b, ip_c), "B itself still reaches C"

    _terminate(ec2, [a["InstanceId"], b["InstanceId"], c["InstanceId"]])
    _terminate(ec2b, [d["InstanceId"]])
    ec2.delete_security_group(GroupId=other)


def test_icmp_and_other_protocol_rules_open_no_tcp_port(cloud, tmp_path):
    """A rule for ICMP, ICMPv6 or another protocol number admits that protocol only: none of them
    opens a TCP port on a running instance (a protocol the host layer did not know once became
    "every protocol"). The TCP rule at the end shows the port was reachable had a rule opened it."""
    ec2 = cloud.client()
    key = _key(ec2, tmp_path, "protos")
    gid = ec2.create_security_group(GroupName="protos", Description="protocols")["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=gid, IpProtocol="tcp", FromPort=22, ToPort=22,
                                         CidrIp="0.0.0.0/0")
    (a,) = _launch(cloud, ec2, "protos", SecurityGroupIds=[gid])
    ip = a["PrivateIpAddress"]
    wait_ssh(key, ip)
    ssh(key, ip, WEB.format(port=8080))
    anywhere = [{"CidrIp": "0.0.0.0/0"}]
    ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[
        {"IpProtocol": "icmp", "FromPort": -1, "ToPort": -1, "IpRanges": anywhere},
        {"IpProtocol": "icmpv6", "FromPort": -1, "ToPort": -1, "IpRanges": anywhere},
        {"IpProtocol": "47", "IpRanges": anywhere},
        {"IpProtocol": "17", "FromPort": 0, "ToPort": 65535, "IpRanges": anywhere}])
    ping = lambda: subprocess.run(["ping", "-c", "1", "-W", "1", ip], capture_output=True).returncode == 0
    assert wait_for(ping, 5, "the icmp rule to admit ping")
    time.sleep(0.5)
    assert _who(ip) is None, "an icmp, icmpv6, protocol-47 or udp rule opened TCP 8080"
    ec2.authorize_security_group_ingress(GroupId=gid, IpProtocol="tcp", FromPort=8080, ToPort=8080,
                                         CidrIp="0.0.0.0/0")
    assert wait_for(lambda: _who(ip), 5, "the tcp rule to open 8080")
    _terminate(ec2, [a["InstanceId"]])
    ec2.delete_security_group(GroupId=gid)
