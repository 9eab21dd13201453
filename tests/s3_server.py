"""An S3-compatible server on a loopback port for the share's tests: moto's `moto_server` (PyPI `moto[server]`, a
dev dependency) in a process of its own, with authentication on: every request is checked against an access key of
its IAM, so wrong credentials are refused as a real bucket refuses them. The first requests (creating the user, its
policy and key) are allowed without a key, as moto's INITIAL_NO_AUTH_ACTION_COUNT allows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from conftest import free_port, stop

SETUP_REQUESTS = 4  # create_user, put_user_policy, create_access_key, create_bucket
def least_privilege(bucket: str) -> dict:
    """docs/operations.md's policy for the machines' user: list the bucket, get and put its objects, nothing else.
    moto names three requests otherwise than AWS, so its names are allowed too (in AWS they would allow nothing
    more): a listing and a bucket's HEAD are s3:ListObjectsV2 and s3:HeadBucket (AWS: s3:ListBucket), an object's
    HEAD is s3:HeadObject (AWS: s3:GetObject)."""
    return {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:ListBucket", "s3:ListObjectsV2", "s3:HeadBucket"],
         "Resource": f"arn:aws:s3:::{bucket}"},
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:HeadObject"],
         "Resource": f"arn:aws:s3:::{bucket}/*"}]}


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    bucket: str
    key_id: str
    secret: str

    def env(self, prefix: str = "team") -> dict[str, str]:
        """The share's settings for an importer run."""
        return {"CCUSAGE_SHARE": f"s3://{self.bucket}/{prefix}", "CCUSAGE_S3_ENDPOINT": self.endpoint,
                "AWS_ACCESS_KEY_ID": self.key_id, "AWS_SECRET_ACCESS_KEY": self.secret, "AWS_REGION": "us-east-1"}


@contextmanager
def s3_server(bucket: str = "ccusage-share") -> Iterator[S3Server]:
    """moto_server on 127.0.0.1 with a bucket and a user allowed to use it; RuntimeError if it cannot start."""
    try:
        import boto3
    except ImportError as exc:
        raise RuntimeError(f"moto[server] is not installed ({exc.name}): uv sync installs the dev dependencies") \
            from None
    port = free_port()
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": str(SETUP_REQUESTS)}
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    with subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) as process:
        try:
            endpoint = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while True:
                try:
                    urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).close()
                    break
                except OSError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        said = process.stderr.read().decode(errors="replace").strip().splitlines() if \
                            process.stderr and process.poll() is not None else []
                        raise RuntimeError(f"moto_server did not start on port {port}: "
                                           f"{said[-1] if said else 'no answer within 30 s'}") from None
                    time.sleep(0.1)
            setup = {"endpoint_url": endpoint, "region_name": "us-east-1", "aws_access_key_id": "setup",
                     "aws_secret_access_key": "setup"}
            iam = boto3.client("iam", **setup)
            iam.create_user(UserName="importer")
            iam.put_user_policy(UserName="importer", PolicyName="share",
                                PolicyDocument=json.dumps(least_privilege(bucket)))
            key = iam.create_access_key(UserName="importer")["AccessKey"]
            boto3.client("s3", **setup).create_bucket(Bucket=bucket)  # the last request allowed without a key
            yield S3Server(endpoint, bucket, key["AccessKeyId"], key["SecretAccessKey"])
        finally:
            stop(process, 10)
