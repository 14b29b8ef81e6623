// Shell text for VM /init scripts: a prelude (mount the API filesystems and a tmpfs /tmp, load the modules
// listed in /etc/modules-load, wait for /dev/vda) and an epilogue that reports the body's status and powers
// off. Results travel as console lines `SEALROOT-VM: key=value`, parsed by qemu.ts; t_init and t_done are
// /proc/uptime seconds, so kernel start → init and init → done are measured inside the guest.

export const MARKER = "SEALROOT-VM:";

/** A complete /init: prelude, `body` (run in a subshell with `set -e`; its status becomes `exit=`), epilogue. */
export function initScript(body: string, opts: { waitDisk?: string } = {}): string {
  const waitDisk = opts.waitDisk ?? "/dev/vda";
  return `#!/bin/sh
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs -o mode=1777 tmpfs /tmp
mark() { echo "${MARKER} $1=$2"; }
uptime_s() { read -r up _ </proc/uptime; echo "$up"; }
mark t_init "$(uptime_s)"
mark kernel "$(uname -r)"
if [ -f /etc/modules-load ]; then
  while read -r m; do
    insmod "/lib/modules/$m.ko" || mark insmod_failed "$m"
  done </etc/modules-load
fi
${
  waitDisk
    ? `i=0
while [ ! -b ${waitDisk} ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
[ -b ${waitDisk} ] || mark disk_missing ${waitDisk}`
    : ""
}
mark t_ready "$(uptime_s)"
(
set -e
${body}
)
rc=$?
mark t_done "$(uptime_s)"
mark exit "$rc"
sync
poweroff -f
`;
}
