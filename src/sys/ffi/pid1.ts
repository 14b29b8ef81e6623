// The libc calls only the PID-1 mode makes, declared once through ffi-rs: finit_module(2) to load kernel
// modules, execl(3) to hand the process over (switch_root, a rescue shell), reboot(2) to power off after a
// refused boot, and sync(2) before it. Wrappers return the raw CResult with errno; src/sys/real.ts turns
// it into typed errors. Kept apart from libc.ts because nothing else in sealroot may call them.

import { DataType, load, open as openLibrary } from "ffi-rs";
import { type CResult, syscall } from "./libc.ts";

let opened = false;
function libc(): void {
  if (!opened) {
    // the process's own libc (dlopen(NULL)); its own library name keeps this module independent of libc.ts
    openLibrary({ library: "libc-pid1", path: "" });
    opened = true;
  }
}

function call(funcName: string, retType: DataType, paramsType: DataType[], paramsValue: unknown[]): CResult {
  libc();
  const r = load({
    library: "libc-pid1",
    funcName,
    retType,
    paramsType,
    paramsValue,
    errno: true,
  } as never) as unknown as { value: number | bigint; errnoCode: number };
  return { value: Number(r.value), errno: r.value === -1 || r.value === -1n ? r.errnoCode : 0 };
}

/** <asm/unistd_64.h> (x86_64) and <asm-generic/unistd.h> (aarch64). */
const FINIT_MODULE: Record<string, number> = { x64: 313, arm64: 273 };

/** int finit_module(int fd, const char *param_values, int flags); — through syscall(2): glibc 2.36 has no
 * wrapper. */
export function finitModule(fd: number, params: string, flags: number): CResult {
  const nr = FINIT_MODULE[process.arch];
  if (nr === undefined)
    throw new Error(`Cannot call finit_module: architecture ${process.arch}, expected x64 or arm64`);
  return syscall(nr, fd, params, flags);
}

/** int execl(const char *path, const char *arg, ... /, (char *) NULL /); — returns only on failure. The
 * variadic strings travel as pointers in registers, as for a fixed prototype (x86_64 and aarch64 SysV). */
export function execl(path: string, argv: string[]): CResult {
  return call(
    "execl",
    DataType.I32,
    [DataType.String, ...argv.map(() => DataType.String), DataType.I64],
    [path, ...argv, 0],
  );
}

/** <sys/reboot.h> RB_POWER_OFF (LINUX_REBOOT_CMD_POWER_OFF). */
export const RB_POWER_OFF = 0x4321fedc;

/** int reboot(int op); — returns only on failure. */
export function reboot(op: number): CResult {
  return call("reboot", DataType.I32, [DataType.I32], [op]);
}

/** void sync(void); */
export function sync(): void {
  libc();
  load({ library: "libc-pid1", funcName: "sync", retType: DataType.Void, paramsType: [], paramsValue: [] });
}
