// Every libc symbol sealroot calls, declared once through ffi-rs (the only importer of ffi-rs). Each
// wrapper gives the C prototype in a comment and returns the raw result with errno; turning errno into a
// typed error is src/sys/errno.ts's job. Buffers passed as U8Array are written in place by the callee.

import { DataType, load, open } from "ffi-rs";

let opened = false;
function libc(): void {
  if (!opened) {
    open({ library: "libc", path: "" });
    opened = true;
  }
}

export interface CResult {
  value: number;
  errno: number;
}

function call(funcName: string, retType: DataType, paramsType: DataType[], paramsValue: unknown[]): CResult {
  libc();
  const r = load({
    library: "libc",
    funcName,
    retType,
    paramsType,
    paramsValue,
    errno: true,
  } as never) as unknown as { value: number | bigint; errnoCode: number };
  return { value: Number(r.value), errno: r.value === -1 || r.value === -1n ? r.errnoCode : 0 };
}

/** ssize_t lgetxattr(const char *path, const char *name, void *value, size_t size); */
export function lgetxattr(path: string, name: string, buf: Uint8Array): CResult {
  return call(
    "lgetxattr",
    DataType.I64,
    [DataType.String, DataType.String, DataType.U8Array, DataType.U64],
    [path, name, buf, buf.length],
  );
}

/** ssize_t llistxattr(const char *path, char *list, size_t size); */
export function llistxattr(path: string, buf: Uint8Array): CResult {
  return call(
    "llistxattr",
    DataType.I64,
    [DataType.String, DataType.U8Array, DataType.U64],
    [path, buf, buf.length],
  );
}
