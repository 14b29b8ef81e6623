// PID-1 mode: the whole initramfs as one linear program over the injected InitSys — mount the API file
// systems, load the listed modules, wait for root= (a /dev path, LABEL= or UUID=, read from ext2/3/4
// superblocks: busybox has no udev), mount it at /sysroot, run prepare-root, move /dev /proc /sys /run
// into the new root and exec busybox switch_root into init=. Every failure ends in failClosed(): the
// one-line reason on stderr and /dev/kmsg, then a rescue shell (rd.shell) or power-off — never the root.

import { messageOf, q, SealrootError, UsageError } from "../base/errors.ts";
import { badValue, type KernelCmdline, MAX_CMDLINE_BYTES, readKernelCmdline } from "../core/cmdline.ts";
import { readPrepareRootConfig } from "../core/config.ts";
import { emergencyShellRefusal } from "../core/policy.ts";
import { utf8 } from "../formats/bytes.ts";
import { EXT4_SUPER_OFFSET, EXT4_SUPER_SIZE, parseExt4Superblock } from "../formats/ext4.ts";
import { bootSys } from "../sys/boot-sys.ts";
import type { InitSys } from "../sys/types.ts";
import { type LogEvent, runPhase } from "./phase.ts";
import { type PrepareRootResult, prepareRoot } from "./prepare-root.ts";

/** Where the physical root is mounted and prepared; busybox switch_root moves it onto /. */
export const SYSROOT = "/sysroot";
/** Module load order written by initrd/build.ts (one name a line, `/lib/modules/<name>.ko`). */
export const MODULES_FILE = "/etc/modules-load";
export const BUSYBOX = "/bin/busybox";
export const DEFAULT_INIT = "/sbin/init";
const DEFAULT_ROOT_TIMEOUT_S = 30;
const MAX_ROOT_TIMEOUT_S = 3600;
const POLL_MS = 50;
/** The small files PID 1 reads from procfs, sysfs and the initramfs. */
const KERNEL_FILE_CAP = 1 << 16;

export type RootSpec =
  | { kind: "path"; path: string; token: string }
  | { kind: "label"; label: string; token: string }
  | { kind: "uuid"; uuid: string; token: string };

/** The kernel arguments PID-1 mode reads (prepare-root reads its own from the same text). */
export interface InitCmdline {
  root?: RootSpec;
  rootfstype?: string;
  rootflags?: string;
  /** The kernel's rule: read-only unless the last of `ro`/`rw` is `rw`. */
  readonly: boolean;
  init: string;
  /** dracut's `rd.shell`: a shell instead of power-off when the boot fails. */
  shell: boolean;
  /** `rd.sealroot.modules=a,b` (else the initramfs's module list). */
  modules?: string[];
  rootTimeoutMs: number;
}

const TRUE_WORDS = new Set(["1", "yes", "y", "true", "on"]);
const FALSE_WORDS = new Set(["0", "no", "n", "false", "off"]);

/** The PID-1 mode's arguments of the command line read once at boot; the last of a repeated argument
 * wins, as in the kernel. */
export function parseInitCmdline(cmdline: KernelCmdline): InitCmdline {
  const out: InitCmdline = {
    readonly: true,
    init: DEFAULT_INIT,
    shell: false,
    rootTimeoutMs: DEFAULT_ROOT_TIMEOUT_S * 1000,
  };
  for (const token of cmdline.tokens) {
    const eq = token.indexOf("=");
    const key = eq < 0 ? token : token.slice(0, eq);
    const value = eq < 0 ? undefined : token.slice(eq + 1);
    switch (key) {
      case "ro":
      case "rw":
        if (value === undefined) out.readonly = key === "ro";
        break;
      case "root":
        if (value !== undefined) out.root = parseRoot(token, value);
        break;
      case "rootfstype":
        if (value) out.rootfstype = value;
        break;
      case "rootflags":
        if (value) out.rootflags = value;
        break;
      case "init":
        if (value === undefined) break;
        if (!value.startsWith("/"))
          throw new UsageError(
            `Cannot parse kernel argument ${q(token)}: not an absolute path, expected init=/path/to/init in the new root`,
          );
        out.init = value;
        break;
      case "rd.shell":
        if (value === undefined || TRUE_WORDS.has(value)) out.shell = true;
        else if (FALSE_WORDS.has(value)) out.shell = false;
        else throw badValue(token, value, "1/yes/true/on or 0/no/false/off");
        break;
      case "rd.sealroot.modules":
        out.modules = (value ?? "").split(",").filter((m) => m.length > 0);
        break;
      case "rd.sealroot.root-timeout": {
        const s = Number(value);
        if (value === undefined || !/^\d+(\.\d+)?$/.test(value) || s > MAX_ROOT_TIMEOUT_S)
          throw badValue(token, value ?? "", `seconds from 0 to ${MAX_ROOT_TIMEOUT_S}`);
        out.rootTimeoutMs = Math.round(s * 1000);
        break;
      }
    }
  }
  return out;
}

