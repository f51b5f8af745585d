"""Metering and billing for real: an instance runs for about twenty seconds and stops; Cost
Explorer (`aws ce`, boto3) and `gureum bill` then show what the price list implies. Also:
Cost Explorer's validation errors, another account seeing none of it, and a kill -9 of the
server during a state change losing and duplicating nothing. Needs root, runc and network
namespaces; skipped (and reported) otherwise."""

import calendar
import datetime
import json
import os
import signal
import time

import boto3
import botocore.exceptions
import pytest

from conftest import REGION
from test_instances import cloud, why  # noqa: F401 (fixture)

pytestmark = pytest.mark.skipif(why is not None, reason=f"instances need root, runc and netns: {why}")

M5_LARGE_HOUR = 0.096


def month_period():
    today = datetime.datetime.now(datetime.timezone.utc).date()
    start = today.replace(day=1)
    end = (start + datetime.timedelta(days=32)).replace(day=1)
    return start.isoformat(), end.isoformat()


def ce_client(server, keys=None):
    return server.client(keys, service="ce")


def by_service(ce):
    start, end = month_period()
    r = ce.get_cost_and_usage(TimePeriod={"Start": start, "End": end}, Granularity="MONTHLY",
                              Metrics=["UnblendedCost", "UsageQuantity"],
                              GroupBy=[{"Type": "DIMENSION", "Key": "SERVICE"}])
    return {g["Keys"][0]: float(g["Metrics"]["UnblendedCost"]["Amount"])
            for g in r["ResultsByTime"][0]["Groups"]}


def test_twenty_seconds_of_m5_large(cloud):
    ec2 = cloud.client()
    ce = ce_client(cloud)
    before = by_service(ce)
    r = ec2.run_instances(ImageId=cloud.image["ImageId"], InstanceType="m5.large", MinCount=1, MaxCount=1)
    iid = r["Instances"][0]["InstanceId"]
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig={"Delay": 0.2, "MaxAttempts": 300})
    t0 = time.time()
    time.sleep(20)
    ec2.stop_instances(InstanceIds=[iid])
    ran = time.time() - t0
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[iid], WaiterConfig={"Delay": 0.5, "MaxAttempts": 120})

    after = by_service(ce)
    compute = after.get("Amazon Elastic Compute Cloud - Compute", 0) - \
        before.get("Amazon Elastic Compute Cloud - Compute", 0)
    # Per second, with EC2's 60-second minimum per start.
    expected = M5_LARGE_HOUR * max(60, ran) / 3600
    assert abs(compute - expected) < 0.0005, (compute, expected, after)
    # A stopped instance accrues storage only: compute stays put while storage grows.
    time.sleep(2)
    later = by_service(ce)
    assert later["Amazon Elastic Compute Cloud - Compute"] == after["Amazon Elastic Compute Cloud - Compute"]

    # The AWS CLI agrees, and so does `gureum bill`.
    start, end = month_period()
    out = cloud.aws("ce", "get-cost-and-usage", "--time-period", f"Start={start},End={end}",
                    "--granularity", "MONTHLY", "--metrics", "UnblendedCost").stdout
    total = float(json.loads(out)["ResultsByTime"][0]["Total"]["UnblendedCost"]["Amount"])
    bill = cloud.gureum("bill", "--account", "admin").stdout
    print(bill)
    assert "m5.large" in bill and "BoxUsage:m5.large" in bill, bill
    billed_total = float([l for l in bill.splitlines() if l.lower().startswith("total")][0].split()[-1].lstrip("$"))
    assert abs(billed_total - total) < 0.01, (bill, total)

    # Storage: 8 GiB gp3 for the seconds the volume existed, pro-rated over the month (in GB-months),
    # free within the free tier's 30 GB-months, as is the public IPv4 address's time.
    now = datetime.datetime.now(datetime.timezone.utc)
    month_secs = calendar.monthrange(now.year, now.month)[1] * 86400
    gb_months = usage_quantities(cloud)["EBS:VolumeUsage.gp3"]
    assert 0 < gb_months < 8 * 600 / month_secs, gb_months
    assert later.get("EC2 - Other", 0) == 0

    ec2.terminate_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[iid], WaiterConfig={"Delay": 0.5, "MaxAttempts": 120})


def test_cost_explorer_errors_and_isolation(cloud):
    ce = ce_client(cloud)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ce.get_cost_and_usage(TimePeriod={"Start": "2026-02-10", "End": "2026-02-01"}, Granularity="DAILY",
                              Metrics=["UnblendedCost"])
    assert e.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ce.get_cost_and_usage(TimePeriod={"Start": "2026-02-01", "End": "2026-02-10"}, Granularity="WEEKLY",
                              Metrics=["UnblendedCost"])
    assert e.value.response["Error"]["Code"] == "ValidationException"
    bad = boto3.client("ce", endpoint_url=cloud.endpoint, region_name=REGION,
                       aws_access_key_id="AKIAIOSFODNN7EXAMPLE", aws_secret_access_key="x" * 40)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        bad.get_dimension_values(TimePeriod={"Start": "2026-02-01", "End": "2026-02-10"}, Dimension="SERVICE")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    # Another account sees no cost at all.
    _, keys = cloud.new_account("billing-other")
    assert all(v == 0 for v in by_service(ce_client(cloud, keys)).values())


