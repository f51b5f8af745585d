"""Cost Explorer's bounds through boto3's `ce` client, as AWS documents them: HOURLY reaches
back 14 days, DAILY 14 months; results past a page come with a NextPageToken that fetches the
rest; a request the server will not compute answers at once, and another account's requests
are not held up meanwhile. API-only (no instances)."""

import concurrent.futures
import datetime
import time

import botocore.exceptions
import pytest


def today():
    return datetime.datetime.now(datetime.timezone.utc).date()


def next_month_start():
    t = today().replace(day=1)
    return (t + datetime.timedelta(days=32)).replace(day=1)


def months_back(n):
    """The first day of the month `n` months before this one."""
    t = today().replace(day=1)
    y, m = divmod(t.year * 12 + t.month - 1 - n, 12)
    return datetime.date(y, m + 1, 1)


def code(e):
    return e.value.response["Error"]["Code"], e.value.response["Error"]["Message"]


def test_hourly_reaches_back_14_days(server):
    ce = server.client(service="ce")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ce.get_cost_and_usage(
            TimePeriod={"Start": (today() - datetime.timedelta(days=15)).isoformat(),
                        "End": today().isoformat()},
            Granularity="HOURLY", Metrics=["UnblendedCost"])
    c, message = code(e)
    assert c == "ValidationException" and "14 days" in message, (c, message)
    # Years of hours (what once took gigabytes) are refused just the same.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ce.get_cost_and_usage(TimePeriod={"Start": "2000-01-01", "End": next_month_start().isoformat()},
                              Granularity="HOURLY", Metrics=["UnblendedCost"])
    assert code(e)[0] == "ValidationException"
    # 14 days is allowed: one result per hour.
    start = today() - datetime.timedelta(days=14)
    r = ce.get_cost_and_usage(TimePeriod={"Start": start.isoformat(), "End": today().isoformat()},
                              Granularity="HOURLY", Metrics=["UnblendedCost"])
    assert len(r["ResultsByTime"]) == 14 * 24
    assert r["ResultsByTime"][0]["TimePeriod"]["Start"] == f"{start.isoformat()}T00:00:00Z"
    assert "NextPageToken" not in r
    # DAILY reaches back 14 months (this one and the 13 before it).
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ce.get_cost_and_usage(TimePeriod={"Start": months_back(14).isoformat(), "End": today().isoformat()},
                              Granularity="DAILY", Metrics=["UnblendedCost"])
    assert code(e)[0] == "ValidationException"


def test_daily_over_14_months_comes_in_pages(server):
    ce = server.client(service="ce")
    start, end = months_back(13), next_month_start()
    request = dict(TimePeriod={"Start": start.isoformat(), "End": end.isoformat()}, Granularity="DAILY",
                   Metrics=["UnblendedCost", "UsageQuantity"])
    first = ce.get_cost_and_usage(**request)
    assert len(first["ResultsByTime"]) == 366 and first.get("NextPageToken"), len(first["ResultsByTime"])
    days = list(first["ResultsByTime"])
    token = first["NextPageToken"]
    while token:
        r = ce.get_cost_and_usage(**request, NextPageToken=token)
        days += r["ResultsByTime"]
        token = r.get("NextPageToken")
    starts = [d["TimePeriod"]["Start"] for d in days]
    assert len(starts) == (end - start).days and len(set(starts)) == len(starts)
    assert starts[0] == start.isoformat() and days[-1]["TimePeriod"]["End"] == end.isoformat()
    assert starts == sorted(starts)
    # A token belongs to its request.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ce.get_cost_and_usage(**{**request, "Metrics": ["UnblendedCost"]}, NextPageToken=first["NextPageToken"])
    assert code(e)[0] == "RequestChangedException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ce.get_cost_and_usage(**request, NextPageToken="not-a-token")
    assert code(e)[0] == "InvalidNextTokenException"


def test_cost_explorer_does_not_hold_up_other_accounts(server):
    """16 parallel requests of the kind that once took 3.9 GB and stalled the server for
    16 s: each is refused at once, and another account's DescribeRegions stays prompt."""
    ce = server.client(service="ce")
    _, keys = server.new_account("ce-bystander")
    other = server.client(keys)
    other.describe_regions()

    def heavy():
        try:
            ce.get_cost_and_usage(TimePeriod={"Start": "2000-01-01", "End": next_month_start().isoformat()},
                                  Granularity="HOURLY", Metrics=["UnblendedCost", "UsageQuantity"],
                                  GroupBy=[{"Type": "DIMENSION", "Key": "SERVICE"}])
            return "ok"
        except botocore.exceptions.ClientError as e:
            return e.response["Error"]["Code"]

    latencies = []
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        futures = [pool.submit(heavy) for _ in range(16)]
        while not all(f.done() for f in futures):
            t0 = time.monotonic()
            other.describe_regions()
            latencies.append(time.monotonic() - t0)
        answers = [f.result() for f in futures]
    assert set(answers) == {"ValidationException"}, answers
    assert max(latencies) < 1.0, latencies
    with open(f"/proc/{server.proc.pid}/status") as f:
        hwm = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    assert hwm < 300 * 1024, f"peak RSS {hwm} KiB"