function parseRoot(token: string, value: string): RootSpec {
  if (value.startsWith("LABEL=") && value.length > 6) return { kind: "label", label: value.slice(6), token };
  if (value.startsWith("UUID=")) {
    const uuid = value.slice(5).toLowerCase();
    if (/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(uuid))
      return { kind: "uuid", uuid, token };
  }
  if (value.startsWith("/dev/") && value.length > 5) return { kind: "path", path: value, token };
  throw badValue(token, value, "/dev/<name>, LABEL=<ext4 label> or UUID=<ext4 uuid>");
}

/** Why the boot stops; the message is the one line the console shows. */
export class BootFailure extends SealrootError {
  constructor(
    readonly phase: string,
    message: string,
  ) {
    super("EBOOT", message, { phase });
  }
}

export interface InitOptions {
  log: (e: LogEvent) => void;
  /** The one-line reason, as the console shows it (stderr). */
  err: (line: string) => void;
  /** Milliseconds, monotonic. */
  now: () => number;
  /** The random part of `transient-etc.XXXXXX`. */
  etcSuffix: string;
  /** The orchestrator (tests inject a stub; default prepareRoot). */
  prepare?: typeof prepareRoot;
}

/**
 * Runs the boot as PID 1 and never returns: it ends in exec (switch_root, or the rescue shell) or power-off.
 * Any error, typed or not, takes the fail-closed path.
 */
export function runInit(sys: InitSys, o: InitOptions): never {
  let shell: Shell = { asked: false };
  try {
    const t0 = o.now();
    const phase = <T>(name: string, fn: () => T, fields?: (r: T) => Record<string, unknown>): T => {
      try {
        return runPhase(o, name, fn, fields);
      } catch (e) {
        throw e instanceof BootFailure || !(e instanceof SealrootError)
          ? e
          : new BootFailure(name, e.message);
      }
    };

    phase(
      "api-mounts",
      () => mountApiFilesystems(sys),
      (mounted) => ({ mounted, uptime: uptime(sys) }),
    );
    // read and parsed once: the PID-1 arguments, the shell's policy and the boot's decision share it
    const cmdline = readKernelCmdline(
      utf8.decode(sys.readFile("/proc/cmdline", MAX_CMDLINE_BYTES, "kernel command line")).replace(/\n$/, ""),
    );
    const args = phase(
      "cmdline",
      () => parseInitCmdline(cmdline),
      (a) => ({ ...a }),
    );
    // the initramfs's own config (trusted); a broken one fails closed before rd.shell can count
    const config = readPrepareRootConfig(sys, "/");
    if (args.shell) shell = { asked: true, refused: emergencyShellRefusal(cmdline, config) };
    phase(
      "modules",
      () => loadModules(sys, args.modules),
      (loaded) => ({ loaded }),
    );
    const device = phase(
      "root-device",
      () => waitForRoot(sys, args, o.now),
      (d) => ({ device: d }),
    );
    phase(
      "mount-root",
      () => mountRoot(sys, device, args),
      (r) => r,
    );

    const tPrepare = o.now();
    const result = (o.prepare ?? prepareRoot)(bootSys(sys), {
      sysroot: SYSROOT,
      cmdline,
      config,
      keyRoot: "/",
      run: "/run",
      mountVar: true,
      etcSuffix: o.etcSuffix,
      log: o.log,
      now: o.now,
    });
    o.log({
      phase: "prepare-root",
      ok: !result.failed,
      ms: o.now() - tPrepare,
      verdict: result.decision.verdict,
      uptime: uptime(sys),
    });
    if (result.failed) throw new BootFailure("prepare-root", refusalLine(result));

    const up = uptime(sys);
    phase(
      "switch-root",
      () => prepareSwitch(sys, args.init),
      (moved) => ({
        init: args.init,
        moved,
        msSinceInit: o.now() - t0,
        uptime: up,
      }),
    );
    // busybox switch_root: deletes the initramfs contents (frees its RAM), MS_MOVE /sysroot → /, chroot, exec
    return sys.exec(BUSYBOX, ["switch_root", SYSROOT, args.init]);
  } catch (e) {
    return failClosed(sys, o, e, shell);
  }
}

