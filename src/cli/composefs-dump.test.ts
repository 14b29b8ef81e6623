import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import yargs from "yargs";
import { COMPOSEFS } from "../../test/helpers/fixtures.ts";
import { FormatError, SysError } from "../base/errors.ts";
import type { FsRead } from "../base/fs.ts";
import { composefsDumpCommand, composefsDumpText } from "./composefs-dump.ts";
import type { CliContext } from "./context.ts";
import { errorLine } from "./context.ts";

function context(files: Record<string, Uint8Array>) {
  const out: string[] = [];
  const fs = {
    readFile(path: string) {
      const f = files[path];
      if (f === undefined) throw new SysError("ENOENT", `Cannot read ${JSON.stringify(path)}: no such file`);
      return f;
    },
    lstatIfExists: (path: string) => (files[path] === undefined ? undefined : { kind: "file" }),
  } as unknown as FsRead;
  const ctx: CliContext = { fs, out: (t) => out.push(t), err: () => {} };
  return { ctx, out };
}

/** Runs the command the way runCli does (strict yargs, errors thrown) and returns [exit, stdout, error]. */
async function run(argv: string[], files: Record<string, Uint8Array>): Promise<[number, string, string]> {
  const { ctx, out } = context(files);
  let exit = 0;
  const y = composefsDumpCommand(
    yargs(argv)
      .strict()
      .fail((msg, err) => {
        throw err ?? new Error(msg);
      }),
    ctx,
    (c) => {
      exit = c;
    },
  );
  try {
    await y.parseAsync();
  } catch (e) {
    return [1, out.join(""), errorLine(e)];
  }
  return [exit, out.join(""), ""];
}

const image = readFileSync(join(COMPOSEFS, "hardlinks.cfs"));

describe("sealroot composefs dump", () => {
  it("prints exactly the composefs-info dump text", async () => {
    const [exit, stdout, error] = await run(["composefs", "dump", "/img.cfs"], { "/img.cfs": image });
    expect({ exit, error }).toEqual({ exit: 0, error: "" });
    expect(stdout).toBe(readFileSync(join(COMPOSEFS, "hardlinks.cfs.dump"), "latin1"));
  });

  it("names the image and the field on a malformed image", async () => {
    const bad = image.slice();
    bad[1036] = 9;
    const [exit, stdout, error] = await run(["composefs", "dump", "/bad.cfs"], { "/bad.cfs": bad });
    expect([exit, stdout, error]).toEqual([
      1,
      "",
      'Cannot read composefs image "/bad.cfs": superblock blkszbits expected 12, got 9',
    ]);
  });

  it("passes a missing file's system error through", async () => {
    const [exit, , error] = await run(["composefs", "dump", "/nope.cfs"], {});
    expect([exit, error]).toEqual([1, 'Cannot read "/nope.cfs": no such file']);
  });

  it("composefsDumpText() throws FormatError carrying the path and the reader's cause", () => {
    const { ctx } = context({ "/t.cfs": image.slice(0, 4096) });
    let caught: unknown;
    try {
      composefsDumpText(ctx, "/t.cfs");
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(FormatError);
    expect((caught as FormatError).data.path).toBe("/t.cfs");
    expect((caught as FormatError).cause).toBeInstanceOf(FormatError);
  });
});
