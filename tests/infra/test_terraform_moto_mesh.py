"""`terraform apply` and `destroy` of a mesh of 3 (mesh_size = 3) against moto.

Each server's user data, as EC2 hands it over, must point latency at both other servers by
Name tag and private IP, and never at the server itself; the private IPs are the fixed ones
chosen from the subnet; one security group lets ICMP echo only within the mesh.
"""

import ipaddress
import re

import pytest

from conftest import (ALLOWED, SSH, groups_by_name, instance_groups, instances_by_name, moto_amis, moto_env,
                      terraform_applied, user_data)

NAMES = ["latency-1", "latency-2", "latency-3"]


@pytest.fixture(scope="module")
def applied(moto, ec2, workdir):
    amis = moto_amis(ec2)
    assert amis, "moto ships AMIs"
    env = moto_env(moto, {"TF_VAR_ami_id_first_server": amis[0], "TF_VAR_mesh_size": "3"})
    with terraform_applied(ec2, workdir, env) as out:
        yield {"out": out, "ami": amis[0]}


def mesh(ec2):
    inst = instances_by_name(ec2)
    assert sorted(inst) == NAMES, f"a mesh of 3 must run exactly {NAMES}, runs {sorted(inst)}"
    return [inst[n] for n in NAMES]


def test_servers_get_fixed_private_ips_from_the_subnet(applied, ec2):
    servers = mesh(ec2)
    subnet = ec2.describe_subnets(SubnetIds=[servers[0]["SubnetId"]])["Subnets"][0]
    net = ipaddress.IPv4Network(subnet["CidrBlock"])
    assert [s["PrivateIpAddress"] for s in servers] == [str(net[10 + i]) for i in range(3)]
    for s in servers:
        assert s["ImageId"] == applied["ami"] and s["KeyName"] == "latency-key"
        assert s["MetadataOptions"]["HttpTokens"] == "required" and s["State"]["Name"] == "running"


def test_each_user_data_names_both_peers_and_never_itself(applied, ec2):
    servers = mesh(ec2)
    ip = {n: s["PrivateIpAddress"] for n, s in zip(NAMES, servers)}
    for name, server in zip(NAMES, servers):
        script = user_data(ec2, server)
        assert script.startswith("#!/bin/bash\n") and script.rstrip().endswith("systemctl restart latency")
        targets = re.findall(r"^target='([^']*)'$", script, re.M)
        assert len(targets) == 1, script
        entries = targets[0].split(",")
        assert sorted(entries) == sorted(f"{n}={ip[n]}" for n in NAMES if n != name), (name, entries)
        assert len(entries) == len(set(entries)) == 2, (name, entries)
        assert not any(e.startswith(name + "=") or e.endswith("=" + ip[name]) for e in entries), (name, entries)


def test_one_group_lets_icmp_echo_only_within_the_mesh(applied, ec2):
    group = groups_by_name(ec2)["latency-mesh"]
    gid = group["GroupId"]
    for s in mesh(ec2):
        assert instance_groups(s) == [gid]

    icmp_in = [p for p in group["IpPermissions"] if p["IpProtocol"] == "icmp"]
    assert len(icmp_in) == 1 and (icmp_in[0]["FromPort"], icmp_in[0]["ToPort"]) == (8, 0)
    assert [g["GroupId"] for g in icmp_in[0]["UserIdGroupPairs"]] == [gid]
    assert not icmp_in[0].get("IpRanges")

    api = [p for p in group["IpPermissions"] if p.get("FromPort") == 5000]
    assert len(api) == 1 and api[0]["IpProtocol"] == "tcp" and api[0]["ToPort"] == 5000
    assert sorted(r["CidrIp"] for r in api[0]["IpRanges"]) == sorted(ALLOWED)
    ssh = [p for p in group["IpPermissions"] if p.get("FromPort") == 22]
    assert len(ssh) == 1 and [r["CidrIp"] for r in ssh[0]["IpRanges"]] == SSH
    assert len(group["IpPermissions"]) == 3, group["IpPermissions"]

    eg = group["IpPermissionsEgress"]
    assert len(eg) == 1 and eg[0]["IpProtocol"] == "icmp" and (eg[0]["FromPort"], eg[0]["ToPort"]) == (8, 0)
    assert [g["GroupId"] for g in eg[0]["UserIdGroupPairs"]] == [gid] and not eg[0].get("IpRanges")
    assert not [n for n in groups_by_name(ec2) if n and n.endswith(("-first-server", "-second-server"))]


def test_outputs_list_every_server(applied, ec2):
    out = applied["out"]
    public = [s["PublicIpAddress"] for s in mesh(ec2)]
    assert out["latency_urls"] == [f"http://{ip}:5000/latency" for ip in public]
    assert out["prometheus_targets"] == [f"{ip}:5000" for ip in public]
    assert out["latency_url"] == f"http://{public[0]}:5000/latency"
    assert out["results_url"] == f"http://{public[0]}:5000/latency-results"
    for key in ("first_server_public_ip", "first_server_private_ip", "second_server_public_ip",
                "second_server_private_ip"):
        assert out.get(key) is None, (key, out.get(key))
