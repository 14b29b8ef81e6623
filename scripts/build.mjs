// npm run build: compile src/main.ts into the single binary dist/sealroot with Bun.
// The release flags (release-flags.json, also read by bench/boot.ts) are what bench/prepare-root.ts and
// bench/boot.ts chose (see bench/README.md):
// bytecode skips parsing the bundle at every start, and the JIT policy keeps run-once startup code in
// the interpreter (under QEMU TCG, JIT-compiling it costs more than it saves); main.ts restores the
// normal policy for every command but the boot path. Arguments, when given, replace the release flags
// (`node scripts/build.mjs --minify`); `node scripts/build.mjs --plain` builds with none.
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";

const RELEASE_FLAGS = JSON.parse(readFileSync(new URL("release-flags.json", import.meta.url), "utf8"));
const given = process.argv.slice(2);
const flags = given.length === 0 ? RELEASE_FLAGS : given.filter((f) => f !== "--plain");
const out = process.env.SEALROOT_OUT ?? "dist/sealroot";
mkdirSync("dist", { recursive: true });
execFileSync("node_modules/.bin/bun", ["build", "--compile", ...flags, "src/main.ts", "--outfile", out], {
  stdio: "inherit",
});
