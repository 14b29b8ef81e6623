// Benchmark: cold `sealroot verify` of the golden sysroot (signed mode: policy, target, commit re-hash,
// signature, userspace fs-verity digest of the image) with the compiled binary: wall time and peak RSS
// under `/usr/bin/time -v` (Debian package `time`). "Cold" = the page cache dropped before each run when
// /proc/sys/vm/drop_caches is writable (root on a real kernel), said in the output otherwise. There is no
// reference tool to run beside it: ostree-prepare-root has no offline mode.
// Run: npm run bench:verify [-- --reps N]   (= bun run bench/verify.ts)

import { execFileSync, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { SEALROOT_BIN } from "../initrd/build.ts";
import { extracted, OSTREE } from "../test/helpers/fixtures.ts";

const ROOT = resolve(import.meta.dirname ?? new URL(".", import.meta.url).pathname, "..");
const BIN = SEALROOT_BIN;
const TIME = "/usr/bin/time";
const TARGET = "/ostree/boot.0/refos/e989f10c8387addbc8e73ca5ecd7a67c31eada810d013ff58001a1b72a3f3a82/0";
const i = process.argv.indexOf("--reps");
const reps = i >= 0 ? Number(process.argv[i + 1]) : 9;

if (!existsSync(BIN)) execFileSync("npm", ["run", "-s", "build"], { cwd: ROOT, stdio: "inherit" });
if (!existsSync(TIME)) throw new Error(`${TIME} missing: apt-get install -y time`);

const sysroot = extracted("ostree/sysroot.tar");
const root = mkdtempSync("/tmp/sealroot-bench-verify-");
mkdirSync(join(root, "etc/ostree"), { recursive: true });
writeFileSync(join(root, "etc/ostree/prepare-root.conf"), "[composefs]\nenabled = signed\n");
copyFileSync(join(OSTREE, "keys/ed25519.pub"), join(root, "etc/ostree/initramfs-root-binding.key"));

function dropCaches(): boolean {
  try {
    execFileSync("sync");
    writeFileSync("/proc/sys/vm/drop_caches", "3\n");
    return true;
  } catch {
    return false;
  }
}

const wall: number[] = [];
const rss: number[] = [];
let cold = true;
for (let n = 0; n < reps; n++) {
  cold = dropCaches() && cold;
  const out = join(root, "time.txt");
  const t0 = process.hrtime.bigint();
  const r = spawnSync(
    TIME,
    ["-v", "-o", out, BIN, "verify", "--sysroot", sysroot, "--cmdline", `ostree=${TARGET}`, "--root", root],
    {
      encoding: "utf8",
    },
  );
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`sealroot verify failed (exit ${r.status}): ${r.stderr}`);
  wall.push(ms);
  rss.push(Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(readFileSync(out, "utf8"))?.[1]));
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
console.log(
  `sealroot verify, signed mode, golden sysroot, ${reps} runs (${cold ? "page cache dropped before each" : "warm: drop_caches not writable here"})`,
);
console.log("| | median | min | max |\n|---|---|---|---|");
console.log(
  `| wall time | ${median(wall).toFixed(0)} ms | ${Math.min(...wall).toFixed(0)} ms | ${Math.max(...wall).toFixed(0)} ms |`,
);
console.log(
  `| peak RSS | ${(median(rss) / 1024).toFixed(1)} MiB | ${(Math.min(...rss) / 1024).toFixed(1)} MiB | ${(Math.max(...rss) / 1024).toFixed(1)} MiB |`,
);
