"""Shared helpers of the infra tests (packer templates, terraform against moto)."""

import base64
import contextlib
import json
import os
import re
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import boto3
import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]

# What the moto tests apply with.
REGION = "us-east-1"
PUBKEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKiscU7P7Cc5zv0RNXOdSmZuuaonPpv+wqItahXd3MEr latency-test"
ALLOWED = ["198.51.100.7/32", "203.0.113.0/24"]
SSH = ["198.51.100.7/32"]
TF_TIMEOUT = 300  # seconds for one terraform command (apply takes ~25 s)


@pytest.fixture(scope="session")
def repo() -> pathlib.Path:
    return REPO


def tf_env(extra=None):
    """Environment for terraform: offline provider mirror, no checkpoint calls."""
    env = dict(os.environ)
    env.update(
        CHECKPOINT_DISABLE="1",
        TF_IN_AUTOMATION="1",
        TF_INPUT="0",
        TF_CLI_CONFIG_FILE=str(REPO / "tests" / "infra" / "terraformrc"),
    )
    env.update(extra or {})
    return env


@pytest.fixture(scope="session")
def tf_copy(tmp_path_factory):
    """terraform/ copied to a temporary folder and initialised offline."""
    d = tmp_path_factory.mktemp("tf") / "terraform"
    shutil.copytree(REPO / "terraform", d, ignore=shutil.ignore_patterns(
        ".terraform", "*.tfstate*", ".terraform.lock.hcl"))
    subprocess.run(["terraform", "init", "-input=false", "-no-color", "-plugin-dir=/opt/tf-plugins"],
                   cwd=d, env=tf_env(), check=True, capture_output=True, text=True, timeout=300)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def tf_console(workdir, expr, *args):
    """Evaluate one expression with `terraform console`; returns (stdout, stderr)."""
    p = subprocess.run(["terraform", "console", "-input=false", "-no-color", *args],
                       input=expr + "\n", cwd=workdir, env=tf_env(), capture_output=True,
                       text=True, timeout=120)
    return p.stdout, p.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Module scope: each test module gets a moto of its own, so no state is shared.
@pytest.fixture(scope="module")
def moto():
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    moto_server = pathlib.Path(sys.executable).with_name("moto_server")
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen([str(moto_server), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(url + "/moto-api/", timeout=1).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    pytest.fail(f"moto_server did not start on {url}: {log.read().decode()[-2000:]}")
                time.sleep(0.2)
        print(f"moto_server pid {proc.pid} on {url}")
        if os.environ.get("LATENCY_INFRA_WORK"):  # lets tests/infra/run kill it if we die
            pathlib.Path(os.environ["LATENCY_INFRA_WORK"], "moto.pid").write_text(str(proc.pid))
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope="module")
def ec2(moto):
    return boto3.client("ec2", region_name=REGION, endpoint_url=moto,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture(scope="module")
def workdir(repo):
    d = pathlib.Path(tempfile.mkdtemp(prefix="latency-tf-moto-"))
    try:
        shutil.copytree(repo / "terraform", d / "terraform",
                        ignore=shutil.ignore_patterns(".terraform", "*.tfstate*", ".terraform.lock.hcl", "tests"))
        yield d / "terraform"
    finally:
        shutil.rmtree(d, ignore_errors=True)


def moto_env(url, extra):
    """Environment for terraform against moto at url: dummy credentials, no AWS profile,
    basic monitoring, the test's CIDRs and key; extra adds or overrides variables."""
    env = tf_env({
        "AWS_ENDPOINT_URL": url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
        "TF_VAR_region": REGION,
        # moto answers MonitorInstances with "pending" forever, and the provider
        # would wait for "enabled": the emulator run keeps basic monitoring.
        "TF_VAR_detailed_monitoring": "false",
        "TF_VAR_allowed_cidrs": json.dumps(ALLOWED),
        "TF_VAR_ssh_cidrs": json.dumps(SSH),
        "TF_VAR_ssh_public_key": PUBKEY,
    })
    env.update(extra)
    for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE",
                "AWS_SHARED_CREDENTIALS_FILE"):
        env.pop(var, None)
    env["AWS_CONFIG_FILE"] = env["AWS_SHARED_CREDENTIALS_FILE"] = "/dev/null"
    return env


def moto_amis(ec2):
    """The AMI ids moto ships, sorted."""
    amis = sorted(i["ImageId"] for i in ec2.describe_images()["Images"])
    return [a for a in amis if re.fullmatch(r"ami-[0-9a-f]{8,17}", a)]


def run_tf(workdir, env, *args, check=True):
    cmd = ["terraform", *args]
    t0 = time.monotonic()
    try:
        p = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=TF_TIMEOUT)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"{' '.join(cmd)} still running after {TF_TIMEOUT} s:\n{(e.stdout or b'')[-4000:]!r}")
    print(f"$ {' '.join(cmd)}  ({time.monotonic() - t0:.1f} s, exit {p.returncode})")
    if check and p.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} failed:\n{p.stdout[-4000:]}\n{p.stderr[-4000:]}")
    return p


def instances_by_name(ec2):
    out = {}
    for r in ec2.describe_instances()["Reservations"]:
        for i in r["Instances"]:
            if i["State"]["Name"] == "terminated":
                continue
            name = {t["Key"]: t["Value"] for t in i.get("Tags", [])}.get("Name")
            out[name] = i
    return out


def instance_groups(instance):
    """Security groups of an instance, as its network interfaces carry them."""
    ids = {g["GroupId"] for g in instance.get("SecurityGroups", [])}
    for eni in instance.get("NetworkInterfaces", []):
        ids.update(g["GroupId"] for g in eni.get("Groups", []))
    return sorted(ids)


def groups_by_name(ec2):
    return {{t["Key"]: t["Value"] for t in g.get("Tags", [])}.get("Name"): g
            for g in ec2.describe_security_groups()["SecurityGroups"]}


@contextlib.contextmanager
def terraform_applied(ec2, workdir, env):
    """terraform init and apply in workdir against moto; yields the outputs (name -> value).
    Afterwards terraform destroy, and checks that no instance, latency-* security group or
    key pair is left; destroys anyway when a test failed."""
    run_tf(workdir, env, "init", "-input=false", "-no-color", "-plugin-dir=/opt/tf-plugins")
    destroyed = False
    try:
        run_tf(workdir, env, "apply", "-input=false", "-no-color", "-auto-approve")
        out = json.loads(run_tf(workdir, env, "output", "-json").stdout)
        yield {k: v["value"] for k, v in out.items()}
        run_tf(workdir, env, "destroy", "-input=false", "-no-color", "-auto-approve")
        destroyed = True
        left = [i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]
                if i["State"]["Name"] != "terminated"]
        assert not left, f"instances left after destroy: {[i['InstanceId'] for i in left]}"
        sgs = [g["GroupName"] for g in ec2.describe_security_groups()["SecurityGroups"]
               if g["GroupName"].startswith("latency-")]
        assert not sgs, f"security groups left after destroy: {sgs}"
        keys = [k["KeyName"] for k in ec2.describe_key_pairs()["KeyPairs"]]
        assert "latency-key" not in keys, "key pair left after destroy"
        print("destroy removed every instance, security group and the key pair")
    finally:
        if not destroyed:
            run_tf(workdir, env, "destroy", "-input=false", "-no-color", "-auto-approve", check=False)


def user_data(ec2, instance):
    """The user_data script EC2 hands the instance at first boot."""
    attr = ec2.describe_instance_attribute(InstanceId=instance["InstanceId"], Attribute="userData")
    return base64.b64decode(attr["UserData"]["Value"]).decode()
