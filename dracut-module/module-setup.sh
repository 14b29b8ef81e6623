#!/bin/bash
# dracut module "sealroot": puts the sealroot boot agent into the initramfs in place of ostree-prepare-root.
# It installs the compiled binary and the libraries ffi-rs's native addon loads at run time (Bun unpacks
# the addon into /tmp and dlopens it: libgcc_s.so.1, librt.so.1), the public key(s) and prepare-root.conf,
# the erofs/overlay/loop kernel modules, and the entry point: with systemd the unit
# sealroot-prepare-root.service (wanted by initrd-root-fs.target), with sealroot-refused.target and
# sealroot-fail-closed.service for a refusal; without systemd a pre-pivot hook.
#
# Configuration (dracut.conf variables; see dracut.conf.d/50-sealroot.conf and README.md):
#   sealroot_binary="/usr/bin/sealroot"        the host's compiled sealroot (installed as /usr/bin/sealroot)
#   sealroot_keys="SRC[:DEST] ..."             public key files; the first without DEST goes to ostree's
#                                              default /etc/ostree/initramfs-root-binding.key, later ones
#                                              to /etc/ostree/<basename>. Unset: the host's default key
#                                              file if present (as ostree's module). Empty: no key.
#   sealroot_conf="FILE"                       installed as /etc/ostree/prepare-root.conf. Unset: the host's
#                                              /usr/lib and /etc prepare-root.conf if present. Empty: none.

sealroot_default_key=/etc/ostree/initramfs-root-binding.key

# called by dracut: include only when asked for (add_dracutmodules), and only if the binary exists
check() {
    local bin="${sealroot_binary:-/usr/bin/sealroot}"
    if [[ ! -x $dracutsysrootdir$bin ]]; then
        derror "sealroot: cannot find the binary \"$bin\": absent or not executable, expected sealroot_binary to name the compiled sealroot"
        return 1
    fi
    return 255
}

# called by dracut
depends() {
    return 0
}

# called by dracut: the file systems composefs needs. loop only matters before Linux 6.12 (EROFS cannot
# mount a regular file there). Not filtered by hostonly: the host need not have them loaded.
installkernel() {
    hostonly='' instmods erofs overlay loop
}

sealroot_install_keys() {
    local entry src dest first=1
    if [[ -z ${sealroot_keys+set} ]]; then
        [[ -f $dracutsysrootdir$sealroot_default_key ]] && inst_simple "$sealroot_default_key"
        return 0
    fi
    for entry in $sealroot_keys; do
        src="${entry%%:*}"
        dest="${entry#*:}"
        if [[ $dest == "$entry" ]]; then
            if ((first)); then dest="$sealroot_default_key"; else dest="/etc/ostree/${src##*/}"; fi
        fi
        first=0
        if [[ ! -f $src ]]; then
            dfatal "sealroot: cannot install the key \"$src\": absent, expected a public key file (sealroot_keys)"
            return 1
        fi
        inst_simple "$src" "$dest" || return 1
    done
}

sealroot_install_conf() {
    local f
    if [[ -z ${sealroot_conf+set} ]]; then
        for f in /usr/lib/ostree/prepare-root.conf /etc/ostree/prepare-root.conf; do
            [[ -f $dracutsysrootdir$f ]] && inst_simple "$f"
        done
        return 0
    fi
    [[ -z $sealroot_conf ]] && return 0
    if [[ ! -f $sealroot_conf ]]; then
        dfatal "sealroot: cannot install the config \"$sealroot_conf\": absent, expected a prepare-root.conf (sealroot_conf)"
        return 1
    fi
    inst_simple "$sealroot_conf" /etc/ostree/prepare-root.conf
}

# called by dracut
install() {
    local bin="${sealroot_binary:-/usr/bin/sealroot}" lib

    if dracut_module_included "ostree"; then
        dfatal "sealroot: cannot be included with the ostree module: both prepare /sysroot, expected one of them"
        return 1
    fi

    inst_binary "$bin" /usr/bin/sealroot || {
        dfatal "sealroot: cannot install the binary \"$bin\""
        return 1
    }
    # ffi-rs's addon is not in the binary's ldd output: it is unpacked to /tmp and dlopened at run time.
    inst_libdir_file "libgcc_s.so.1" "librt.so.1"
    for lib in libgcc_s.so.1 librt.so.1; do
        if [[ -z "$(find "$initdir" -name "$lib" -print -quit)" ]]; then
            dfatal "sealroot: cannot find \"$lib\" in the library directories ($libdirs), expected it for ffi-rs"
            return 1
        fi
    done
    mkdir -p "$initdir/tmp" "$initdir/etc/ostree"

    sealroot_install_keys || return 1
    sealroot_install_conf || return 1

    if dracut_module_included "systemd"; then
        inst_simple "$moddir/sealroot-prepare-root.service" "$systemdsystemunitdir/sealroot-prepare-root.service"
        inst_simple "$moddir/sealroot-fail-closed.service" "$systemdsystemunitdir/sealroot-fail-closed.service"
        inst_simple "$moddir/sealroot-refused.target" "$systemdsystemunitdir/sealroot-refused.target"
        # A link in the unit directory, not `systemctl add-wants` (which writes /etc and which dracut >= 109
        # drops from non-hostonly images: ostree commit 81c17515 moved its unit's link for that reason).
        mkdir -p "$initdir$systemdsystemunitdir/initrd-root-fs.target.wants"
        ln_r "$systemdsystemunitdir/sealroot-prepare-root.service" \
            "$systemdsystemunitdir/initrd-root-fs.target.wants/sealroot-prepare-root.service"
    else
        inst_hook pre-pivot 10 "$moddir/sealroot-pre-pivot.sh"
    fi
}
