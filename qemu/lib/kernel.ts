// The Debian 13 cloud kernel the VM tier boots: runs qemu/fetch-kernel.sh (private apt config, cached under
// .cache/kernel/<release>) and reads the kernel.json it writes. No network when a kernel is already cached.

import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { REPO } from "../../initrd/build.ts";

export interface Kernel {
  dir: string;
  release: string;
  package: string;
  vmlinuz: string;
  /** Directory of decompressed `<name>.ko` files. */
  modulesDir: string;
  /** Module names in load order (dependencies first). */
  modules: string[];
  /** Selected CONFIG_ values ("y", "m" or ""). */
  config: Record<string, string>;
}

let memo: Kernel | undefined;

export function fetchKernel(): Kernel {
  if (memo) return memo;
  const dir = execFileSync(join(REPO, "qemu/fetch-kernel.sh"), [], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  }).trim();
  const meta = JSON.parse(readFileSync(join(dir, "kernel.json"), "utf8")) as {
    package: string;
    kernelRelease: string;
    vmlinuz: string;
    modules: string[];
    config: Record<string, string>;
  };
  const vmlinuz = join(dir, meta.vmlinuz);
  if (!existsSync(vmlinuz))
    throw new Error(`Cannot find the kernel "${vmlinuz}": absent, expected fetch-kernel.sh output`);
  memo = {
    dir,
    release: meta.kernelRelease,
    package: meta.package,
    vmlinuz,
    modulesDir: join(dir, "modules"),
    modules: meta.modules,
    config: meta.config,
  };
  return memo;
}