/** The line prepare-root's CLI prints for a refusal, so both modes read the same on a console. */
export function refusalLine(r: PrepareRootResult): string {
  return `prepare-root refused (${r.failed?.stage ?? "unknown"}): ${r.failed?.reason ?? "refused"}`;
}

/** `rd.shell` asked for, and why it is not honoured (`undefined` = it is). */
export type Shell = { asked: false } | { asked: true; refused: string | undefined };

/**
 * Prints the reason, then a shell (rd.shell, when allowed) or power-off. Never returns and never boots the
 * root.
 */
export function failClosed(sys: InitSys, o: InitOptions, e: unknown, rd: Shell): never {
  const shell = rd.asked && rd.refused === undefined;
  const reason =
    e instanceof SealrootError ? e.message : e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  const line = `sealroot: ${reason}`;
  o.err(`${line}\n`);
  o.log({ phase: "boot", ok: false, ms: 0, error: reason, next: shell ? "shell" : "poweroff" });
  try {
    // <2> = KERN_CRIT; best effort: /dev may be gone after a failed switch
    sys.writeDevice("/dev/kmsg", `<2>${line}\n`);
  } catch (k) {
    o.log({ phase: "kmsg", ok: false, ms: 0, error: messageOf(k) });
  }
  if (rd.asked && rd.refused !== undefined) o.err(`sealroot: rd.shell ignored: ${rd.refused}\n`);
  if (shell) {
    try {
      o.err("sealroot: rd.shell: starting a shell; the root was NOT switched to\n");
      return sys.exec(BUSYBOX, ["sh"]);
    } catch (x) {
      o.err(`sealroot: ${messageOf(x)}\n`);
    }
  }
  return sys.powerOff();
}

/** API file systems, each skipped when already a mount point (the /init wrapper mounts /proc for Bun). */
const API_MOUNTS = [
  { fstype: "proc", target: "/proc" },
  { fstype: "sysfs", target: "/sys" },
  { fstype: "devtmpfs", target: "/dev" },
  { fstype: "tmpfs", target: "/run" },
] as const;

export function isMountPoint(sys: InitSys, path: string): boolean {
  const parent = path.slice(0, path.lastIndexOf("/")) || "/";
  return sys.stat(path).dev !== sys.stat(parent).dev;
}

function mountApiFilesystems(sys: InitSys): string[] {
  const mounted: string[] = [];
  for (const m of API_MOUNTS) {
    if (!sys.lstatIfExists(m.target)) sys.mkdir(m.target, 0o755);
    else if (isMountPoint(sys, m.target)) continue;
    sys.mountApiFs(m.fstype, m.target);
    mounted.push(m.target);
  }
  return mounted;
}

function uptime(sys: InitSys): number | undefined {
  const text = sys.readFileIfExists("/proc/uptime", KERNEL_FILE_CAP);
  return text ? Number(utf8.decode(text).split(" ")[0]) : undefined;
}

function loadModules(sys: InitSys, names: string[] | undefined): Record<string, string> {
  const list =
    names ??
    utf8
      .decode(sys.readFileIfExists(MODULES_FILE, KERNEL_FILE_CAP, "module list") ?? new Uint8Array())
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l.length > 0 && !l.startsWith("#"));
  const loaded: Record<string, string> = {};
  for (const name of list) {
    const path = name.includes("/") ? name : `/lib/modules/${name}.ko`;
    loaded[name] = sys.loadModule(path) ? "loaded" : "already";
  }
  return loaded;
}

/** Polls /dev and /sys/class/block until root= names a block device, or the timeout passes. */
export function waitForRoot(sys: InitSys, args: InitCmdline, now: () => number): string {
  const spec = args.root;
  if (!spec)
    throw new BootFailure(
      "root-device",
      "Cannot find the root device: no root= argument, expected root=/dev/<name>, LABEL=<label> or UUID=<uuid>",
    );
  const start = now();
  const seen = new Set<string>();
  for (;;) {
    const found = findRoot(sys, spec, seen);
    if (found) return found;
    if (now() - start >= args.rootTimeoutMs) break;
    sys.sleep(POLL_MS);
  }
  const looked = seen.size > 0 ? [...seen].sort().join(", ") : "none";
  throw new BootFailure(
    "root-device",
    `Cannot find the root device ${q(spec.token)}: not present after ${args.rootTimeoutMs / 1000} s (block devices seen: ${looked}), expected a block device matching it (rd.sealroot.root-timeout= to wait longer; modules for its controller)`,
  );
}

