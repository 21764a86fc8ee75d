"""Shared helpers of the infra tests (packer templates, terraform against moto)."""

import os
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


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
    import shutil
    import subprocess

    d = tmp_path_factory.mktemp("tf") / "terraform"
    shutil.copytree(REPO / "terraform", d, ignore=shutil.ignore_patterns(
        ".terraform", "*.tfstate*", ".terraform.lock.hcl"))
    subprocess.run(["terraform", "init", "-input=false", "-no-color", "-plugin-dir=/opt/tf-plugins"],
                   cwd=d, env=tf_env(), check=True, capture_output=True, text=True, timeout=300)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def tf_console(workdir, expr, *args):
    """Evaluate one expression with `terraform console`; returns (stdout, stderr)."""
    import subprocess

    p = subprocess.run(["terraform", "console", "-input=false", "-no-color", *args],
                       input=expr + "\n", cwd=workdir, env=tf_env(), capture_output=True,
                       text=True, timeout=120)
    return p.stdout, p.stderr
