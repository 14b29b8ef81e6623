// Entry point of the sealroot binary: build the real system layer, run the CLI, exit with its code.
// Thin by design; everything testable lives below src/cli/ and the pure layers.

import { runCli } from "./cli/index.ts";
import { realFs } from "./sys/fs.ts";

const code = await runCli(process.argv.slice(2), {
  fs: realFs,
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
});
process.exitCode = code;
