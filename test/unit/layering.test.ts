// DESIGN.md's layers, enforced: every file of src/ imports only what its layer may (test/helpers/layers.ts
// holds the table), so `npm run check` fails on a violation — shown here with deliberate ones.

import { dirname, join, normalize } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "../helpers/fixtures.ts";
import { importsOf, layerOf, sourceFiles, violations } from "../helpers/layers.ts";

describe("src/ keeps DESIGN.md's layers", () => {
  it("has no import a layer may not make", () => {
    const files = sourceFiles(ROOT);
    expect(files.length).toBeGreaterThan(100);
    expect(violations(files)).toEqual([]);
  });

  it("keeps the VM tooling (qemu/, initrd/) below the tests: they import nothing under test/", () => {
    const tooling = [...sourceFiles(ROOT, "qemu"), ...sourceFiles(ROOT, "initrd")];
    const intoTests = tooling.flatMap((f) =>
      importsOf(f.text)
        .filter((i) => i.spec.startsWith(".") && normalize(join(dirname(f.path), i.spec)).startsWith("test/"))
        .map((i) => `${f.path}:${i.line}: ${i.spec}`),
    );
    expect(tooling.length).toBeGreaterThan(5);
    expect(intoTests).toEqual([]);
  });

  it("puts every source file in a layer", () => {
    expect(sourceFiles(ROOT).filter((f) => layerOf(f.path) === undefined)).toEqual([]);
  });
});

describe("the layer check catches a deliberate violation", () => {
  it.each([
    {
      name: "the boot spelling out mount flags instead of stating an intent",
      path: "src/boot/bad.ts",
      text: 'import { MS_BIND } from "../sys/ffi/libc.ts";\n',
      found: ['src/boot/bad.ts:1: boot may not import sys/ffi ("../sys/ffi/libc.ts")'],
    },
    {
      name: "policy reaching into the OS",
      path: "src/core/bad.ts",
      text: 'import { FormatError } from "../base/errors.ts";\nimport { realSys } from "../sys/real.ts";\n',
      found: ['src/core/bad.ts:2: core may not import sys ("../sys/real.ts")'],
    },
    {
      name: "a codec using node:fs",
      path: "src/formats/erofs/bad.ts",
      text: 'import { readFileSync } from "node:fs";\n',
      found: ['src/formats/erofs/bad.ts:1: formats may not use node:* ("node:fs")'],
    },
    {
      name: "ffi-rs outside sys/ffi",
      path: "src/sys/bad.ts",
      text: 'import { load } from "ffi-rs";\n',
      found: ['src/sys/bad.ts:1: sys may not use ffi-rs ("ffi-rs")'],
    },
    {
      name: "the OS layer depending on policy",
      path: "src/sys/bad.ts",
      text: 'import type {\n  Decision,\n} from "../core/decision.ts";\n',
      found: ['src/sys/bad.ts:1: sys may not import core ("../core/decision.ts")'],
    },
    {
      name: "a base module depending on a codec",
      path: "src/base/bad.ts",
      text: 'export { toHex } from "../formats/bytes.ts";\n',
      found: ['src/base/bad.ts:1: base may not import formats ("../formats/bytes.ts")'],
    },
    {
      name: "the boot shell importing the CLI, dynamically",
      path: "src/boot/bad.ts",
      text: 'const m = await import("../cli/index.ts");\n',
      found: ['src/boot/bad.ts:1: boot may not import cli ("../cli/index.ts")'],
    },
    {
      name: "a command (or its test) importing the CLI's entry point",
      path: "src/cli/bad.test.ts",
      text: 'import { runCli } from "./index.ts";\n',
      found: [
        `src/cli/bad.test.ts:1: a command may not import the CLI's entry point ("./index.ts"): use cli/context.ts`,
      ],
    },
    {
      name: "a command touching the OS itself, not through sys/",
      path: "src/cli/bad.ts",
      text: 'import { writeSync } from "node:fs";\n',
      found: ['src/cli/bad.ts:1: cli may not use node:* ("node:fs")'],
    },
    {
      name: "src importing test code",
      path: "src/core/bad.ts",
      text: 'import { FakeSys } from "../../test/helpers/fake-sys.ts";\n',
      found: ['src/core/bad.ts:1: src/ may not import outside src/ ("../../test/helpers/fake-sys.ts")'],
    },
    {
      name: "a type-only node import where no exception names it",
      path: "src/core/bad.ts",
      text: 'import type * as C from "node:crypto";\n',
      found: ['src/core/bad.ts:1: core may not use node:* ("node:crypto")'],
    },
  ])("$name", ({ path, text, found }) => {
    expect(violations([{ path, text }])).toEqual(found);
  });

  it("reads static, re-export, side-effect and dynamic imports with their lines", () => {
    expect(
      importsOf(
        'import a from "a";\nimport type { B } from "./b.ts";\nexport { c } from "./c.ts";\nimport "./d.ts";\nconst e = await import("./e.ts");\nexport const f = 1;\n',
      ),
    ).toEqual([
      { spec: "a", line: 1, typeOnly: false },
      { spec: "./b.ts", line: 2, typeOnly: true },
      { spec: "./c.ts", line: 3, typeOnly: false },
      { spec: "./d.ts", line: 4, typeOnly: false },
      { spec: "./e.ts", line: 5, typeOnly: false },
    ]);
  });
});
