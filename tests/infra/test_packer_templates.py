"""Structure of the Packer templates, parsed with python-hcl2 (no packer binary here).

Checks what `packer build` would do: which image it starts from, how the build
instance and the AMI are hardened, and that the provisioners upload the .deb and
run a script that exists.
"""

import pathlib
import stat

import hcl2
import pytest

CANONICAL = "099720109477"


def unwrap(value):
    """python-hcl2 wraps attribute values in one-element lists; undo that."""
    while isinstance(value, list) and len(value) == 1:
        value = value[0]
    return value


def load(path: pathlib.Path):
    with path.open() as f:
        return hcl2.load(f)


@pytest.fixture(scope="module")
def templates(repo):
    tdir = repo / "packer" / "templates"
    return {p.name: load(p) for p in sorted(tdir.glob("*.pkr.hcl"))}


@pytest.fixture(scope="module")
def source(templates):
    doc = templates["ubuntu-24-04-lts.pkr.hcl"]
    sources = doc["source"]
    assert len(sources) == 1, "one source block"
    assert list(sources[0]) == ["amazon-ebs"], "the source is amazon-ebs"
    (name, body), = sources[0]["amazon-ebs"].items()
    assert name == "ubuntu"
    return body


@pytest.fixture(scope="module")
def build(templates):
    builds = templates["ubuntu-24-04-lts.pkr.hcl"]["build"]
    assert len(builds) == 1
    return builds[0]


@pytest.fixture(scope="module")
def variables(templates):
    out = {}
    for block in templates["variables.pkr.hcl"]["variable"]:
        out.update(block)
    return out


def test_the_three_template_files_exist(templates):
    assert set(templates) == {"plugins.pkr.hcl", "variables.pkr.hcl", "ubuntu-24-04-lts.pkr.hcl"}


def test_amazon_plugin_is_pinned_to_one_version(templates):
    packer = unwrap(templates["plugins.pkr.hcl"]["packer"])
    amazon = unwrap(unwrap(packer["required_plugins"])["amazon"])
    assert amazon["source"] == "github.com/hashicorp/amazon"
    assert amazon["version"].startswith("= "), f"exact pin, got {amazon['version']!r}"
    assert amazon["version"][2:].count(".") == 2


def test_source_is_latest_ubuntu_2404_amd64_from_canonical(source):
    f = unwrap(source["source_ami_filter"])
    filters = unwrap(f["filters"])
    assert filters["name"] == "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*"
    assert filters["architecture"] == "x86_64"
    assert filters["virtualization-type"] == "hvm"
    assert filters["root-device-type"] == "ebs"
    assert unwrap(f["owners"]) == CANONICAL
    assert unwrap(f["most_recent"]) is True
    assert unwrap(source["ssh_username"]) == "ubuntu"


def test_build_instance_and_ami_require_imdsv2(source):
    md = unwrap(source["metadata_options"])
    assert unwrap(md["http_tokens"]) == "required"
    assert unwrap(md["http_endpoint"]) == "enabled"
    assert unwrap(md["http_put_response_hop_limit"]) == 1
    assert unwrap(source["imds_support"]) == "v2.0"


def test_root_volume_is_encrypted_gp3(source):
    assert unwrap(source["encrypt_boot"]) is True
    bdm = unwrap(source["launch_block_device_mappings"])
    assert unwrap(bdm["device_name"]) == "/dev/sda1"
    assert unwrap(bdm["encrypted"]) is True
    assert unwrap(bdm["volume_type"]) == "gp3"


def test_build_uses_the_source(build):
    assert unwrap(build["sources"]) == "source.amazon-ebs.ubuntu"


def provisioners(build):
    out = []
    for p in build["provisioner"]:
        (kind, body), = p.items()
        out.append((kind, {k: unwrap(v) for k, v in body.items()}))
    return out


def test_provisioners_upload_the_deb_then_run_the_install_script(build, repo):
    provs = provisioners(build)
    kinds = [k for k, _ in provs]
    fi = kinds.index("file")
    upload = provs[fi][1]
    assert upload["destination"] == "/tmp/latency.deb"
    assert upload["source"] == "${local.deb_path}"

    scripts = [(i, b) for i, (k, b) in enumerate(provs) if k == "shell" and "script" in b]
    assert len(scripts) == 1, "exactly one provisioner runs a script file"
    si, sh = scripts[0]
    assert si > fi, "the script runs after the upload"
    assert sh["script"] == "${path.root}/../scripts/install-latency.sh"
    script = (repo / "packer" / "templates" / ".." / "scripts" / "install-latency.sh").resolve()
    assert script.is_file(), f"{script} exists"
    assert script.stat().st_mode & stat.S_IXUSR, "install-latency.sh is executable"
    assert "sudo" in sh["execute_command"] and sh["execute_command"].endswith(" /tmp/latency.deb")


def test_default_deb_path_is_dist_at_the_repo_root(templates, variables, repo):
    local = unwrap(templates["ubuntu-24-04-lts.pkr.hcl"]["locals"])
    expr = unwrap(local["deb_path"])
    assert "${path.root}/../../dist/latency_${var.latency_version}_amd64.deb" in expr
    assert unwrap(variables["deb_path"]["default"]) == ""
    # path.root is packer/templates: ../../dist is the repository's dist/.
    assert (repo / "packer" / "templates" / ".." / ".." / "dist").resolve() == repo / "dist"


def test_every_variable_is_typed_and_described(variables):
    assert {"region", "instance_type", "latency_version", "deb_path"} <= set(variables)
    for name, body in variables.items():
        assert "type" in body, f"{name} has a type"
        assert unwrap(body.get("description", "")).strip(), f"{name} has a description"


def test_example_envrc_holds_no_secret(repo):
    for path in (repo / "packer" / ".envrc", repo / "terraform" / ".envrc"):
        text = path.read_text()
        for word in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "PRIVATE KEY", "aws_secret"):
            assert word not in text, f"{path} mentions {word}"
