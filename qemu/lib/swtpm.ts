// A fresh software TPM 2.0 (Debian's swtpm, libtpms) for one test: its state in a new temporary directory,
// either a command socket that sys/tpm.ts talks to directly (`server`, TPM2_Startup done by swtpm), or only
// the control socket that QEMU's `-tpmdev emulator` drives (the guest's firmware and kernel start it up).

import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const SWTPM = "/usr/bin/swtpm";

export interface Swtpm {
  dir: string;
  /** The control socket (QEMU's `-chardev socket,path=…`). */
  ctrl: string;
  /** The command socket, when started with `server`. */
  server?: string;
  /** Stops swtpm and removes its state. */
  stop(): void;
}

/** Why a TPM cannot be started here, or undefined when it can. */
export function swtpmUnavailable(): string | undefined {
  return existsSync(SWTPM) ? undefined : `no ${SWTPM} (Debian package swtpm; scripts/setup.sh installs it)`;
}

async function appears(path: string, child: ChildProcess, stderr: () => string): Promise<void> {
  for (let i = 0; i < 200 && !existsSync(path); i++) {
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  if (!existsSync(path))
    throw new Error(`Cannot start swtpm: ${path} did not appear (exit ${child.exitCode}): ${stderr()}`);
}

export async function startSwtpm(o: { server?: boolean } = {}): Promise<Swtpm> {
  const dir = mkdtempSync(join(tmpdir(), "sealroot-swtpm-"));
  const ctrl = join(dir, "ctrl.sock");
  const server = join(dir, "cmd.sock");
  const args = ["socket", "--tpm2", "--tpmstate", `dir=${dir}`, "--ctrl", `type=unixio,path=${ctrl}`];
  if (o.server) args.push("--server", `type=unixio,path=${server}`, "--flags", "startup-clear");
  const child = spawn(SWTPM, args, { stdio: ["ignore", "ignore", "pipe"] });
  let err = "";
  child.stderr?.on("data", (b: Buffer) => {
    err += b.toString();
  });
  await appears(o.server ? server : ctrl, child, () => err);
  return {
    dir,
    ctrl,
    ...(o.server ? { server } : {}),
    stop() {
      child.kill("SIGTERM");
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
