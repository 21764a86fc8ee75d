"""`terraform apply` and `destroy` of terraform/ against moto, AWS's API emulator.

moto_server is started here on 127.0.0.1 on a free port; terraform reaches it
through AWS_ENDPOINT_URL (providers.tf stays untouched) with dummy credentials.
The configuration is copied to a temporary folder, so no state or .terraform
folder is left in the repository, and moto is stopped whatever happens.
"""

import ipaddress
import os
import json
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import pathlib
import urllib.request

import boto3
import pytest

from conftest import tf_env

REGION = "us-east-1"
PUBKEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKiscU7P7Cc5zv0RNXOdSmZuuaonPpv+wqItahXd3MEr latency-test"
ALLOWED = ["198.51.100.7/32", "203.0.113.0/24"]
SSH = ["198.51.100.7/32"]
TF_TIMEOUT = 300  # seconds for one terraform command (apply takes ~25 s)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


@pytest.fixture(scope="module")
def applied(moto, ec2, workdir):
    amis = sorted(i["ImageId"] for i in ec2.describe_images()["Images"])
    amis = [a for a in amis if re.fullmatch(r"ami-[0-9a-f]{8,17}", a)]
    assert len(amis) >= 2, "moto ships AMIs"
    env = tf_env({
        "AWS_ENDPOINT_URL": moto,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
        "TF_VAR_region": REGION,
        "TF_VAR_ami_id_first_server": amis[0],
        # moto has no Canonical images: pin the second server's AMI.
        "TF_VAR_ami_id_second_server": amis[1],
        # moto answers MonitorInstances with "pending" forever, and the provider
        # would wait for "enabled": the emulator run keeps basic monitoring.
        "TF_VAR_detailed_monitoring": "false",
        "TF_VAR_allowed_cidrs": json.dumps(ALLOWED),
        "TF_VAR_ssh_cidrs": json.dumps(SSH),
        "TF_VAR_ssh_public_key": PUBKEY,
    })
    for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE",
                "AWS_SHARED_CREDENTIALS_FILE"):
        env.pop(var, None)
    env["AWS_CONFIG_FILE"] = env["AWS_SHARED_CREDENTIALS_FILE"] = "/dev/null"
    run_tf(workdir, env, "init", "-input=false", "-no-color", "-plugin-dir=/opt/tf-plugins")
    destroyed = False
    try:
        run_tf(workdir, env, "apply", "-input=false", "-no-color", "-auto-approve")
        out = json.loads(run_tf(workdir, env, "output", "-json").stdout)
        yield {"env": env, "out": {k: v["value"] for k, v in out.items()}, "amis": amis}
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
        print("destroy removed both instances, both security groups and the key pair")
    finally:
        if not destroyed:
            run_tf(workdir, env, "destroy", "-input=false", "-no-color", "-auto-approve", check=False)


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


def test_both_instances_exist_with_their_own_group(applied, ec2):
    inst = instances_by_name(ec2)
    assert {"latency-first-server", "latency-second-server"} <= set(inst), sorted(inst)
    groups = groups_by_name(ec2)
    first, second = inst["latency-first-server"], inst["latency-second-server"]
    assert instance_groups(first) == [groups["latency-first-server"]["GroupId"]]
    assert instance_groups(second) == [groups["latency-second-server"]["GroupId"]]
    assert first["ImageId"] == applied["amis"][0] and second["ImageId"] == applied["amis"][1]
    assert first["KeyName"] == second["KeyName"] == "latency-key"
    for i in (first, second):
        assert i["MetadataOptions"]["HttpTokens"] == "required", "IMDSv2 required"
        assert i["State"]["Name"] == "running"


def test_root_volumes_are_encrypted_gp3(applied, ec2):
    inst = instances_by_name(ec2)
    for name in ("latency-first-server", "latency-second-server"):
        vol_ids = [m["Ebs"]["VolumeId"] for m in inst[name]["BlockDeviceMappings"]]
        vols = ec2.describe_volumes(VolumeIds=vol_ids)["Volumes"]
        assert vols and all(v["Encrypted"] and v["VolumeType"] == "gp3" for v in vols), (name, vols)


def test_first_server_user_data_targets_second_private_ip(applied, ec2):
    import base64
    inst = instances_by_name(ec2)
    attr = ec2.describe_instance_attribute(InstanceId=inst["latency-first-server"]["InstanceId"],
                                           Attribute="userData")
    script = base64.b64decode(attr["UserData"]["Value"]).decode()
    ip = inst["latency-second-server"]["PrivateIpAddress"]
    assert f"target='{ip}'" in script
    assert script.startswith("#!/bin/bash\n") and script.rstrip().endswith("systemctl restart latency")


def test_security_group_rules(applied, ec2):
    groups = groups_by_name(ec2)
    first, second = groups["latency-first-server"], groups["latency-second-server"]

    api = [p for p in first["IpPermissions"] if p.get("FromPort") == 5000]
    assert len(api) == 1 and api[0]["IpProtocol"] == "tcp" and api[0]["ToPort"] == 5000
    assert sorted(r["CidrIp"] for r in api[0]["IpRanges"]) == sorted(ALLOWED)
    assert not api[0].get("UserIdGroupPairs")

    icmp_in = [p for p in second["IpPermissions"] if p["IpProtocol"] == "icmp"]
    assert len(icmp_in) == 1
    assert [g["GroupId"] for g in icmp_in[0]["UserIdGroupPairs"]] == [first["GroupId"]]
    assert not icmp_in[0].get("IpRanges")
    assert (icmp_in[0]["FromPort"], icmp_in[0]["ToPort"]) == (8, 0)

    for g in (first, second):
        ssh = [p for p in g["IpPermissions"] if p.get("FromPort") == 22]
        assert len(ssh) == 1 and [r["CidrIp"] for r in ssh[0]["IpRanges"]] == SSH
        other = [p for p in g["IpPermissions"] if p.get("FromPort") not in (22, 5000, 8)]
        assert not other, f"unexpected ingress on {g['GroupName']}: {other}"

    # Egress: the first server may only send ICMP echo to the second's group;
    # the second sends nothing (replies are stateful). AWS's default allow-all is gone.
    eg = first["IpPermissionsEgress"]
    assert len(eg) == 1 and eg[0]["IpProtocol"] == "icmp"
    assert [g["GroupId"] for g in eg[0]["UserIdGroupPairs"]] == [second["GroupId"]]
    assert not eg[0].get("IpRanges")
    assert second["IpPermissionsEgress"] == [], second["IpPermissionsEgress"]


def test_outputs_are_well_formed(applied, ec2):
    out = applied["out"]
    inst = instances_by_name(ec2)
    first, second = inst["latency-first-server"], inst["latency-second-server"]
    for key in ("first_server_public_ip", "first_server_private_ip",
                "second_server_public_ip", "second_server_private_ip"):
        ipaddress.IPv4Address(out[key])
    assert ipaddress.IPv4Address(out["first_server_private_ip"]).is_private
    assert out["first_server_public_ip"] == first["PublicIpAddress"]
    assert out["first_server_private_ip"] == first["PrivateIpAddress"]
    assert out["second_server_public_ip"] == second["PublicIpAddress"]
    assert out["second_server_private_ip"] == second["PrivateIpAddress"]
    ip = re.escape(out["first_server_public_ip"])
    assert re.fullmatch(rf"http://{ip}:5000/latency", out["latency_url"]), out["latency_url"]
    assert re.fullmatch(rf"http://{ip}:5000/latency-results", out["results_url"]), out["results_url"]
    print("outputs:", json.dumps(out, sort_keys=True))
