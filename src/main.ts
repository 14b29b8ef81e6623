// Entry point of the sealroot binary: build the real system layer, run the CLI, exit with its code.
// Invoked through a link named `ostree-prepare-root` or `mkcomposefs`, it takes that program's arguments.
// Thin by design; everything testable lives below src/cli/ and the pure layers. No top-level await, so
// the binary can be compiled with --bytecode.

import type { CliContext } from "./cli/context.ts";
import { runCli } from "./cli/index.ts";
import { runMkcomposefs } from "./cli/mkcomposefs.ts";
import { ostreePrepareRootArgs } from "./cli/prepare-root.ts";
import { messageOf } from "./core/errors.ts";
import { realFs } from "./sys/fs.ts";

const ctx: CliContext = {
  fs: realFs,
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
};
const invokedAs = (process.argv0 ?? "").split("/").pop();
const args = process.argv.slice(2);

function run(): Promise<number> | number {
  if (invokedAs === "mkcomposefs") return runMkcomposefs(args, ctx);
  return runCli(invokedAs === "ostree-prepare-root" ? ostreePrepareRootArgs(args) : args, ctx);
}

Promise.resolve(run()).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`sealroot: ${messageOf(e)}\n`);
    process.exitCode = 1;
  },
);
