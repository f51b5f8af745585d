"""VPCs, subnets, internet gateways and route tables through boto3 and the AWS CLI: the
Terraform-style flow (VPC -> subnet -> gateway -> route table -> route -> association), AWS's
errors along the way, teardown in dependency order, and the default VPC's gateway and main
route table. No instances are launched here."""

import json

import botocore.exceptions
import pytest


def code_of(e):
    return e.value.response["Error"]["Code"]


def raises(code, fn, *args, **kwargs):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        fn(*args, **kwargs)
    assert code_of(e) == code, e.value.response["Error"]
    return e.value.response["Error"]["Message"]


def tags(kind, name):
    return [{"ResourceType": kind, "Tags": [{"Key": "Name", "Value": name}]}]


def test_default_vpc_has_gateway_and_main_route_table(ec2):
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]
    gws = ec2.describe_internet_gateways(
        Filters=[{"Name": "attachment.vpc-id", "Values": [vpc["VpcId"]]}])["InternetGateways"]
    assert len(gws) == 1
    assert gws[0]["Attachments"] == [{"State": "available", "VpcId": vpc["VpcId"]}]
    tables = ec2.describe_route_tables(Filters=[
        {"Name": "vpc-id", "Values": [vpc["VpcId"]]},
        {"Name": "association.main", "Values": ["true"]}])["RouteTables"]
    assert len(tables) == 1
    t = tables[0]
    assert t["Associations"][0]["Main"] is True
    assert t["Associations"][0]["RouteTableAssociationId"].startswith("rtbassoc-")
    assert t["Associations"][0]["AssociationState"] == {"State": "associated"}
    routes = {r["DestinationCidrBlock"]: r for r in t["Routes"]}
    assert routes["172.31.0.0/16"]["GatewayId"] == "local"
    assert routes["172.31.0.0/16"]["Origin"] == "CreateRouteTable"
    assert routes["0.0.0.0/0"]["GatewayId"] == gws[0]["InternetGatewayId"]
    assert routes["0.0.0.0/0"]["State"] == "active"
    assert routes["0.0.0.0/0"]["Origin"] == "CreateRoute"
    # The default VPC stays (documented deviation).
    raises("OperationNotPermitted", ec2.delete_vpc, VpcId=vpc["VpcId"])


