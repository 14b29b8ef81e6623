// The boot tier's dracut initramfs kinds: `dracutInitramfs({kind, key, config})` builds (or reuses) a dracut
// image with the sealroot module for the Debian 13 kernel the VM runner fetched. With `probe` (default on)
// it adds a test-only dracut module, "sealroot-probe", that shows on the console what sealroot did and
// then powers the VM off, because the conformance fixture's deployment has no init to switch into:
// * `t_initrd` (guest uptime) from dracut's first hook (cmdline 00): kernel start → initramfs userspace;
// * markers `t_sealroot_start` / `t_sealroot_end` (guest uptime) around sealroot: in the systemd kind from
//   a drop-in on the unit (ExecStartPre/ExecStartPost/ExecStopPost), without systemd from pre-pivot hooks
//   09 and 11 around sealroot's 10. The drop-in also copies the unit's stdout (the events) to the console.
// * a pre-pivot hook (99, after sealroot) prints the mounts under /sysroot, /run/sealroot/decision.json and
//   whether /run/ostree-booted exists, then `exit=0` and a sysrq power-off;
// * emergency and shutdown-emergency hooks (sourced by dracut's emergency paths when rd.shell=0) print
//   `emergency=`, the failed units, then `exit=1` and a power-off.

import { join } from "node:path";
import {
  buildDracutInitramfs,
  type DracutImage,
  type DracutKind,
  type DracutModuleSource,
} from "../../../qemu/build-dracut-initramfs.ts";
import { MARKER } from "../../../qemu/lib/init.ts";
import { fetchKernel } from "../../../qemu/lib/kernel.ts";

export type { DracutImage, DracutKind } from "../../../qemu/build-dracut-initramfs.ts";
export { dracutAvailable } from "../../../qemu/build-dracut-initramfs.ts";

export interface DracutBootImageOptions {
  kind: DracutKind;
  /** Public key file (→ /etc/ostree/initramfs-root-binding.key). */
  key: string;
  /** prepare-root.conf file (→ /etc/ostree/prepare-root.conf); absent: none. */
  config?: string;
  /** Add the sealroot-probe module (default true). */
  probe?: boolean;
  bin?: string;
  compression?: "zstd" | "gzip";
}

/** Kernel arguments the probe's boots need: no emergency shell (the emergency hook then powers off). */
export const PROBE_KARGS = "rd.shell=0 systemd.show_status=1";

const sh = (body: string): string => `#!/bin/sh\n${body}`;
const MARK = `m() { echo "${MARKER} $1=$2" >/dev/console; }
up() { read -r u _ </proc/uptime; echo "$u"; }`;
/** sysrq 'o' powers off without userspace tools (the no-systemd image has no poweroff binary). */
const POWEROFF = `sync
sleep 1
echo o >/proc/sysrq-trigger
sleep 10`;

const REPORT = sh(`# sealroot-probe: after sealroot (pre-pivot 99): what it did, then power off.
${MARK}
m t_report "$(up)"
while read -r dev mnt fstype opts _; do
    case "$mnt" in /sysroot*) m mount "$dev $mnt $fstype $opts" ;; esac
done </proc/mounts
if [ -f /run/sealroot/decision.json ]; then
    d=""
    while IFS= read -r l; do d="$d\${l#"\${l%%[! ]*}"}"; done </run/sealroot/decision.json
    m decision "$d"
else
    m decision absent
fi
if [ -e /run/ostree-booted ]; then m ostree_booted present; else m ostree_booted absent; fi
if [ -e "\${NEWROOT:-/sysroot}/usr/bin/hello" ]; then m hello present; else m hello absent; fi
m exit 0
${POWEROFF}
`);

const EMERGENCY = sh(`# sealroot-probe: the boot went to emergency (rd.shell=0): say so, then power off.
${MARK}
m emergency "$(up)"
if command -v systemctl >/dev/null 2>&1; then
    systemctl --failed --no-legend --plain 2>/dev/null | while read -r unit _; do m failed_unit "$unit"; done
fi
[ -f /run/sealroot/decision.json ] && m decision present || m decision absent
m exit 1
${POWEROFF}
`);

const INITRD = sh(`${MARK}\nm t_initrd "$(up)"\n`);
const START = sh(`${MARK}\nm t_sealroot_start "$(up)"\n`);
const END = sh(`${MARK}\nm t_sealroot_end "$(up)"\n`);

