// `sealroot deploy-image --sysroot DIR [--deployment N] [--keys FILE]`: writes `.ostree.cfs` into a
// deployment made by `ostree admin deploy` (as ostree 2026.4's deploy does for a tree whose prepare-root.conf
// wants signed/verity composefs: every file digest, the image checked against the commit's
// `ostree.composefs.digest.v0`), then enables fs-verity on it when the kernel and file system allow.
// Deployment N counts as `ostree admin status` lists them: boot entries by `version`, highest first.

import { IntegrityError, NotFoundError, q, SysError, UsageError } from "../base/errors.ts";
import type { FsRead } from "../base/fs.ts";
import { listBootEntries } from "../core/boot-entries.ts";
import { type Deployment, loadDeploymentCommit, resolveDeployment } from "../core/deployment.ts";
import { toHex } from "../formats/bytes.ts";
import { COMPOSEFS_DIGEST_KEY } from "../formats/ostree/objects.ts";
import { OstreeRepo } from "../formats/ostree/repo.ts";
import { realpath } from "../sys/fs.ts";
import { withMutableDir } from "../sys/inode-flags.ts";
import { enableVerity, measureVerityPath } from "../sys/verity.ts";
import { writeFileAtomic } from "../sys/write.ts";
import { inflateRaw } from "../sys/zlib.ts";
import { MAX_KEY_FILE_BYTES, parsePublicKeyFile } from "../verify/keys.ts";
import { verifyCommitSignatures } from "../verify/signature.ts";
import { buildComposefsImage, checkImageDigest } from "./composefs-image.ts";
import { type CliContext, type CommandModule, readArgFile } from "./context.ts";

/** Deployment `index` in `ostree admin status` order, resolved inside the sysroot. */
export function chooseDeployment(fs: FsRead, sysroot: string, index: number): Deployment {
  const entries = listBootEntries(fs, sysroot);
  const entry = entries[index];
  if (!entry) {
    throw new NotFoundError(
      `Cannot choose deployment ${index} in ${q(sysroot)}: ${entries.length} boot entr${entries.length === 1 ? "y" : "ies"} with ostree= in boot/loader/entries, expected deployment 0..${entries.length - 1}`,
      { sysroot, index, count: entries.length },
    );
  }
  return resolveDeployment(fs, sysroot, entry.target);
}

/** Enables fs-verity on the image and checks the kernel's digest; a kernel or FS without it is a note. */
function enableImageVerityBestEffort(path: string, expected: string): string {
  try {
    enableVerity(path);
  } catch (e) {
    if (e instanceof SysError) return `fs-verity: not enabled: ${e.message}`;
    throw e;
  }
  const measured = measureVerityPath(path);
  const actual = measured ? toHex(measured.digest) : "none";
  if (actual !== expected) {
    throw new IntegrityError(
      `Cannot enable fs-verity on ${q(path)}: the kernel measures ${actual}, expected ${expected}`,
      { path, expected, actual },
    );
  }
  return `fs-verity: enabled, kernel digest sha256:${actual}`;
}

export interface DeployImageOptions {
  sysroot: string;
  deployment: number;
  keys?: string | undefined;
}

export function deployImage(ctx: CliContext, o: DeployImageOptions): void {
  const index = o.deployment;
  if (!Number.isSafeInteger(index) || index < 0) {
    throw new UsageError(`Cannot use --deployment ${index}: not a count, expected 0, 1, …`);
  }
  const sysroot = realpath(o.sysroot);
  const d = chooseDeployment(ctx.fs, sysroot, index);
  ctx.out(`Deployment ${index}: ${d.relPath}\n`);
  const repo = OstreeRepo.open(ctx.fs, d.repo, { inflateRaw });
  const loaded = loadDeploymentCommit(repo, d);
  if (o.keys !== undefined) {
    const keys = parsePublicKeyFile(
      readArgFile(ctx.fs, o.keys, MAX_KEY_FILE_BYTES, "public key file"),
      o.keys,
    ).keys;
    const verdict = verifyCommitSignatures(loaded.bytes, loaded.commitmeta?.signatures, keys);
    if (!verdict.ok)
      throw new IntegrityError(
        `Cannot trust commit ${d.commit}: ${verdict.reason}${verdict.expected ? `, expected ${verdict.expected}` : ""}`,
      );
    ctx.out(`ed25519: Signature verified successfully with key '${verdict.keyHex}'\n`);
  }
  const built = buildComposefsImage(repo, d.commit, "full");
  if (!built.expected) {
    throw new UsageError(
      `Cannot write the composefs image of ${q(d.path)}: commit ${d.commit} has no ${COMPOSEFS_DIGEST_KEY}, expected a sealed commit (sealroot seal)`,
    );
  }
  checkImageDigest(d.commit, built);
  const digest = toHex(built.digest);
  // ostree marks deployment directories immutable (chattr +i) once written: lifted around this one write
  withMutableDir(d.path, () => writeFileAtomic(d.composefsImage, built.image, 0o644));
  ctx.out(`Wrote ${q(d.composefsImage)}: sha256:${digest} = ${COMPOSEFS_DIGEST_KEY}\n`);
  ctx.out(`${enableImageVerityBestEffort(d.composefsImage, digest)}\n`);
}

export const deployImageCommand: CommandModule = (y, ctx, setExit) =>
  y.command(
    "deploy-image",
    "Write .ostree.cfs into a deployment, checked against its commit's ostree.composefs.digest.v0",
    (a) =>
      a
        .option("sysroot", {
          type: "string",
          demandOption: true,
          describe: "the physical root (has ostree/)",
        })
        .option("deployment", {
          type: "number",
          default: 0,
          describe: "deployment index as `ostree admin status` lists them (0 = default boot entry)",
        })
        .option("keys", {
          type: "string",
          describe: "trusted ed25519 public keys: refuse unless the commit's signature verifies",
        }),
    (argv) => {
      deployImage(ctx, { sysroot: argv.sysroot, deployment: argv.deployment, keys: argv.keys });
      setExit(0);
    },
  );