def test_terraform_style_flow(server):
    ec2 = server.client()
    # VPC, with its main route table and default security group.
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16", TagSpecifications=tags("vpc", "app"))["Vpc"]
    vpc_id = vpc["VpcId"]
    assert vpc_id.startswith("vpc-") and vpc["CidrBlock"] == "10.20.0.0/16"
    assert vpc["IsDefault"] is False and vpc["InstanceTenancy"] == "default"
    assert vpc["Tags"] == [{"Key": "Name", "Value": "app"}]
    ec2.get_waiter("vpc_available").wait(VpcIds=[vpc_id])
    ec2.modify_vpc_attribute(VpcId=vpc_id, EnableDnsHostnames={"Value": True})
    attr = ec2.describe_vpc_attribute(VpcId=vpc_id, Attribute="enableDnsHostnames")
    assert attr["VpcId"] == vpc_id and attr["EnableDnsHostnames"] == {"Value": True}
    assert ec2.describe_vpc_attribute(VpcId=vpc_id, Attribute="enableDnsSupport")["EnableDnsSupport"] == {"Value": True}
    groups = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["SecurityGroups"]
    assert [g["GroupName"] for g in groups] == ["default"]
    main = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["RouteTables"]
    assert len(main) == 1 and main[0]["Associations"][0]["Main"] is True
    assert main[0]["Routes"] == [{"DestinationCidrBlock": "10.20.0.0/16", "GatewayId": "local",
                                  "Origin": "CreateRouteTable", "State": "active"}]
    raises("InvalidVpc.Range", ec2.create_vpc, CidrBlock="10.0.0.0/8")

    # Subnets.
    subnet = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.20.1.0/24", AvailabilityZone="us-east-1b",
                               TagSpecifications=tags("subnet", "public"))["Subnet"]
    subnet_id = subnet["SubnetId"]
    assert subnet["MapPublicIpOnLaunch"] is False and subnet["DefaultForAz"] is False
    assert subnet["AvailabilityZone"] == "us-east-1b" and subnet["AvailableIpAddressCount"] == 251
    ec2.get_waiter("subnet_available").wait(SubnetIds=[subnet_id])
    private = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.20.2.0/24")["Subnet"]["SubnetId"]
    raises("InvalidSubnet.Conflict", ec2.create_subnet, VpcId=vpc_id, CidrBlock="10.20.1.0/25")
    raises("InvalidSubnet.Range", ec2.create_subnet, VpcId=vpc_id, CidrBlock="10.21.0.0/24")
    raises("InvalidVpcID.NotFound", ec2.create_subnet, VpcId="vpc-0123456789abcdef0", CidrBlock="10.20.3.0/24")
    ec2.modify_subnet_attribute(SubnetId=subnet_id, MapPublicIpOnLaunch={"Value": True})
    found = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]},
                                          {"Name": "map-public-ip-on-launch", "Values": ["true"]}])["Subnets"]
    assert [s["SubnetId"] for s in found] == [subnet_id]

    # Internet gateway.
    igw = ec2.create_internet_gateway(TagSpecifications=tags("internet-gateway", "app-igw"))["InternetGateway"]
    igw_id = igw["InternetGatewayId"]
    assert igw_id.startswith("igw-") and igw["Attachments"] == []
    ec2.attach_internet_gateway(InternetGatewayId=igw_id, VpcId=vpc_id)
    raises("Resource.AlreadyAssociated", ec2.attach_internet_gateway, InternetGatewayId=igw_id, VpcId=vpc_id)
    got = ec2.describe_internet_gateways(InternetGatewayIds=[igw_id])["InternetGateways"][0]
    assert got["Attachments"] == [{"State": "available", "VpcId": vpc_id}]
    assert got["Tags"] == [{"Key": "Name", "Value": "app-igw"}]
    raises("InvalidInternetGatewayID.NotFound", ec2.describe_internet_gateways,
           InternetGatewayIds=["igw-0123456789abcdef0"])

    # Route table, default route, association.
    rtb = ec2.create_route_table(VpcId=vpc_id, TagSpecifications=tags("route-table", "public"))["RouteTable"]
    rtb_id = rtb["RouteTableId"]
    assert rtb["Associations"] == [] and rtb["Routes"][0]["GatewayId"] == "local"
    raises("InvalidParameterValue", ec2.create_route, RouteTableId=rtb_id,
           DestinationCidrBlock="10.20.9.0/24", GatewayId=igw_id)
    assert ec2.create_route(RouteTableId=rtb_id, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw_id)["Return"]
    raises("RouteAlreadyExists", ec2.create_route, RouteTableId=rtb_id, DestinationCidrBlock="0.0.0.0/0",
           GatewayId=igw_id)
    raises("InvalidGatewayID.NotFound", ec2.create_route, RouteTableId=rtb_id,
           DestinationCidrBlock="192.168.0.0/16", GatewayId="igw-0123456789abcdef0")
    raises("UnsupportedOperation", ec2.create_route, RouteTableId=rtb_id,
           DestinationCidrBlock="192.168.0.0/16", NatGatewayId="nat-0123456789abcdef0")
    default_igw = ec2.describe_internet_gateways(Filters=[{"Name": "attachment.vpc-id", "Values": [
        ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]]}]
    )["InternetGateways"][0]["InternetGatewayId"]
    msg = raises("InvalidParameterValue", ec2.create_route, RouteTableId=rtb_id,
                 DestinationCidrBlock="192.168.0.0/16", GatewayId=default_igw)
    assert "belong to different networks" in msg
    ec2.replace_route(RouteTableId=rtb_id, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw_id)
    assoc = ec2.associate_route_table(RouteTableId=rtb_id, SubnetId=subnet_id)
    assert assoc["AssociationId"].startswith("rtbassoc-")
    assert assoc["AssociationState"] == {"State": "associated"}
    raises("Resource.AlreadyAssociated", ec2.associate_route_table, RouteTableId=rtb_id, SubnetId=subnet_id)

    # Describe everything with filters.
    assert [t["RouteTableId"] for t in ec2.describe_route_tables(Filters=[
        {"Name": "association.subnet-id", "Values": [subnet_id]}])["RouteTables"]] == [rtb_id]
    assert [t["RouteTableId"] for t in ec2.describe_route_tables(Filters=[
        {"Name": "route.gateway-id", "Values": [igw_id]}])["RouteTables"]] == [rtb_id]
    assert [t["RouteTableId"] for t in ec2.describe_route_tables(Filters=[
        {"Name": "association.route-table-association-id", "Values": [assoc["AssociationId"]]}])["RouteTables"]] == [rtb_id]
    assert [t["RouteTableId"] for t in ec2.describe_route_tables(Filters=[
        {"Name": "tag:Name", "Values": ["public"]}])["RouteTables"]] == [rtb_id]
    got = ec2.describe_route_tables(RouteTableIds=[rtb_id])["RouteTables"][0]
    assert got["Associations"] == [{"Main": False, "RouteTableAssociationId": assoc["AssociationId"],
                                    "RouteTableId": rtb_id, "SubnetId": subnet_id,
                                    "AssociationState": {"State": "associated"}}]
    assert {r["DestinationCidrBlock"]: r["State"] for r in got["Routes"]} == {
        "10.20.0.0/16": "active", "0.0.0.0/0": "active"}
    raises("InvalidRouteTableId.Malformed", ec2.describe_route_tables, RouteTableIds=["rtb-nope"])
    raises("InvalidRouteTableID.NotFound", ec2.describe_route_tables, RouteTableIds=["rtb-0123456789abcdef0"])
    assert [v["VpcId"] for v in ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": ["app"]}])["Vpcs"]] == [vpc_id]
    # Another account sees none of it.
    _, keys = server.new_account("vpc-other")
    other = server.client(keys)
    raises("InvalidVpcID.NotFound", other.describe_vpcs, VpcIds=[vpc_id])
    raises("InvalidRouteTableID.NotFound", other.describe_route_tables, RouteTableIds=[rtb_id])
    raises("InvalidInternetGatewayID.NotFound", other.delete_internet_gateway, InternetGatewayId=igw_id)

    # Teardown in order, with the dependency checks along the way.
    raises("DependencyViolation", ec2.delete_vpc, VpcId=vpc_id)
    raises("DependencyViolation", ec2.delete_route_table, RouteTableId=rtb_id)
    raises("DependencyViolation", ec2.delete_internet_gateway, InternetGatewayId=igw_id)
    raises("DependencyViolation", ec2.delete_route_table, RouteTableId=main[0]["RouteTableId"])
    ec2.disassociate_route_table(AssociationId=assoc["AssociationId"])
    raises("InvalidAssociationID.NotFound", ec2.disassociate_route_table, AssociationId=assoc["AssociationId"])
    ec2.delete_route(RouteTableId=rtb_id, DestinationCidrBlock="0.0.0.0/0")
    raises("InvalidRoute.NotFound", ec2.delete_route, RouteTableId=rtb_id, DestinationCidrBlock="0.0.0.0/0")
    ec2.delete_route_table(RouteTableId=rtb_id)
    ec2.detach_internet_gateway(InternetGatewayId=igw_id, VpcId=vpc_id)
    raises("Gateway.NotAttached", ec2.detach_internet_gateway, InternetGatewayId=igw_id, VpcId=vpc_id)
    ec2.delete_internet_gateway(InternetGatewayId=igw_id)
    ec2.delete_subnet(SubnetId=subnet_id)
    raises("DependencyViolation", ec2.delete_vpc, VpcId=vpc_id)
    ec2.delete_subnet(SubnetId=private)
    ec2.delete_vpc(VpcId=vpc_id)
    raises("InvalidVpcID.NotFound", ec2.describe_vpcs, VpcIds=[vpc_id])
    assert ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["RouteTables"] == []
    assert ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["SecurityGroups"] == []


def test_main_table_replacement(ec2):
    vpc_id = ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    try:
        main = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["RouteTables"][0]
        main_assoc = main["Associations"][0]["RouteTableAssociationId"]
        raises("InvalidParameterValue", ec2.disassociate_route_table, AssociationId=main_assoc)
        rtb_id = ec2.create_route_table(VpcId=vpc_id)["RouteTable"]["RouteTableId"]
        new = ec2.replace_route_table_association(AssociationId=main_assoc, RouteTableId=rtb_id)
        assert new["NewAssociationId"] != main_assoc and new["AssociationState"] == {"State": "associated"}
        mains = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id]},
                                                   {"Name": "association.main", "Values": ["true"]}])["RouteTables"]
        assert [t["RouteTableId"] for t in mains] == [rtb_id]
        ec2.delete_route_table(RouteTableId=main["RouteTableId"])
    finally:
        ec2.delete_vpc(VpcId=vpc_id)


