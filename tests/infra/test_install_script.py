"""packer/scripts/install-latency.sh against stubbed apt-get, dpkg-query and systemctl.

The real run (a Debian VM with systemd) belongs to the end-to-end tests; here the
script's own logic is checked: arguments, the root check, the retry with
`apt-get update`, the enabled check, and that a second run is harmless.
"""

import os
import pathlib
import subprocess

import pytest

STUBS = {
    # apt-get: "install" succeeds unless $FAIL_INSTALL (a count of failures left) says otherwise.
    "apt-get": r'''#!/bin/bash
echo "apt-get $*" >>"$LOG"
if [[ " $* " == *" install "* ]]; then
  n=$(cat "$STATE/fail_install" 2>/dev/null || echo 0)
  if (( n > 0 )); then echo $((n - 1)) >"$STATE/fail_install"; echo "E: unmet dependencies" >&2; exit 100; fi
  touch "$STATE/installed"
fi
if [[ " $* " == *" update "* && -e "$STATE/offline" ]]; then echo "E: offline" >&2; exit 100; fi
exit 0
''',
    "dpkg-query": r'''#!/bin/bash
[[ -e "$STATE/installed" ]] || exit 1
case "$*" in *Status*) printf 'install ok installed' ;; *Version*) printf '0.1.0' ;; esac
''',
    "systemctl": r'''#!/bin/bash
echo "systemctl $*" >>"$LOG"
if [[ -e "$STATE/installed" && ! -e "$STATE/disabled" ]]; then echo enabled; exit 0; fi
echo disabled; exit 1
''',
}


@pytest.fixture
def sandbox(tmp_path, repo):
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    for name, body in STUBS.items():
        (bin_ / name).write_text(body)
        (bin_ / name).chmod(0o755)
    deb = tmp_path / "latency_0.1.0_amd64.deb"
    deb.write_bytes(b"not really a deb")
    state = tmp_path / "state"
    state.mkdir()
    env = dict(os.environ, PATH=f"{bin_}:/usr/bin:/bin", LOG=str(tmp_path / "log"), STATE=str(state))

    def run(*args, cwd=tmp_path):
        return subprocess.run(["bash", str(repo / "packer" / "scripts" / "install-latency.sh"), *args],
                              cwd=cwd, env=env, capture_output=True, text=True, timeout=60)

    return {"run": run, "deb": deb, "state": state, "log": tmp_path / "log", "bin": bin_}


pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the script requires root")


def test_installs_with_apt_and_is_idempotent(sandbox):
    for _ in range(2):
        p = sandbox["run"](str(sandbox["deb"]))
        assert p.returncode == 0, p.stderr
        assert "installed, unit enabled" in p.stdout
    log = sandbox["log"].read_text().splitlines()
    installs = [line for line in log if line.startswith("apt-get install")]
    assert len(installs) == 2 and all(line.endswith(" " + str(sandbox["deb"])) for line in installs)
    assert all(" -y " in line for line in installs)
    assert not any("update" in line for line in log), "no network needed when install succeeds"
    assert log.count("systemctl is-enabled latency") == 2


def test_relative_path_is_given_to_apt_as_a_path(sandbox):
    p = sandbox["run"](sandbox["deb"].name, cwd=sandbox["deb"].parent)
    assert p.returncode == 0, p.stderr
    assert sandbox["log"].read_text().splitlines()[0].endswith(" " + str(sandbox["deb"]))


def test_default_path_is_tmp_latency_deb(sandbox):
    if pathlib.Path("/tmp/latency.deb").exists():
        pytest.skip("/tmp/latency.deb exists on this machine")
    p = sandbox["run"]()
    assert p.returncode != 0 and "package not found: /tmp/latency.deb" in p.stderr


def test_missing_dependencies_refresh_lists_once_then_retry(sandbox):
    (sandbox["state"] / "fail_install").write_text("1")
    p = sandbox["run"](str(sandbox["deb"]))
    assert p.returncode == 0, p.stderr
    log = [line.split()[1] for line in sandbox["log"].read_text().splitlines() if line.startswith("apt-get")]
    assert log == ["install", "update", "install"]


def test_offline_with_missing_dependencies_fails_clearly(sandbox):
    (sandbox["state"] / "fail_install").write_text("5")
    (sandbox["state"] / "offline").touch()
    p = sandbox["run"](str(sandbox["deb"]))
    assert p.returncode != 0
    assert "apt-get update failed: cannot resolve the dependencies" in p.stderr


def test_unit_not_enabled_fails_clearly(sandbox):
    (sandbox["state"] / "disabled").touch()
    p = sandbox["run"](str(sandbox["deb"]))
    assert p.returncode != 0
    assert "unit latency is not enabled after install (systemctl is-enabled: 'disabled')" in p.stderr


def test_non_root_is_refused_with_a_hint(sandbox):
    (sandbox["bin"] / "id").write_text("#!/bin/sh\necho 1000\n")
    (sandbox["bin"] / "id").chmod(0o755)
    p = sandbox["run"](str(sandbox["deb"]))
    assert p.returncode != 0 and "must run as root" in p.stderr
    assert not sandbox["log"].exists(), "nothing ran"
