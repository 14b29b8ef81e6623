import { defineConfig } from "vitest/config";

// Test tiers (DESIGN.md): unit = pure and fast; privileged = root + unshare -m; vm = QEMU with the Debian
// kernel (real fs-verity); boot = whole initramfs kinds. CLI tests run the compiled binary built once.
export default defineConfig({
  test: {
    globalSetup: ["test/global-setup.ts"],
    testTimeout: 60_000,
    projects: [
      { extends: true, test: { name: "unit", include: ["src/**/*.test.ts", "test/unit/**/*.test.ts"] } },
      { extends: true, test: { name: "cli", include: ["test/cli/**/*.test.ts"] } },
      { extends: true, test: { name: "privileged", include: ["test/privileged/**/*.test.ts"] } },
      { extends: true, test: { name: "vm", include: ["test/vm/**/*.test.ts"], testTimeout: 1_800_000 } },
      { extends: true, test: { name: "boot", include: ["test/boot/**/*.test.ts"], testTimeout: 3_600_000 } },
    ],
  },
});
