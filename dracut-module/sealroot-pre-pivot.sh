#!/bin/sh
# sealroot's pre-pivot hook for a dracut initramfs without systemd: sourced by dracut's /init (priority 10,
# before usrmount and the SELinux policy load, which read the real root) with the physical root mounted
# at $NEWROOT. Like the systemd unit it runs only when the command line names an ostree deployment. A
# refusal is fatal: in a boot that verifies its root `sealroot fail-closed` powers off (the command line,
# rd.shell included, is not verified; the initramfs's prepare-root.conf may allow a shell with
# [sealroot] emergency-shell = yes); otherwise dracut's die: the reason line (sealroot's stderr) is on the
# console, the shutdown-emergency hooks run (or a shell with rd.shell), and /init exits instead of
# switching root.

type getarg > /dev/null 2>&1 || . /lib/dracut-lib.sh

if getarg ostree= > /dev/null || getarg ostree > /dev/null; then
    info "sealroot: preparing ${NEWROOT:-/sysroot}"
    if ! /usr/bin/sealroot prepare-root "${NEWROOT:-/sysroot}"; then
        /usr/bin/sealroot fail-closed
        die "sealroot: refused to prepare ${NEWROOT:-/sysroot}, see the reason above"
    fi
fi
