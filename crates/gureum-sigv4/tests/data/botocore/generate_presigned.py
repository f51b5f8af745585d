"""Regenerate the presigned-URL fixtures next to this script (run once by hand,
`python3 generate_presigned.py`; the Rust tests only read the output):

* ec2-presigned-describe-instances.url: `generate_presigned_url("describe_instances", …)`
  as boto3 makes it by default: signed for POST (the operation's method), the
  parameters moved into the query, the SHA-256 of the empty body as payload hash;
* ec2-presigned-get.url: the same with `HttpMethod="GET"`;
* ec2-presigned-unsigned.url: a GET signed the way S3-style presigners sign every
  URL, with the literal `UNSIGNED-PAYLOAD` as payload hash and nothing declaring it
  (botocore's S3SigV4QueryAuth pointed at service `ec2`);
* ec2-presigned-unsigned-declared.url: the same, declaring
  `X-Amz-Content-Sha256=UNSIGNED-PAYLOAD` in the (signed) query string.

Clock frozen at 2024-05-17T09:30:12Z, AWS's example credentials, region us-east-1.
"""

import datetime

import botocore.auth
import botocore.credentials
import botocore.session
from botocore.awsrequest import AWSRequest

FROZEN = datetime.datetime(2024, 5, 17, 9, 30, 12)


def frozen_now(remove_tzinfo=True):
    if remove_tzinfo:
        return FROZEN
    return FROZEN.replace(tzinfo=datetime.timezone.utc)


botocore.auth.get_current_datetime = frozen_now

AK = "AKIDEXAMPLE"
SK = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
ENDPOINT = "https://ec2.us-east-1.amazonaws.com"

client = botocore.session.get_session().create_client(
    "ec2", region_name="us-east-1", aws_access_key_id=AK, aws_secret_access_key=SK
)
params = {
    "InstanceIds": ["i-0123456789abcdef0"],
    "Filters": [{"Name": "tag:Name", "Values": ["web server*"]}],
}


def write(name, url):
    with open(name, "w") as f:
        f.write(url + "\n")


write(
    "ec2-presigned-describe-instances.url",
    client.generate_presigned_url("describe_instances", Params=params, ExpiresIn=300),
)
write(
    "ec2-presigned-get.url",
    client.generate_presigned_url(
        "describe_instances", Params=params, ExpiresIn=300, HttpMethod="GET"
    ),
)


def unsigned(extra=""):
    creds = botocore.credentials.Credentials(AK, SK)
    req = AWSRequest(
        method="GET",
        url=f"{ENDPOINT}/?Action=DescribeRegions&Version=2016-11-15{extra}",
    )
    botocore.auth.S3SigV4QueryAuth(creds, "ec2", "us-east-1", expires=300).add_auth(req)
    return req.prepare().url


write("ec2-presigned-unsigned.url", unsigned())
write(
    "ec2-presigned-unsigned-declared.url",
    unsigned("&X-Amz-Content-Sha256=UNSIGNED-PAYLOAD"),
)