function findRoot(sys: InitSys, spec: RootSpec, seen: Set<string>): string | undefined {
  if (spec.kind === "path") {
    const st = sys.lstatIfExists(spec.path) ? sys.stat(spec.path) : undefined;
    if (st) seen.add(spec.path);
    return st?.kind === "blk" ? spec.path : undefined;
  }
  const byLink =
    spec.kind === "label" ? `/dev/disk/by-label/${spec.label}` : `/dev/disk/by-uuid/${spec.uuid}`;
  if (sys.lstatIfExists(byLink)) return byLink;
  if (!sys.lstatIfExists("/sys/class/block")) return undefined;
  for (const name of sys.readdir("/sys/class/block").sort()) {
    const dev = `/dev/${name}`;
    if (!sys.lstatIfExists(dev)) continue;
    // an unbound loop device (0 sectors) cannot hold the root; not worth an open or a mention
    const size = sys.readFileIfExists(`/sys/class/block/${name}/size`, KERNEL_FILE_CAP);
    if (size && utf8.decode(size).trim() === "0") continue;
    seen.add(dev);
    const sb = readExt4Superblock(sys, dev);
    if (!sb) continue;
    if (spec.kind === "label" ? sb.label === spec.label : sb.uuid === spec.uuid) return dev;
  }
  return undefined;
}

function readExt4Superblock(sys: InitSys, dev: string): { label: string; uuid: string } | undefined {
  try {
    return parseExt4Superblock(sys.readDevice(dev, EXT4_SUPER_SIZE, EXT4_SUPER_OFFSET));
  } catch (e) {
    // an empty loop or ram device refuses open (ENXIO), a dead one the read — not the root; skipped
    if (e instanceof SealrootError) return undefined;
    throw e;
  }
}

/** Mounts the root device at /sysroot with rootfstype= (else each type of /proc/filesystems that needs a
 * device, as the kernel does), rootflags= and ro/rw. */
function mountRoot(sys: InitSys, device: string, args: InitCmdline): Record<string, unknown> {
  if (!sys.lstatIfExists(SYSROOT)) sys.mkdir(SYSROOT, 0o755);
  const types = args.rootfstype ? args.rootfstype.split(",") : blockFilesystems(sys);
  const tried: string[] = [];
  for (const fstype of types) {
    try {
      sys.mountDevice(device, SYSROOT, fstype, args.readonly, args.rootflags ?? null);
      return { device, fstype, readonly: args.readonly, options: args.rootflags ?? "" };
    } catch (e) {
      if (!(e instanceof SealrootError)) throw e;
      tried.push(`${fstype}: ${e.message}`);
    }
  }
  throw new BootFailure(
    "mount-root",
    `Cannot mount the root device ${q(device)} on ${q(SYSROOT)}: ${tried.join("; ") || "no file system types to try"}, expected a file system the kernel knows (rootfstype=)`,
  );
}

function blockFilesystems(sys: InitSys): string[] {
  return utf8
    .decode(sys.readFile("/proc/filesystems", KERNEL_FILE_CAP))
    .split("\n")
    .filter((l) => l.length > 0 && !l.startsWith("nodev"))
    .map((l) => l.trim());
}

/**
 * Checks that init= exists in the prepared root, then moves /dev /proc /sys /run into it (as systemd's
 * switch-root does) — or detaches them when the new root has no such directory.
 */
function prepareSwitch(sys: InitSys, init: string): Record<string, string> {
  if (!sys.lstatIfExists(`${SYSROOT}${init}`))
    throw new BootFailure(
      "switch-root",
      `Cannot switch root to ${q(init)}: absent in the prepared root ${q(SYSROOT)}, expected the OS init (init=)`,
    );
  const moved: Record<string, string> = {};
  for (const m of ["/dev", "/proc", "/sys", "/run"]) {
    const target = `${SYSROOT}${m}`;
    if (sys.lstatIfExists(target)?.kind === "dir") {
      sys.move(m, target);
      moved[m] = "moved";
    } else {
      sys.detach(m);
      moved[m] = "detached (no directory in the new root)";
    }
  }
  return moved;
}