def usage_quantities(cloud):
    start, end = month_period()
    r = ce_client(cloud).get_cost_and_usage(
        TimePeriod={"Start": start, "End": end}, Granularity="MONTHLY", Metrics=["UsageQuantity"],
        GroupBy=[{"Type": "DIMENSION", "Key": "USAGE_TYPE"}])
    return {g["Keys"][0]: float(g["Metrics"]["UsageQuantity"]["Amount"]) for g in r["ResultsByTime"][0]["Groups"]}


def test_kill_9_during_a_state_change_loses_and_duplicates_nothing(cloud):
    ec2 = cloud.client()
    r = ec2.run_instances(ImageId=cloud.image["ImageId"], InstanceType="c5.large", MinCount=1, MaxCount=1)
    iid = r["Instances"][0]["InstanceId"]
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig={"Delay": 0.2, "MaxAttempts": 300})
    time.sleep(5)
    ec2.stop_instances(InstanceIds=[iid])
    # Killed right after the call, while the agent is stopping the guest.
    cloud.proc.send_signal(signal.SIGKILL)
    cloud.proc.wait()
    cloud.start()
    ec2 = cloud.client()
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[iid], WaiterConfig={"Delay": 0.5, "MaxAttempts": 120})
    hours = usage_quantities(cloud).get("BoxUsage:c5.large", 0)
    # One start, billed its 60-second minimum (it ran about 5 s): exactly 1/60 hour, not twice.
    assert abs(hours - 60 / 3600) < 1e-6, hours
    ec2.terminate_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[iid], WaiterConfig={"Delay": 0.5, "MaxAttempts": 120})


def test_ebs_volumes_and_snapshots_in_cost_explorer(cloud):
    """API only: an io1 volume deleted within seconds (billed EBS's 60-second minimum), a gp3
    volume with IOPS and throughput beyond what gp3 includes, a snapshot of it; Cost Explorer
    by service and usage type, and `gureum bill`, show them under AWS's names."""
    ec2 = cloud.client()
    az = ec2.describe_availability_zones()["AvailabilityZones"][0]["ZoneName"]
    waiter = {"Delay": 0.5, "MaxAttempts": 120}
    created = time.time()
    io1 = ec2.create_volume(AvailabilityZone=az, Size=100, VolumeType="io1", Iops=1000)["VolumeId"]
    gp3 = ec2.create_volume(AvailabilityZone=az, Size=10, VolumeType="gp3", Iops=4000,
                            Throughput=250)["VolumeId"]
    ec2.get_waiter("volume_available").wait(VolumeIds=[io1, gp3], WaiterConfig=waiter)
    ec2.delete_volume(VolumeId=io1)
    lived = time.time() - created
    snap = ec2.create_snapshot(VolumeId=gp3)["SnapshotId"]
    ec2.get_waiter("snapshot_completed").wait(SnapshotIds=[snap], WaiterConfig=waiter)
    time.sleep(2)

    start, end = month_period()
    r = ce_client(cloud).get_cost_and_usage(
        TimePeriod={"Start": start, "End": end}, Granularity="MONTHLY",
        Metrics=["UnblendedCost", "UsageQuantity"],
        GroupBy=[{"Type": "DIMENSION", "Key": "SERVICE"}, {"Type": "DIMENSION", "Key": "USAGE_TYPE"}])
    groups = {tuple(g["Keys"]): (float(g["Metrics"]["UnblendedCost"]["Amount"]),
                                 float(g["Metrics"]["UsageQuantity"]["Amount"]),
                                 g["Metrics"]["UsageQuantity"]["Unit"])
              for g in r["ResultsByTime"][0]["Groups"]}
    ebs = {k[1]: v for k, v in groups.items() if k[1].startswith("EBS:")}
    assert all(k[0] == "EC2 - Other" for k in groups if k[1].startswith("EBS:")), groups
    now = datetime.datetime.now(datetime.timezone.utc)
    month_secs = calendar.monthrange(now.year, now.month)[1] * 86400
    # io1: $0.125 per GB-month and $0.065 per IOPS-month, for at least a minute.
    billed = max(60, lived)
    for usage_type, monthly, unit in [("EBS:VolumeUsage.piops", 100 * 0.125, "GB-Mo"),
                                      ("EBS:VolumeP-IOPS.piops", 1000 * 0.065, "IOPS-Mo")]:
        cost, _, got_unit = ebs[usage_type]
        expected = monthly * billed / month_secs
        assert abs(cost - expected) < 0.1 * expected, (usage_type, cost, expected, lived)
        assert got_unit == unit
    # gp3 beyond 3,000 IOPS and 125 MiB/s is charged (the free tier does not cover it), still accruing.
    assert ebs["EBS:VolumeP-IOPS.gp3"][0] > 0 and ebs["EBS:VolumeP-IOPS.gp3"][2] == "IOPS-Mo", ebs
    assert ebs["EBS:VolumeP-Throughput.gp3"][0] > 0, ebs
    # gp3 storage and the snapshot are within the new account's free tier: usage, no cost.
    assert ebs["EBS:SnapshotUsage"][1] > 0 and ebs["EBS:SnapshotUsage"][0] == 0, ebs
    assert ebs["EBS:VolumeUsage.gp3"][0] == 0, ebs

    bill = cloud.gureum("bill", "--account", "admin").stdout
    for usage_type in ["EBS:VolumeUsage.piops", "EBS:VolumeP-IOPS.piops", "EBS:VolumeP-IOPS.gp3",
                       "EBS:VolumeP-Throughput.gp3", "EBS:SnapshotUsage"]:
        assert usage_type in bill, bill

    ec2.delete_snapshot(SnapshotId=snap)
    ec2.delete_volume(VolumeId=gp3)
