import { describe, expect, it } from "vitest";
import { bootPath } from "./boot-path.ts";
import type { CliContext } from "./context.ts";

const ctx: CliContext = { fs: undefined as never, out: () => {}, err: () => {} };

describe("bootPath()", () => {
  it.each([
    [["init"]],
    [["prepare-root"]],
    [["prepare-root", "/sysroot"]],
    [["prepare-root", "relative/root"]],
  ])("takes the initramfs's own invocation %j", (argv) => {
    expect(bootPath(argv, ctx)).toBeTypeOf("function");
  });

  it.each([
    [[]],
    [["init", "extra"]],
    [["init", "--help"]],
    [["prepare-root", "--help"]],
    [["prepare-root", "--dry-run"]],
    [["prepare-root", "/sysroot", "--cmdline", "ostree=/x"]],
    [["prepare-root", "/sysroot", "extra"]],
    [["verify", "/sysroot"]],
    [["--help"]],
  ])("leaves %j to the yargs CLI", (argv) => {
    expect(bootPath(argv, ctx)).toBeUndefined();
  });
});
