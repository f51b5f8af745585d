"""Regenerate the botocore fixtures next to this script:

* ec2-describe-key-pairs.http: an EC2 POST exactly as botocore signs it;
* ec2-presigned.url: an EC2 presigned URL from botocore's generate_presigned_url.

Run once by hand (`python3 generate.py`); the Rust tests only read the output,
they never run Python. The clock is frozen and the
example credentials from AWS's documentation are used, so the output is stable
apart from the User-Agent and invocation-id headers, which are not signed or
are signed as sent.
"""

import datetime

import botocore.auth
import botocore.session
from botocore.awsrequest import AWSResponse

FROZEN = datetime.datetime(2024, 5, 17, 9, 30, 12)


def frozen_now(remove_tzinfo=True):
    if remove_tzinfo:
        return FROZEN
    return FROZEN.replace(tzinfo=datetime.timezone.utc)


botocore.auth.get_current_datetime = frozen_now

captured = {}


def capture(request, **_kwargs):
    captured["request"] = request
    body = (
        b'<?xml version="1.0" encoding="UTF-8"?>'
        b'<DescribeKeyPairsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">'
        b"<requestId>00000000-0000-0000-0000-000000000000</requestId><keySet/>"
        b"</DescribeKeyPairsResponse>"
    )

    class Raw:
        def stream(self, **_kw):
            yield body

    return AWSResponse(request.url, 200, {}, Raw())


session = botocore.session.get_session()
client = session.create_client(
    "ec2",
    region_name="us-east-1",
    aws_access_key_id="AKIDEXAMPLE",
    aws_secret_access_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
)
client.meta.events.register("before-send.ec2.DescribeKeyPairs", capture)
client.describe_key_pairs()

req = captured["request"]
url = req.url
assert url.startswith("https://ec2.us-east-1.amazonaws.com")
path = url[len("https://ec2.us-east-1.amazonaws.com"):] or "/"
body = req.body if isinstance(req.body, bytes) else req.body.encode()
lines = [f"{req.method} {path} HTTP/1.1", "Host:ec2.us-east-1.amazonaws.com"]
for name, value in req.headers.items():
    if isinstance(value, bytes):
        value = value.decode()
    lines.append(f"{name}:{value}")
with open("ec2-describe-key-pairs.http", "w") as f:
    f.write("\n".join(lines) + "\n\n" + body.decode())

url = client.generate_presigned_url(
    "describe_key_pairs",
    Params={"KeyNames": ["my key+name/ü"], "DryRun": False},
    ExpiresIn=600,
)
with open("ec2-presigned.url", "w") as f:
    f.write(url + "\n")
