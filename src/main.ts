// Entry point of the sealroot binary: build the real system layer, run the CLI, exit with its code.
// Invoked through a link named `ostree-prepare-root`, it takes that program's arguments. Thin by design;
// everything testable lives below src/cli/ and the pure layers.

import { runCli } from "./cli/index.ts";
import { ostreePrepareRootArgs } from "./cli/prepare-root.ts";
import { realFs } from "./sys/fs.ts";

const invokedAs = (process.argv0 ?? "").split("/").pop();
const args = process.argv.slice(2);
const code = await runCli(invokedAs === "ostree-prepare-root" ? ostreePrepareRootArgs(args) : args, {
  fs: realFs,
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
});
process.exitCode = code;
