// `sealroot verify --sysroot DIR [--cmdline STR] [--config FILE] [--root DIR] [--json]`: everything the
// boot will check, offline, with the image's fs-verity digest computed in userspace. Exit 0 = would boot;
// exit 1 = refused, with one line on stderr saying why. `--json` prints the decision record either way.
// Without --cmdline, the options of the sysroot's default boot entry are used (what the next boot gets).

import { parseCmdline } from "../core/cmdline.ts";
import { parsePrepareRootConfig, readPrepareRootConfig } from "../core/config.ts";
import { checkImage, type Decision, decideTrust } from "../core/decision.ts";
import { resolveDeployment } from "../core/deployment.ts";
import { q, SealrootError, UsageError } from "../core/errors.ts";
import type { FsRead } from "../core/fs.ts";
import { OstreeRepo } from "../formats/ostree/repo.ts";
import { realpath } from "../sys/fs.ts";
import { inflateRaw } from "../sys/zlib.ts";
import type { CommandModule } from "./context.ts";
import { fsverityDigestOfFile } from "./fsverity-digest.ts";

/** The `options` line of the boot entry with the highest `version` (the bootloader's default). */
export function defaultEntryCmdline(fs: FsRead, sysroot: string): { cmdline: string; entry: string } {
  const dir = `${sysroot}/boot/loader/entries`;
  const names = fs.lstatIfExists(dir) ? fs.readdir(dir).filter((n) => n.endsWith(".conf")) : [];
  let best: { version: number; cmdline: string; entry: string } | undefined;
  for (const name of names) {
    const text = new TextDecoder().decode(fs.readFile(`${dir}/${name}`));
    const field = (k: string) => text.match(new RegExp(`^${k}[ \\t]+(.*)$`, "m"))?.[1]?.trim();
    const options = field("options");
    const version = Number(field("version") ?? "0");
    if (options !== undefined && (!best || version > best.version)) {
      best = { version, cmdline: options, entry: `${dir}/${name}` };
    }
  }
  if (!best) {
    throw new UsageError(
      `Cannot find a boot entry in ${q(dir)}: none with an options line, expected --cmdline`,
    );
  }
  return best;
}

/** The deployment's directory, or "/" when the target does not resolve (the decision then says why). */
function deploymentRoot(fs: FsRead, sysroot: string, cmdline: string): string {
  const target = parseCmdline(cmdline).target;
  if (!target) return "/";
  try {
    return resolveDeployment(fs, sysroot, target.path).path;
  } catch (e) {
    if (e instanceof SealrootError) return "/";
    throw e;
  }
}

export function summary(d: Decision): string {
  const dep = d.deployment ? `deployment ${d.deployment.path}` : "no deployment";
  if (!d.useComposefs)
    return `would boot ${dep} with ostree's legacy bind mount (composefs ${d.composefs})\n`;
  const verity = d.verityRequired ? "verity=require" : "no verity";
  const signed = d.keySets.map((k) => `signed by ${k.verifiedBy} (${k.path})`);
  const digest = d.image?.digest ? `image digest ${d.image.digest}` : "image digest not required";
  return `would boot ${dep} on composefs, ${[verity, ...signed, digest].join(", ")}\n`;
}

export const verifyCommand: CommandModule = (y, ctx, setExit) =>
  y.command(
    "verify",
    "Check offline everything the boot will check, and say whether it would boot",
    (a) =>
      a
        .option("sysroot", {
          type: "string",
          demandOption: true,
          describe: "the physical root (holds ostree/)",
        })
        .option("cmdline", {
          type: "string",
          describe: "kernel command line (default: the default boot entry's)",
        })
        .option("config", { type: "string", describe: "prepare-root.conf to use instead of ROOT's" })
        .option("root", {
          type: "string",
          describe:
            "where key paths and prepare-root.conf resolve, as in the initramfs (default: the deployment, whose /usr and /etc its initramfs is built from)",
        })
        .option("json", { type: "boolean", default: false, describe: "print the decision record as JSON" }),
    (argv) => {
      const sysroot = realpath(argv.sysroot);
      const cmdline = argv.cmdline ?? defaultEntryCmdline(ctx.fs, sysroot).cmdline;
      const root = argv.root ?? deploymentRoot(ctx.fs, sysroot, cmdline);
      const config =
        argv.config !== undefined
          ? parsePrepareRootConfig(ctx.fs.readFile(argv.config), argv.config)
          : readPrepareRootConfig(ctx.fs, root);
      const trust = decideTrust({
        fs: ctx.fs,
        sysroot,
        cmdline,
        config,
        keyRoot: root,
        openRepo: (path) => OstreeRepo.open(ctx.fs, path, { inflateRaw }),
      });
      const d = trust.decision;
      const digest =
        d.verdict === "boot" && d.useComposefs && d.image ? fsverityDigestOfFile(d.image.path) : undefined;
      checkImage(trust, digest, "userspace");
      if (argv.json) ctx.out(`${JSON.stringify(d, null, 2)}\n`);
      if (d.verdict === "refuse") {
        ctx.err(`sealroot: refused (${d.stage}): ${d.reason}\n`);
        setExit(1);
      } else if (!argv.json) {
        ctx.out(summary(d));
      }
    },
  );
