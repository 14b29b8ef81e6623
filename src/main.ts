// Entry point of the sealroot binary: build the real system layer, run the CLI, exit with its code.
// Invoked through a link named `ostree-prepare-root` or `mkcomposefs`, it takes that program's arguments.
// The initramfs's own invocations take cli/boot-path.ts, and the yargs tree is imported only for the
// rest (dynamic imports are evaluated on first use). No top-level await: the binary is built --bytecode.

import { messageOf } from "./base/errors.ts";
import { bootPath } from "./cli/boot-path.ts";
import type { CliContext } from "./cli/context.ts";
import { ostreePrepareRootArgs } from "./cli/prepare-root.ts";
import { realFs } from "./sys/fs.ts";

const ctx: CliContext = {
  fs: realFs,
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
};
const invokedAs = (process.argv0 ?? "").split("/").pop();
const args = process.argv.slice(2);

/** The binary starts with the JIT held back for the boot path (scripts/build.mjs); the build-side tools
 * run long loops and want it back. Absent outside a compiled Bun binary. */
function normalJitPolicy(): void {
  const bun = (globalThis as { Bun?: { unsafe?: { setJITPolicy?: (scale: number) => void } } }).Bun;
  bun?.unsafe?.setJITPolicy?.(1);
}

async function run(): Promise<number> {
  if (invokedAs === "mkcomposefs") {
    normalJitPolicy();
    return (await import("./cli/mkcomposefs.ts")).runMkcomposefs(args, ctx);
  }
  const argv = invokedAs === "ostree-prepare-root" ? ostreePrepareRootArgs(args) : args;
  const boot = bootPath(argv, ctx);
  if (boot) return boot();
  normalJitPolicy();
  return (await import("./cli/index.ts")).runCli(argv, ctx);
}

run().then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`sealroot: ${messageOf(e)}\n`);
    process.exitCode = 1;
  },
);
