// Builds the ext4 disk images the VM boots with: `mke2fs -t ext4 -b 4096 -O verity -d TREE`. The block size
// is forced to 4 KiB because mke2fs picks 1 KiB blocks below 512 MiB and the kernel then refuses a 4 KiB
// Merkle tree block (FS_IOC_ENABLE_VERITY → EINVAL, seen on 6.12).

import { execFileSync } from "node:child_process";
import { mkdirSync, rmSync } from "node:fs";
import { dirname } from "node:path";

export interface DiskOptions {
  /** Directory copied into the filesystem root (mke2fs -d); empty filesystem when absent. */
  tree?: string;
  sizeMiB?: number;
  label?: string;
}

export function makeExt4Disk(out: string, opts: DiskOptions = {}): string {
  mkdirSync(dirname(out), { recursive: true });
  rmSync(out, { force: true });
  const args = ["-q", "-F", "-t", "ext4", "-b", "4096", "-O", "verity", "-L", opts.label ?? "sealroot-vm"];
  // Fixed UUID and hash seed keep images comparable across runs.
  args.push(
    "-U",
    "5ea1f00d-0000-4000-8000-000000000001",
    "-E",
    "hash_seed=5ea1f00d-0000-4000-8000-000000000002",
  );
  if (opts.tree !== undefined) args.push("-d", opts.tree);
  args.push(out, `${opts.sizeMiB ?? 64}M`);
  execFileSync("mke2fs", args, {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, E2FSPROGS_FAKE_TIME: "1" },
  });
  return out;
}
