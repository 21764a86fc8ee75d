"""terraform/ variables and the rendered user_data, evaluated by `terraform console`.

The console prints a failed variable validation with its message (and still
exits 0), so the message a user would read is what is asserted here.
"""

import json
import pathlib
import re
import subprocess

import pytest

from conftest import tf_console

GOOD = {
    "ami_id_first_server": "ami-0123456789abcdef0",
    "allowed_cidrs": '["198.51.100.7/32"]',
}

BAD = [
    ("allowed_cidrs", "[]", "The allowed_cidrs must list at least one CIDR"),
    ("allowed_cidrs", '["0.0.0.0/0"]', "opens port 5000 to the whole internet; set allow_open_cidrs = true"),
    ("allowed_cidrs", '["198.51.100.7"]', "Every entry of allowed_cidrs must be an IPv4 CIDR"),
    ("allowed_cidrs", '["198.51.100.300/32"]', "Every entry of allowed_cidrs must be an IPv4 CIDR"),
    ("ssh_cidrs", '["0.0.0.0/0"]', "opens SSH to the whole internet"),
    ("ssh_cidrs", '["not-a-cidr"]', "Every entry of ssh_cidrs must be an IPv4 CIDR"),
    ("ssh_public_key", "not-a-key", "The ssh_public_key must be one OpenSSH public key line"),
    ("ssh_public_key", "-----BEGIN OPENSSH PRIVATE KEY-----", "never a private key"),
    ("ssh_public_key", "ssh-ed25519 AAAA\nssh-rsa BBBB", "The ssh_public_key must be one OpenSSH public key line"),
    ("ami_id_first_server", "ubuntu-24.04", "The ami_id_first_server must be an AMI id"),
    ("root_volume_size", "2", "The root_volume_size must be between 8 and 1024 GiB"),
    ("mesh_size", "1", "The mesh_size must be a whole number from 2 to 50"),
    ("mesh_size", "51", "The mesh_size must be a whole number from 2 to 50"),
    ("mesh_host_offset", "2", "AWS keeps the first four addresses of a subnet"),
]


def var_args(values):
    args = []
    for k, v in values.items():
        args += ["-var", f"{k}={v}"]
    return args


def flat(text):
    return re.sub(r"[\s│]+", " ", text)


@pytest.mark.parametrize("name,value,message", BAD, ids=[f"{n}={v[:24]}" for n, v, _ in BAD])
def test_bad_variable_fails_with_clear_message(tf_copy, name, value, message):
    values = dict(GOOD, **{name: value})
    out, err = tf_console(tf_copy, f"var.{name}", *var_args(values))
    text = flat(out + err)
    assert "Invalid value for variable" in text, text[-1500:]
    assert message in text, text[-1500:]


def test_good_variables_pass(tf_copy):
    out, err = tf_console(tf_copy, "jsonencode(var.allowed_cidrs)", *var_args(GOOD))
    assert "Invalid value" not in out + err, (out + err)[-1500:]
    assert json.loads(json.loads(out.strip())) == ["198.51.100.7/32"]


def test_open_cidrs_need_the_explicit_switch(tf_copy):
    values = dict(GOOD, allowed_cidrs='["0.0.0.0/0"]', allow_open_cidrs="true")
    out, err = tf_console(tf_copy, "jsonencode(var.allowed_cidrs)", *var_args(values))
    assert "Invalid value" not in out + err, (out + err)[-1500:]


def render_setup(tf_copy, ip):
    out, err = tf_console(tf_copy, f'jsonencode(templatefile("${{path.module}}/setup.sh", {{target_ip = "{ip}"}}))')
    assert not err.strip() or "Warning" in err, err
    return json.loads(json.loads(out.strip()))


def test_rendered_setup_is_the_golden_script(tf_copy):
    script = render_setup(tf_copy, "203.0.113.1")
    golden = (pathlib.Path(__file__).parent / "fixtures" / "setup.rendered.sh").read_text()
    assert script == golden


def test_rendered_setup_passes_shellcheck(tf_copy, tmp_path):
    script = tmp_path / "setup.rendered.sh"
    script.write_text(render_setup(tf_copy, "203.0.113.1"))
    p = subprocess.run(["shellcheck", "--shell=bash", "--severity=style", str(script)],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr


def test_rendered_setup_edits_only_latency_target(tf_copy, tmp_path):
    """Runs the rendered script on a copy of a conffile, with systemctl stubbed."""
    script = render_setup(tf_copy, "203.0.113.1").replace("/etc/default/latency", str(tmp_path / "latency"))
    (tmp_path / "setup.sh").write_text(script)
    stub = tmp_path / "bin"
    stub.mkdir()
    (stub / "systemctl").write_text(f'#!/bin/sh\necho "$*" >>{tmp_path}/systemctl.log\n')
    (stub / "systemctl").chmod(0o755)
    env = {"PATH": f"{stub}:/usr/bin:/bin"}

    conf = tmp_path / "latency"
    base = "# latency settings\n# LATENCY_TARGET=198.51.100.2\nLATENCY_INTERVAL=1s\n#LATENCY_LISTEN=0.0.0.0:5000\n"
    # The line is appended when absent, replaced when present; the rest is kept.
    conf.write_text(base)
    subprocess.run(["bash", str(tmp_path / "setup.sh")], env=env, check=True)
    assert conf.read_text() == base + "LATENCY_TARGET=203.0.113.1\n"
    conf.write_text("LATENCY_TARGET=198.51.100.9\n" + base)
    subprocess.run(["bash", str(tmp_path / "setup.sh")], env=env, check=True)
    subprocess.run(["bash", str(tmp_path / "setup.sh")], env=env, check=True)
    assert conf.read_text() == "LATENCY_TARGET=203.0.113.1\n" + base
    assert (tmp_path / "systemctl.log").read_text() == "restart latency\n" * 3
