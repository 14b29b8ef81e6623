// DESIGN.md's layer rules for src/ as one table, and the checker `npm run check` runs over every source file
// (test/unit/layering.test.ts): which layer each file is in, which layers and packages it may import, and
// the few named exceptions. Imports are read with a small scanner (static `import`/`export … from`,
// side-effect `import "x"`, dynamic `import("x")`), not a parser: src/ writes them one way.

import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";

export type Layer = "base" | "formats" | "verify" | "core" | "sys/ffi" | "sys" | "boot" | "cli" | "main";

/**
 * The layers each layer may import (itself included). Dependencies point one way: cli → boot →
 * {core, sys}; core → {verify, formats}; verify → formats; everything → base (errors, hashing, the fs
 * interface). sys (the OS) knows no policy; the pure layers know no OS; the boot states intents
 * (sys/types.ts BootSys, InitMounts), so mount flags and ioctl numbers (sys/ffi) stay below it.
 */
export const MAY_IMPORT: Readonly<Record<Layer, readonly Layer[]>> = {
  base: ["base"],
  formats: ["base", "formats"],
  verify: ["base", "formats", "verify"],
  core: ["base", "formats", "verify", "core"],
  "sys/ffi": ["base", "sys/ffi"],
  sys: ["base", "formats", "sys/ffi", "sys"],
  boot: ["base", "formats", "verify", "core", "sys", "boot"],
  cli: ["base", "formats", "verify", "core", "sys/ffi", "sys", "boot", "cli"],
  main: ["base", "sys", "cli", "main"],
};

/** The packages (npm or `node:*`) each layer may import; the pure layers none but their one library. */
export const MAY_USE: Readonly<Record<Layer, readonly string[]>> = {
  base: [],
  formats: [],
  verify: ["@noble/ed25519"],
  core: [],
  "sys/ffi": ["ffi-rs", "node:*"],
  sys: ["node:*"],
  boot: [],
  cli: ["yargs"],
  main: [],
};

/** Named exceptions, each with its reason: `file` may import `spec` type-only. */
export const TYPE_ONLY_EXCEPTIONS: readonly { file: string; spec: string; why: string }[] = [
  {
    file: "src/base/hash.ts",
    spec: "node:crypto",
    why: "hashing is confined to one module, which takes node:crypto's type for the injected backend",
  },
];

export interface Import {
  spec: string;
  line: number;
  typeOnly: boolean;
}

const STATIC = /^[ \t]*(import|export)\s+(type\s+)?(?:[^'";]*?\s+from\s+)?"([^"]+)"/gm;
const DYNAMIC = /\bimport\(\s*"([^"]+)"\s*\)/g;

/** Every import of one file's text, with its line. */
export function importsOf(text: string): Import[] {
  const lineAt = (i: number) => text.slice(0, i).split("\n").length;
  const out: Import[] = [];
  for (const m of text.matchAll(STATIC)) {
    // `export const x = …` and the like have no specifier: the pattern only matches `… from "x"` / `import "x"`
    out.push({ spec: m[3] as string, line: lineAt(m.index ?? 0), typeOnly: m[2] !== undefined });
  }
  for (const m of text.matchAll(DYNAMIC)) {
    out.push({ spec: m[1] as string, line: lineAt(m.index ?? 0), typeOnly: false });
  }
  return out;
}

/** The layer of a repo-relative path under src/, or undefined outside src/. */
export function layerOf(path: string): Layer | undefined {
  const p = normalize(path);
  if (p === "src/main.ts") return "main";
  if (p.startsWith("src/sys/ffi/")) return "sys/ffi";
  const top = /^src\/([a-z]+)\//.exec(p)?.[1];
  const layers: Layer[] = ["base", "formats", "verify", "core", "sys", "boot", "cli"];
  return layers.find((l) => l === top);
}

function packageName(spec: string): string {
  if (spec.startsWith("node:")) return "node:*";
  const parts = spec.split("/");
  return spec.startsWith("@") ? parts.slice(0, 2).join("/") : (parts[0] as string);
}

/**
 * The rule violations of `files` (repo-relative path and text), one line each:
 * `src/core/x.ts:3: core may not import sys ("../sys/real.ts")`. Test files beside the code (`*.test.ts`)
 * may use anything but the CLI's entry point.
 */
export function violations(files: readonly { path: string; text: string }[]): string[] {
  const out: string[] = [];
  for (const f of files) {
    const layer = layerOf(f.path);
    if (layer === undefined) continue;
    const isTest = f.path.endsWith(".test.ts");
    for (const imp of importsOf(f.text)) {
      const at = `${f.path}:${imp.line}`;
      if (imp.spec.startsWith(".")) {
        const target = normalize(join(dirname(f.path), imp.spec));
        if (target === "src/cli/index.ts" && f.path.startsWith("src/cli/")) {
          out.push(
            `${at}: a command may not import the CLI's entry point ("${imp.spec}"): use cli/context.ts`,
          );
          continue;
        }
        if (isTest) continue;
        const to = layerOf(target);
        if (to === undefined) out.push(`${at}: src/ may not import outside src/ ("${imp.spec}")`);
        else if (!MAY_IMPORT[layer].includes(to))
          out.push(`${at}: ${layer} may not import ${to} ("${imp.spec}")`);
        continue;
      }
      if (isTest) continue;
      const pkg = packageName(imp.spec);
      if (MAY_USE[layer].includes(pkg)) continue;
      const excused = TYPE_ONLY_EXCEPTIONS.some(
        (x) => x.file === f.path && x.spec === imp.spec && imp.typeOnly,
      );
      if (!excused) out.push(`${at}: ${layer} may not use ${pkg} ("${imp.spec}")`);
    }
  }
  return out;
}

/** Every .ts file under `dir` (repo-relative to `root`), with its text. */
export function sourceFiles(root: string, dir = "src"): { path: string; text: string }[] {
  const out: { path: string; text: string }[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(join(root, d), { withFileTypes: true })) {
      const rel = join(d, e.name);
      if (e.isDirectory()) walk(rel);
      else if (e.name.endsWith(".ts"))
        out.push({ path: relative(".", rel), text: readFileSync(join(root, rel), "utf8") });
    }
  };
  walk(dir);
  return out;
}
