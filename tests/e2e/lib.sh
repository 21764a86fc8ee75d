# Sourced by tests/e2e/run (the qemu VM) and tests/e2e/mesh (three systemd-nspawn machines):
# the package, the guest image and the Packer install command, got the same way for both.
# The sourcing script defines die MESSAGE and sets here, repo, cache and run.
# shellcheck shell=bash disable=SC2154 # here, repo, cache, run: set by the sourcing script

# e2e_deb: the .deb under test in $deb: LTE2E_DEB, else scripts/build-deb's output.
e2e_deb() {
    if [[ -n ${LTE2E_DEB:-} ]]; then
        deb=$(realpath "$LTE2E_DEB")
        echo "e2e: LTE2E_DEB given: $deb"
    else
        local st rel
        set +e
        "$repo/scripts/build-deb" 2>&1 | tee "$run/build-deb.log"
        st=${PIPESTATUS[0]}
        set -e
        ((st == 0)) || die "scripts/build-deb failed (exit $st)"
        rel=$(grep -oE '[^ ]*latency_[^ /]+_amd64\.deb' "$run/build-deb.log" | tail -n 1)
        [[ -n $rel ]] || die "scripts/build-deb printed no .deb path"
        [[ $rel == /* ]] && deb=$rel || deb=$repo/$rel
    fi
    [[ -f $deb ]] || die "package not found: $deb"
    dpkg-deb --info "$deb" | sed -n '/Package:/,$p'
}

# e2e_image: the guest image (disk.raw, vmlinuz, initrd.img) in $img, built by build-image
# into the cache once per version of build-image.
e2e_image() {
    local key st
    key=$(sha256sum "$here/build-image" | cut -c1-16)
    img=$cache/image-$key
    if [[ -f $img/disk.raw && -f $img/vmlinuz && -f $img/initrd.img ]]; then
        echo "e2e: cached image $img"
    else
        rm -rf "$cache"/image-*
        set +e
        "$here/build-image" "$img" 2>&1 | tee "$run/build-image.log" \
            | grep --line-buffered -vE '^(Setting up|Selecting|Preparing|Unpacking|Processing|Created symlink|\(Reading|Adding|Creating|Removing|Done|Warning: The home dir|update-alternatives|debconf|dpkg)'
        st=${PIPESTATUS[0]}
        set -e
        ((st == 0)) || { tail -n 40 "$run/build-image.log" >&2; die "build-image failed (exit $st)"; }
    fi
    ls -lh "$img"
}

# packer_install_command SCRIPT_PATH: the template's execute_command for the install
# script at SCRIPT_PATH, as Packer expands it.
packer_install_command() {
    local template=$repo/packer/templates/ubuntu-24-04-lts.pkr.hcl cmd
    [[ -f $template ]] || die "$template not found"
    cmd=$(sed -n 's/^[[:space:]]*execute_command[[:space:]]*=[[:space:]]*"\(.*\)"[[:space:]]*$/\1/p' "$template" | head -n 1)
    [[ -n $cmd ]] || die "no execute_command in $template"
    cmd=${cmd//'{{ .Path }}'/$1}
    printf '%s\n' "${cmd//'{{ .Vars }}'/"PACKER_BUILDER_TYPE='amazon-ebs' PACKER_BUILD_NAME='latency'"}"
}
