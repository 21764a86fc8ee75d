#!/bin/bash
# Installs the latency .deb with apt (so its dependencies are resolved) and
# checks that the latency unit ends up enabled. Idempotent: running it again
# with the same package changes nothing and succeeds.
#
#   install-latency.sh [DEB]        DEB defaults to /tmp/latency.deb
#
# Runs as root (Packer calls it through sudo). Needs no network when the
# package's dependencies are already installed; otherwise it refreshes the apt
# lists once and retries.
set -euo pipefail

deb=${1:-/tmp/latency.deb}

die() {
	echo "install-latency: $*" >&2
	exit 1
}

[[ $(id -u) -eq 0 ]] || die "must run as root (try: sudo $0 $deb)"
[[ -f $deb ]] || die "package not found: $deb"
deb=$(realpath -- "$deb") # apt-get treats only a path with a slash as a file

export DEBIAN_FRONTEND=noninteractive
apt_install() {
	apt-get install -y -q -o DPkg::Lock::Timeout=300 \
		-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$deb"
}

echo "install-latency: installing $deb"
if ! apt_install; then
	echo "install-latency: install failed; refreshing apt lists and retrying" >&2
	apt-get update -q -o DPkg::Lock::Timeout=300 || die "apt-get update failed: cannot resolve the dependencies of $deb"
	apt_install || die "apt-get install $deb failed"
fi

status=$(dpkg-query -W -f='${Status}' latency 2>/dev/null || true)
[[ $status == "install ok installed" ]] || die "package latency is not installed after apt-get (status: '${status:-none}')"

enabled=$(systemctl is-enabled latency 2>&1 || true)
[[ $enabled == enabled ]] || die "unit latency is not enabled after install (systemctl is-enabled: '$enabled')"

echo "install-latency: latency $(dpkg-query -W -f='${Version}' latency) installed, unit enabled"
