"""`terraform apply` and `destroy` of terraform/ against moto, AWS's API emulator.

moto_server is started here on 127.0.0.1 on a free port; terraform reaches it
through AWS_ENDPOINT_URL (providers.tf stays untouched) with dummy credentials.
The configuration is copied to a temporary folder, so no state or .terraform
folder is left in the repository, and moto is stopped whatever happens.
"""

import ipaddress
import json
import re

import pytest

from conftest import (ALLOWED, SSH, groups_by_name, instance_groups, instances_by_name, moto_amis, moto_env,
                      terraform_applied, user_data)


@pytest.fixture(scope="module")
def applied(moto, ec2, workdir):
    amis = moto_amis(ec2)
    assert len(amis) >= 2, "moto ships AMIs"
    env = moto_env(moto, {
        "TF_VAR_ami_id_first_server": amis[0],
        # moto has no Canonical images: pin the second server's AMI.
        "TF_VAR_ami_id_second_server": amis[1],
    })
    with terraform_applied(ec2, workdir, env) as out:
        yield {"env": env, "out": out, "amis": amis}


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
    inst = instances_by_name(ec2)
    script = user_data(ec2, inst["latency-first-server"])
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
    # Only the first server runs latency: the lists name it alone.
    assert out["latency_urls"] == [out["latency_url"]], out["latency_urls"]
    assert out["prometheus_targets"] == [f"{out['first_server_public_ip']}:5000"], out["prometheus_targets"]
    print("outputs:", json.dumps(out, sort_keys=True))
