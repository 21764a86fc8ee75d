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
