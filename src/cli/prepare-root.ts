// `sealroot prepare-root [SYSROOT]`: prepare the deployment's root at SYSROOT (default /sysroot) for the
// initramfs to switch into — the drop-in for ostree-prepare-root. Invoked as `ostree-prepare-root SYSROOT
// [CMDLINE]` (argv[0]), it takes ostree's arguments. Structured events per phase go to stdout; a refusal
// is one plain line on stderr (and /dev/kmsg as PID 1), exit 1, with SYSROOT and /run left as they were.

import { type PrepareRootResult, prepareRoot } from "../boot/prepare-root.ts";
import { MAX_CMDLINE_BYTES, readKernelCmdline } from "../core/cmdline.ts";
import { parsePrepareRootConfig, readPrepareRootConfig } from "../core/config.ts";
import { toHex, utf8 } from "../formats/bytes.ts";
import { MAX_KEYFILE_BYTES } from "../formats/keyfile.ts";
import { bootSys } from "../sys/boot-sys.ts";
import { realFs, realpath } from "../sys/fs.ts";
import type { CompatForce } from "../sys/kernel-compat.ts";
import { realSys, realSysWithTpm } from "../sys/real.ts";
import { randomBytes } from "../sys/write.ts";
import { type CliContext, type CommandModule, readArgFile } from "./context.ts";
import { stdoutEventLog } from "./log.ts";

export interface PrepareRootArgs {
  sysroot: string;
  cmdline?: string | undefined;
  config?: string | undefined;
  dryRun?: boolean | undefined;
  forceLoop?: boolean | undefined;
  forceMount2?: boolean | undefined;
  forceLegacyLowerdir?: boolean | undefined;
  mountVar?: boolean | undefined;
  tpm?: string | undefined;
}

/** /proc/cmdline without its trailing newline, as ostree reads it. */
export function procCmdline(): string {
  return utf8
    .decode(realFs.readFile("/proc/cmdline", MAX_CMDLINE_BYTES, "kernel command line"))
    .replace(/\n$/, "");
}

/** Runs prepare-root on the real system; returns the result and prints the refusal line. */
export function runPrepareRoot(ctx: CliContext, a: PrepareRootArgs): PrepareRootResult {
  const force: CompatForce = {};
  if (a.forceLoop) force.erofsSource = "loop";
  if (a.forceMount2) force.mountApi = "legacy";
  if (a.forceLegacyLowerdir) force.overlayLayers = "legacy";
  const started = performance.now();
  const sys = bootSys(a.tpm === undefined ? realSys : realSysWithTpm(a.tpm), { force });
  const result = prepareRoot(sys, {
    sysroot: realpath(a.sysroot),
    cmdline: readKernelCmdline(a.cmdline ?? procCmdline()),
    config:
      a.config !== undefined
        ? parsePrepareRootConfig(
            readArgFile(ctx.fs, a.config, MAX_KEYFILE_BYTES, "prepare-root.conf"),
            a.config,
          )
        : readPrepareRootConfig(ctx.fs, "/"),
    keyRoot: "/",
    run: "/run",
    ...(a.mountVar !== undefined ? { mountVar: a.mountVar } : {}),
    etcSuffix: toHex(randomBytes(3)),
    dryRun: a.dryRun === true,
    log: stdoutEventLog(),
    now: () => performance.now() - started,
  });
  if (a.dryRun) ctx.out(`${JSON.stringify({ decision: result.decision, plan: result.plan }, null, 2)}\n`);
  if (result.failed)
    ctx.err(`sealroot: prepare-root refused (${result.failed.stage}): ${result.failed.reason}\n`);
  return result;
}

export const prepareRootCommand: CommandModule = (y, ctx, setExit) =>
  y.command(
    "prepare-root [sysroot]",
    "Verify and mount the deployment's root at SYSROOT (the drop-in for ostree-prepare-root)",
    (a) =>
      a
        .positional("sysroot", {
          type: "string",
          default: "/sysroot",
          describe: "the physical root, mounted",
        })
        .option("cmdline", { type: "string", describe: "kernel command line (default: /proc/cmdline)" })
        .option("config", {
          type: "string",
          describe: "prepare-root.conf (default: /usr/lib and /etc ostree/)",
        })
        .option("dry-run", {
          type: "boolean",
          default: false,
          describe: "print the decision and plan as JSON; mount nothing",
        })
        .option("mount-var", {
          type: "boolean",
          describe: "bind the stateroot's var on /var (default: without systemd)",
        })
        .option("tpm", {
          type: "string",
          describe:
            "measure into this TPM: a device or a TPM simulator's socket (default: /dev/tpmrm0, /dev/tpm0)",
        })
        .option("force-loop", {
          type: "boolean",
          default: false,
          describe: "EROFS through a loop device, not file-backed",
        })
        .option("force-mount2", {
          type: "boolean",
          default: false,
          describe: "mount(2), not the new mount API",
        })
        .option("force-legacy-lowerdir", {
          type: "boolean",
          default: false,
          describe: "lowerdir=A::B, not lowerdir+/datadir+",
        }),
    (argv) => {
      const r = runPrepareRoot(ctx, argv);
      setExit(r.failed ? 1 : 0);
    },
  );

/** `ostree-prepare-root SYSROOT [CMDLINE]` → sealroot's arguments. */
export function ostreePrepareRootArgs(args: string[]): string[] {
  const [sysroot, cmdline] = args;
  if (sysroot === undefined) return ["prepare-root", "--help"];
  return cmdline === undefined ? ["prepare-root", sysroot] : ["prepare-root", sysroot, "--cmdline", cmdline];
}
