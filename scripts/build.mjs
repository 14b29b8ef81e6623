// npm run build: compile src/main.ts into the single binary dist/sealroot with Bun.
// Extra flags (e.g. --minify --bytecode for the size benchmark) pass through: node scripts/build.mjs --minify
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";

const extra = process.argv.slice(2);
const out = process.env.SEALROOT_OUT ?? "dist/sealroot";
mkdirSync("dist", { recursive: true });
execFileSync("node_modules/.bin/bun", ["build", "--compile", ...extra, "src/main.ts", "--outfile", out], {
  stdio: "inherit",
});
