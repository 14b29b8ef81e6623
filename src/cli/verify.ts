// `sealroot verify --sysroot DIR [--cmdline STR] [--config FILE] [--root DIR] [--json]`: everything the
// boot will check, offline, with the image's fs-verity digest computed in userspace. Exit 0 = would boot;
// exit 1 = refused, with one line on stderr saying why. `--json` prints the decision record either way.
// Without --cmdline, the options of the sysroot's default boot entry are used (what the next boot gets).

import { q, SealrootError, UsageError } from "../base/errors.ts";
import { type FsRead, overCap } from "../base/fs.ts";
import { listBootEntries } from "../core/boot-entries.ts";
import { bootArgs, type KernelCmdline, readKernelCmdline } from "../core/cmdline.ts";
import { commitAnchors, commitFile } from "../core/commit-tree.ts";
import {
  emptyConfig,
  type PrepareRootConfig,
  parsePrepareRootConfig,
  readPrepareRootConfig,
  readPrepareRootConfigWith,
} from "../core/config.ts";
import {
  type AnchorSource,
  checkImage,
  type Decision,
  decideTrust,
  refused,
  rootAnchors,
} from "../core/decision.ts";
import { decodeDeploymentCommit, loadDeploymentCommit, resolveDeployment } from "../core/deployment.ts";
import { BOOT_ENTRIES_DIR } from "../formats/boot-entry.ts";
import { MAX_IMAGE_BYTES } from "../formats/erofs/read.ts";
import { MAX_KEYFILE_BYTES } from "../formats/keyfile.ts";
import { OstreeRepo } from "../formats/ostree/repo.ts";
import { realpath } from "../sys/fs.ts";
import { inflateRaw } from "../sys/zlib.ts";
import { type CommandModule, readArgFile } from "./context.ts";
import { fsverityDigestOfFile } from "./fsverity-digest.ts";

/** The `options` line of the boot loader's default entry: the first in ostree's deployment order. */
export function defaultEntryCmdline(fs: FsRead, sysroot: string): { cmdline: string; entry: string } {
  const first = listBootEntries(fs, sysroot)[0];
  if (!first) {
    throw new UsageError(
      `Cannot find a boot entry in ${q(`${sysroot}/${BOOT_ENTRIES_DIR}`)}: none with an ostree= argument, expected --cmdline`,
    );
  }
  return { cmdline: first.options, entry: first.file };
}

/**
 * Without --root, the trust anchors come from the target deployment's commit, read through the repository
 * (its checkout and writable /etc are covered by nothing): what an initramfs built from that commit
 * holds. `undefined` when the target does not resolve (the decision then refuses it and says why).
 */
function commitTrustAnchors(
  fs: FsRead,
  sysroot: string,
  cmdline: KernelCmdline,
): { anchors: AnchorSource; config: PrepareRootConfig } | undefined {
  const target = bootArgs(cmdline).target;
  if (!target) return undefined;
  let deployment: ReturnType<typeof resolveDeployment>;
  try {
    deployment = resolveDeployment(fs, sysroot, target.path);
  } catch (e) {
    if (e instanceof SealrootError) return undefined;
    throw e;
  }
  const repo = OstreeRepo.open(fs, deployment.repo, {
    inflateRaw,
    limits: { maxContentSize: MAX_KEYFILE_BYTES },
  });
  // the boot's own read: at most MAX_BOOT_COMMIT_SIZE, hashed against the deployment's name
  const commit = decodeDeploymentCommit(loadDeploymentCommit(repo, deployment));
  return {
    anchors: commitAnchors(repo, commit, deployment.commit),
    config: readPrepareRootConfigWith((path) =>
      commitFile(repo, commit, path, MAX_KEYFILE_BYTES, "prepare-root.conf"),
    ),
  };
}

/** The one-line verdict; `anchors` says where key paths resolved. */
export function summary(d: Decision, anchors: string): string {
  const dep = d.deployment ? `deployment ${d.deployment.path}` : "no deployment";
  if (!d.useComposefs)
    return `would boot ${dep} with ostree's legacy bind mount (composefs ${d.composefs})\n`;
  const verity = d.verityRequired ? "verity=require" : "no verity";
  const signed = d.keySets.map((k) => `signed by ${k.verifiedBy} (${k.path} in ${anchors})`);
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
      const cmdline = readKernelCmdline(argv.cmdline ?? defaultEntryCmdline(ctx.fs, sysroot).cmdline);
      const fromCommit = argv.root === undefined ? commitTrustAnchors(ctx.fs, sysroot, cmdline) : undefined;
      const anchors =
        argv.root !== undefined
          ? rootAnchors(ctx.fs, argv.root, sysroot)
          : (fromCommit?.anchors ?? rootAnchors(ctx.fs, "/", sysroot));
      const config =
        argv.config !== undefined
          ? parsePrepareRootConfig(
              readArgFile(ctx.fs, argv.config, MAX_KEYFILE_BYTES, "prepare-root.conf"),
              argv.config,
            )
          : argv.root !== undefined
            ? readPrepareRootConfig(ctx.fs, argv.root)
            : (fromCommit?.config ?? emptyConfig());
      const trust = decideTrust({
        fs: ctx.fs,
        sysroot,
        cmdline,
        config,
        anchors,
        openRepo: (path) => OstreeRepo.open(ctx.fs, path, { inflateRaw }),
      });
      let d = trust.decision;
      // hashed only when the boot would compare it, and never past the cap (a sparse 64 GiB file is cheap
      // to make)
      const needed = d.expectedDigests.length > 0 || d.verityRequired === true;
      if (d.verdict === "boot" && d.useComposefs && d.image && needed) {
        const size = ctx.fs.lstat(d.image.path).size;
        if (size > MAX_IMAGE_BYTES)
          d = refused(d, "image", overCap("composefs image", d.image.path, size, MAX_IMAGE_BYTES).message);
        else d = checkImage(trust, fsverityDigestOfFile(d.image.path), "userspace");
      }
      if (argv.json) ctx.out(`${JSON.stringify(d, null, 2)}\n`);
      if (d.verdict === "refuse") {
        ctx.err(`sealroot: refused (${d.stage}): ${d.reason}\n`);
        setExit(1);
      } else if (!argv.json) {
        ctx.out(summary(d, anchors.where));
      }
    },
  );
