# Sourced by the tests' deps scripts and bench/run: getting what they need from the machine's
# own apt sources, and the one line they end with when they cannot.
# shellcheck shell=bash

lib_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
me=$(realpath --relative-to="$lib_repo" "$0")

# die MESSAGE: what could not be done and what to do, on one line.
die() {
	echo "$me: $*" >&2
	exit 1
}

installed() {
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# One `apt-get update` per run: LATENCY_APT_UPDATED tells this script and the deps scripts it
# runs, the stamp file tests/run names in LATENCY_APT_STAMP tells the suites after this one.
apt_update_once() {
	[[ ${LATENCY_APT_UPDATED:-} == 1 || -e ${LATENCY_APT_STAMP:-/nonexistent} ]] && return 0
	echo "$me: apt-get update"
	apt-get -o DPkg::Lock::Timeout=600 update -qq ||
		die "apt-get update failed (output above): repair the machine's apt sources and run again"
	export LATENCY_APT_UPDATED=1
	[[ -z ${LATENCY_APT_STAMP:-} ]] || : >"$LATENCY_APT_STAMP"
}

# need_debs [APT-GET OPTION... --] PACKAGE...: installs the Debian packages that are not
# installed yet. --no-remove: never let a dependency take away a package the machine has.
need_debs() {
	local opts=() missing=() p
	if [[ " $* " == *" -- "* ]]; then
		while [[ $1 != -- ]]; do
			opts+=("$1")
			shift
		done
		shift
	fi
	for p; do
		installed "$p" || missing+=("$p")
	done
	((${#missing[@]})) || return 0
	apt_update_once
	echo "$me: apt-get install ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
		--no-install-recommends --no-remove "${opts[@]}" "${missing[@]}" ||
		die "apt-get install ${missing[*]} failed (output above): make them installable from the machine's apt sources and run again"
}

# machine_sources SUITE: one-line apt sources ("deb URI SUITE COMPONENT") for SUITE and its
# -updates and -security suites, taken from the machine's own apt configuration, so that the
# tests' root filesystems come from the mirror the machine uses.
machine_sources() {
	local suite=$1 lines
	# shellcheck disable=SC2016 # $(...) are apt's field names, not the shell's
	lines=$(apt-get indextargets --format '$(TARGET_OF) $(REPO_URI) $(RELEASE) $(COMPONENT)' \
		'Created-By: Packages' | awk -v s="$suite" \
		'$1 == "deb" && ($3 == s || $3 == s "-updates" || $3 == s "-security")' | sort -u)
	[[ -n $lines ]] ||
		die "no apt source of this machine offers Debian $suite (apt-get indextargets): add one to /etc/apt/sources.list.d and run again"
	printf '%s\n' "$lines"
}

# need_terraform: terraform on PATH and the AWS provider under /opt/tf-plugins, the local
# mirror tests/infra/terraformrc and the offline `terraform init -plugin-dir` calls read.
need_terraform() {
	local plugins=/opt/tf-plugins
	if ! command -v terraform >/dev/null; then
		apt_update_once
		apt-cache show terraform >/dev/null 2>&1 ||
			die "terraform is not installed and no apt source offers it: add HashiCorp's Debian repository (see their Terraform install page for Debian/Ubuntu) and run again"
		need_debs terraform
	fi
	compgen -G "$plugins/*/hashicorp/aws" >/dev/null && return 0
	# No local mirror: make one from terraform's default registry, once, while the network is
	# there (the infra tests and the e2e test run terraform offline).
	# `providers mirror` wants the (local) modules installed: on a copy, to leave terraform/ clean.
	echo "$me: terraform providers mirror $plugins (the AWS provider, from terraform's default registry)"
	local work rc=0
	work=$(mktemp -d)
	cp -r "$lib_repo/terraform" "$work/"
	env -u TF_CLI_CONFIG_FILE terraform -chdir="$work/terraform" get >/dev/null &&
		env -u TF_CLI_CONFIG_FILE terraform -chdir="$work/terraform" providers mirror "$plugins" || rc=$?
	rm -rf "$work"
	((rc == 0)) ||
		die "could not get the AWS provider into $plugins (output above): give terraform network access, or unpack the provider there, and run again"
}
