// `sealroot composefs-image --repo DIR (--commit SHA | --ref REF) IMAGE [--no-verity]`: writes the commit's
// composefs image exactly as `ostree checkout --composefs` (or `--composefs-noverity`) does and prints its
// fs-verity digest. With file digests, a commit carrying `ostree.composefs.digest.v0` must match the image
// or nothing is written (exit 1), as ostree refuses. Also holds the image builder `seal` and `deploy-image`
// share: the tree from the repository, file digests from the kernel or computed here, the EROFS bytes.

import { IntegrityError, SealrootError } from "../base/errors.ts";
import { toHex } from "../formats/bytes.ts";
import type { Inode } from "../formats/composefs/tree.ts";
import { writeErofs } from "../formats/erofs/write.ts";
import {
  type ComposefsVerity,
  commitComposefsTree,
  type FileVerityDigest,
  OSTREE_COMPOSEFS_WRITE_OPTIONS,
} from "../formats/ostree/composefs.ts";
import { COMPOSEFS_DIGEST_KEY, composefsDigest } from "../formats/ostree/objects.ts";
import type { ContentObject, OstreeRepo } from "../formats/ostree/repo.ts";
import { measureVerityPath } from "../sys/verity.ts";
import { writeFileAtomic } from "../sys/write.ts";
import { FsVerityHasher } from "../verify/fsverity.ts";
import type { CommandModule } from "./context.ts";
import { openRepoAndCommit, repoOptions } from "./show.ts";

/** The fs-verity (sha256, 4096-byte blocks) digest of bytes in memory. */
export function fsverityOf(bytes: Uint8Array): Uint8Array {
  return new FsVerityHasher().update(bytes).digest();
}

/**
 * The kernel's digest of a bare-repository object when it has fs-verity (sha256), else `undefined`.
 * Best-effort by design, as in ostree (`ioctl(FS_IOC_MEASURE_VERITY) == 0 && sha256`): a file without
 * verity, or a kernel or file system without fs-verity, just means "no kernel digest".
 */
export function kernelObjectDigestBestEffort(path: string): Uint8Array | undefined {
  try {
    const d = measureVerityPath(path);
    return d?.algorithm === "sha256" && d.digest.length === 32 ? d.digest : undefined;
  } catch (e) {
    if (e instanceof SealrootError) return undefined; // no fs-verity here: ostree ignores the ioctl failure too
    throw e;
  }
}

export interface DigestSources {
  /** Asks the kernel for an object's digest (injected in tests); default kernelObjectDigestBestEffort. */
  kernel?: (path: string) => Uint8Array | undefined;
}

/**
 * ostree's per-file digest rule for `verity`: `none` → never; otherwise the kernel's measurement of the
 * object (bare repositories only: ostree reads archive objects through a decompressing stream, which
 * has no fd to measure), and in `full` mode the digest computed from the content when the kernel has none.
 */
export function fileDigests(
  repo: Pick<OstreeRepo, "mode">,
  verity: ComposefsVerity,
  sources: DigestSources = {},
): FileVerityDigest | undefined {
  if (verity === "none") return undefined;
  const kernel = sources.kernel ?? kernelObjectDigestBestEffort;
  return (obj: ContentObject) => {
    const known = repo.mode === "archive" ? undefined : kernel(obj.path);
    if (known) return known;
    return verity === "full" ? fsverityOf(obj.content ?? new Uint8Array(0)) : undefined;
  };
}

export interface BuiltImage {
  tree: Inode;
  image: Uint8Array;
  digest: Uint8Array;
  /** The commit's `ostree.composefs.digest.v0`, when it has one. */
  expected: Uint8Array | undefined;
}

/** The composefs image of a commit as ostree writes it, with its fs-verity digest. */
export function buildComposefsImage(
  repo: OstreeRepo,
  checksum: string,
  verity: ComposefsVerity,
  sources: DigestSources = {},
): BuiltImage {
  const { commit } = repo.readCommit(checksum);
  const tree = commitComposefsTree(repo, checksum, fileDigests(repo, verity, sources));
  const image = writeErofs(tree, OSTREE_COMPOSEFS_WRITE_OPTIONS);
  return { tree, image, digest: fsverityOf(image), expected: composefsDigest(commit) };
}

/** ostree's compare_verity_digests, in sealroot's wording; the sentence ostree prints is kept inside. */
export function checkImageDigest(checksum: string, built: BuiltImage): void {
  if (!built.expected) return;
  const actual = toHex(built.digest);
  const expected = toHex(built.expected);
  if (actual !== expected) {
    throw new IntegrityError(
      `Cannot write the composefs image of commit ${checksum}: Generated composefs image digest (${actual}) doesn't match expected digest (${expected}), expected the commit's ${COMPOSEFS_DIGEST_KEY}`,
      { checksum, expected, actual },
    );
  }
}

export const composefsImageCommand: CommandModule = (y, ctx, setExit) =>
  y.command(
    "composefs-image <image>",
    "Write a commit's composefs image as `ostree checkout --composefs` does; print its fs-verity digest",
    (a) =>
      repoOptions(a)
        .positional("image", { type: "string", demandOption: true, describe: "image file to write" })
        .option("verity", {
          type: "boolean",
          default: true,
          describe: "per-file fs-verity digests (--no-verity: as --composefs-noverity)",
        }),
    (argv) => {
      const { repo, checksum } = openRepoAndCommit(ctx, argv);
      const verity: ComposefsVerity = argv.verity ? "full" : "none";
      const built = buildComposefsImage(repo, checksum, verity);
      // ostree checks the digest only when it computed every file digest (verity = YES).
      if (verity === "full") checkImageDigest(checksum, built);
      const path = argv.image as string;
      writeFileAtomic(path, built.image, 0o644);
      ctx.out(`sha256:${toHex(built.digest)} ${path}\n`);
      setExit(0);
    },
  );
