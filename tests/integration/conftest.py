"""Fixtures for integration tests, over the two-host lab in tests/lab.py."""
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from lab import BINARY, Daemon, Namespaces, Responder


def pytest_configure(config):
    if os.geteuid() != 0:
        pytest.exit("integration tests need root (network namespaces, raw sockets): run as root", 2)
    if not BINARY.exists():
        pytest.exit(f"{BINARY} does not exist: run cargo build first", 2)


@pytest.fixture
def net():
    namespaces = Namespaces()
    yield namespaces
    namespaces.remove()


@pytest.fixture
def processes():
    """Collects processes a test starts; kills what is left at the end."""
    started = []
    yield started
    for process in started:
        process.kill()


@pytest.fixture
def start(net, tmp_path, processes):
    def start_daemon(*flags, **kwargs):
        daemon = Daemon(net, tmp_path, *flags, **kwargs)
        processes.append(daemon)
        return daemon
    return start_daemon


@pytest.fixture
def responder(net, tmp_path, processes):
    def start_responder(*flags):
        process = Responder(net, tmp_path, *flags)
        processes.append(process)
        return process
    return start_responder


@pytest.fixture
def nobody_dir():
    """A directory the unprivileged user may write, reachable from /."""
    path = Path(tempfile.mkdtemp(prefix="latency-nobody-"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path)