def test_cli(server):
    out = server.aws("ec2", "create-vpc", "--cidr-block", "10.40.0.0/16",
                     "--tag-specifications", "ResourceType=vpc,Tags=[{Key=Name,Value=cli}]")
    vpc_id = json.loads(out.stdout)["Vpc"]["VpcId"]
    server.aws("ec2", "modify-vpc-attribute", "--vpc-id", vpc_id, "--enable-dns-hostnames")
    attr = json.loads(server.aws("ec2", "describe-vpc-attribute", "--vpc-id", vpc_id,
                                 "--attribute", "enableDnsHostnames").stdout)
    assert attr["EnableDnsHostnames"] == {"Value": True}
    igw = server.aws("ec2", "create-internet-gateway", "--query", "InternetGateway.InternetGatewayId",
                     "--output", "text").stdout.strip()
    server.aws("ec2", "attach-internet-gateway", "--internet-gateway-id", igw, "--vpc-id", vpc_id)
    rows = server.aws("ec2", "describe-internet-gateways", "--filters", f"Name=attachment.vpc-id,Values={vpc_id}",
                      "--query", "InternetGateways[].Attachments[].State", "--output", "text").stdout.split()
    assert rows == ["available"]
    err = server.aws("ec2", "delete-vpc", "--vpc-id", vpc_id, check=False)
    assert err.returncode != 0 and "DependencyViolation" in err.stderr
    server.aws("ec2", "detach-internet-gateway", "--internet-gateway-id", igw, "--vpc-id", vpc_id)
    server.aws("ec2", "delete-internet-gateway", "--internet-gateway-id", igw)
    server.aws("ec2", "delete-vpc", "--vpc-id", vpc_id)
