// The yargs command tree (strict). Each command lives in its own module and returns an exit code; this
// file only registers them and maps thrown errors to one line on stderr and exit 1.

import yargs from "yargs";
import { composefsDumpCommand } from "./composefs-dump.ts";
import { composefsImageCommand } from "./composefs-image.ts";
import { type CliContext, type CommandModule, errorLine } from "./context.ts";
import { deployImageCommand } from "./deploy-image.ts";
import { enableVerityCommand } from "./enable-verity.ts";
import { failClosedCommand } from "./fail-closed.ts";
import { fsverityDigestCommand } from "./fsverity-digest.ts";
import { initCommand } from "./init.ts";
import { keygenCommand } from "./keygen.ts";
import { lsCommand } from "./ls.ts";
import { measureCommand } from "./measure.ts";
import { mkcomposefsCommand } from "./mkcomposefs.ts";
import { pcrReplayCommand } from "./pcr-replay.ts";
import { prepareRootCommand } from "./prepare-root.ts";
import { sealCommand } from "./seal.ts";
import { showCommand } from "./show.ts";
import { signCommand } from "./sign.ts";
import { verifyCommand } from "./verify.ts";
import { verifyCommitCommand } from "./verify-commit.ts";

export type { CommandModule };

const commands: CommandModule[] = [
  fsverityDigestCommand,
  keygenCommand,
  showCommand,
  lsCommand,
  signCommand,
  verifyCommitCommand,
  verifyCommand,
  composefsDumpCommand,
  measureCommand,
  enableVerityCommand,
  prepareRootCommand,
  composefsImageCommand,
  sealCommand,
  deployImageCommand,
  mkcomposefsCommand,
  initCommand,
  failClosedCommand,
  pcrReplayCommand,
];

export async function runCli(argv: string[], ctx: CliContext): Promise<number> {
  let exit = 0;
  const setExit = (code: number) => {
    exit = code;
  };
  let y = yargs(argv)
    .scriptName("sealroot")
    .strict()
    .demandCommand(1, "Name a command; see sealroot --help")
    .version(false)
    .help()
    .wrap(100)
    .fail((msg, err) => {
      throw err ?? new CliUsage(msg);
    });
  for (const register of commands) y = register(y, ctx, setExit);
  try {
    await y.parseAsync();
  } catch (e) {
    if (e instanceof CliUsage) {
      ctx.err(`sealroot: ${e.message}\n`);
      return 2;
    }
    ctx.err(`sealroot: ${errorLine(e)}\n`);
    return 1;
  }
  return exit;
}

class CliUsage extends Error {}