/** systemd kind: events to the console, and timing markers around the unit's ExecStart. */
const DROPIN = `[Service]
StandardOutput=journal+console
ExecStartPre=/bin/sh -c 'read -r u _ </proc/uptime; echo "${MARKER} t_sealroot_start=$u"'
ExecStartPost=/bin/sh -c 'read -r u _ </proc/uptime; echo "${MARKER} t_sealroot_end=$u"'
ExecStopPost=/bin/sh -c 'read -r u _ </proc/uptime; echo "${MARKER} t_sealroot_end=$u"; echo "${MARKER} sealroot_result=$SERVICE_RESULT/$EXIT_CODE/$EXIT_STATUS"'
`;

const PROBE_SETUP = `#!/bin/bash
# sealroot-probe (tests only): console markers and power-off around sealroot; see test/boot/lib/dracut.ts.
check() { return 255; }
depends() { echo sealroot; }
install() {
    inst_multiple sleep sync
    inst_hook cmdline 00 "$moddir/probe-initrd.sh"
    inst_hook pre-pivot 99 "$moddir/probe-report.sh"
    # dracut's emergency_shell sources "emergency" hooks when rd.shell=0; die and the systemd emergency
    # service source "shutdown-emergency" ones.
    inst_hook emergency 99 "$moddir/probe-emergency.sh"
    inst_hook shutdown-emergency 99 "$moddir/probe-emergency.sh"
    if dracut_module_included "systemd"; then
        inst_simple "$moddir/probe.conf" \\
            "$systemdsystemunitdir/sealroot-prepare-root.service.d/probe.conf"
    else
        inst_hook pre-pivot 09 "$moddir/probe-start.sh"
        inst_hook pre-pivot 11 "$moddir/probe-end.sh"
    fi
}
`;

export const PROBE_MODULE: DracutModuleSource = {
  name: "sealroot-probe",
  priority: "99",
  files: {
    "module-setup.sh": { content: PROBE_SETUP, mode: 0o755 },
    "probe-report.sh": { content: REPORT, mode: 0o755 },
    "probe-emergency.sh": { content: EMERGENCY, mode: 0o755 },
    "probe-initrd.sh": { content: INITRD, mode: 0o755 },
    "probe-start.sh": { content: START, mode: 0o755 },
    "probe-end.sh": { content: END, mode: 0o755 },
    "probe.conf": { content: DROPIN },
  },
};

/** A dracut initramfs of `kind` with sealroot, the key and the config, for the runner's kernel. */
export function dracutInitramfs(o: DracutBootImageOptions): DracutImage & { kernel: string } {
  const kernel = fetchKernel();
  const image = buildDracutInitramfs({
    kind: o.kind,
    kernelDir: kernel.dir,
    keys: [o.key],
    ...(o.config !== undefined ? { config: o.config } : {}),
    ...(o.probe === false ? {} : { extraModules: [PROBE_MODULE] }),
    ...(o.bin !== undefined ? { bin: o.bin } : {}),
    ...(o.compression !== undefined ? { compression: o.compression } : {}),
  });
  return { ...image, kernel: kernel.vmlinuz };
}

/** Where the boot tier keeps serial logs of its last run. */
export const dracutLogDir = (cache: string): string => join(cache, "boot/dracut-logs");

/** A kernel console line's timestamp prefix, which may start in the middle of a serial line. */
const PRINTK_PREFIX = /(?=\[\s*\d+\.\d+\] )/;

/**
 * sealroot's one-line refusal reasons on a console, without any journal prefix. A process's console write
 * drains through the tty while the kernel prints its own lines at once: when a kernel line (such as the
 * /dev/kmsg copy of the same reason) starts in the middle of a reason, that reason is cut short there and
 * dropped (its rest follows the kernel line); a complete copy is what counts.
 */
export function refusalLines(serial: string): string[] {
  const out: string[] = [];
  for (const line of serial.split("\n")) {
    const pieces = line.split(PRINTK_PREFIX);
    for (const [i, piece] of pieces.entries()) {
      const at = piece.indexOf("sealroot: prepare-root refused");
      if (at >= 0 && i === pieces.length - 1) out.push(piece.slice(at).trimEnd());
    }
  }
  return out;
}
