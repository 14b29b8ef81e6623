// Builds dist/sealroot once per test run so CLI tests exercise the compiled binary, as users run it.
import { execFileSync } from "node:child_process";
import { ROOT } from "./helpers/fixtures.ts";

export default function setup(): void {
  if (process.env.SEALROOT_SKIP_BUILD === "1") return;
  execFileSync("node", ["scripts/build.mjs"], { cwd: ROOT, stdio: "inherit" });
}
