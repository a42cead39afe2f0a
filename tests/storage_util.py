"""Real object stores on loopback for the storage tests: a moto S3 server (IAM-checked credentials) and a
gcp-storage-emulator, each in its own process on a free port; uploading a model folder; and inference over
tritonclient's gRPC and HTTP clients."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from conftest import free_ports

START_TIMEOUT_S = 60.0
# requests moto serves before it checks credentials: the three IAM calls that make the test's own key
MOTO_UNCHECKED_REQUESTS = 3


def _wait_http(url: str, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not answer at {url}")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dataclass
class MotoS3:
    """A moto server that checks credentials (IAM), with a user allowed s3:* whose key is ``key``/``secret``."""

    proc: subprocess.Popen
    url: str
    key: str
    secret: str

    def client(self, key: str | None = None, secret: str | None = None):
        import boto3

        return boto3.client("s3", endpoint_url=self.url, region_name="us-east-1",
                            aws_access_key_id=key or self.key, aws_secret_access_key=secret or self.secret)

    def upload(self, folder: Path, bucket: str, prefix: str) -> None:
        s3 = self.client()
        for f in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
            s3.upload_file(str(f), bucket, f"{prefix}/{f.relative_to(folder).as_posix()}")

    def delete(self, bucket: str, prefix: str) -> None:
        s3 = self.client()
        for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix + "/").get("Contents", []):
            s3.delete_object(Bucket=bucket, Key=o["Key"])

    def stop(self) -> None:
        _stop(self.proc)


def start_moto(workdir: Path) -> MotoS3:
    import boto3

    (port,) = free_ports(1)
    env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT=str(MOTO_UNCHECKED_REQUESTS))
    log = open(workdir / "moto.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_http(f"{url}/moto-api/data.json", proc, "moto_server")
        iam = boto3.client("iam", endpoint_url=url, region_name="us-east-1",
                           aws_access_key_id="setup", aws_secret_access_key="setup")
        iam.create_user(UserName="ovfast")
        iam.put_user_policy(UserName="ovfast", PolicyName="s3", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
        k = iam.create_access_key(UserName="ovfast")["AccessKey"]
    except BaseException:
        _stop(proc)
        raise
    return MotoS3(proc, url, k["AccessKeyId"], k["SecretAccessKey"])


@dataclass
class GcsEmulator:
    proc: subprocess.Popen
    url: str

    def upload(self, folder: Path, bucket: str, prefix: str) -> None:
        for f in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
            name = urllib.parse.quote(f"{prefix}/{f.relative_to(folder).as_posix()}", safe="")
            req = urllib.request.Request(f"{self.url}/upload/storage/v1/b/{bucket}/o?uploadType=media&name={name}",
                                         data=f.read_bytes(), method="POST",
                                         headers={"Content-Type": "application/octet-stream"})
            urllib.request.urlopen(req, timeout=30).read()

    def delete(self, bucket: str, prefix: str) -> None:
        with urllib.request.urlopen(f"{self.url}/storage/v1/b/{bucket}/o?prefix={prefix}/", timeout=30) as r:
            items = json.loads(r.read()).get("items", [])
        for o in items:
            name = urllib.parse.quote(o["name"], safe="")
            req = urllib.request.Request(f"{self.url}/storage/v1/b/{bucket}/o/{name}", method="DELETE")
            urllib.request.urlopen(req, timeout=30).read()

    def make_bucket(self, bucket: str) -> None:
        req = urllib.request.Request(f"{self.url}/storage/v1/b?project=test", method="POST",
                                     data=json.dumps({"name": bucket}).encode(),
                                     headers={"Content-Type": "application/json"})
        urllib.request.urlopen(req, timeout=30).read()

    def stop(self) -> None:
        _stop(self.proc)


def start_gcs(workdir: Path, in_memory: bool = True) -> GcsEmulator:
    """The emulator; with ``in_memory=False`` it keeps objects under ``workdir/.cloudstorage``."""
    (port,) = free_ports(1)
    log = open(workdir / "gcs.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "gcp_storage_emulator", "start", "--host", "127.0.0.1",
                             "--port", str(port), *(["--in-memory"] if in_memory else [])],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=workdir)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_http(f"{url}/storage/v1/b", proc, "gcp-storage-emulator")
    except BaseException:
        _stop(proc)
        raise
    return GcsEmulator(proc, url)


ADD_IN = np.arange(10, dtype=np.float32).reshape(1, 10)


def infer_add(srv, model: str, version: str = "") -> np.ndarray:
    """``a`` for input ``b`` = ADD_IN, over KServe gRPC and REST (tritonclient); both must agree."""
    outs = []
    for mod, url in ((grpcclient, srv.grpc_url), (httpclient, srv.http_url)):
        client = mod.InferenceServerClient(url)
        try:
            inp = mod.InferInput("b", [1, 10], "FP32")
            inp.set_data_from_numpy(ADD_IN)
            outs.append(client.infer(model, [inp], model_version=version).as_numpy("a"))
        finally:
            client.close()
    np.testing.assert_array_equal(outs[0], outs[1])
    return outs[0]


def ready_error(srv, model: str) -> str:
    """Why KServe REST says ``model`` is not ready ("" when it is)."""
    try:
        with urllib.request.urlopen(f"http://{srv.http_url}/v2/models/{model}", timeout=30):
            return ""
    except urllib.error.HTTPError as e:
        return e.read().decode()
