// VM probe compiled with Bun: calls getpid() through ffi-rs and prints it as a marker. Proves inside the
// guest that the compiled binary runs under `-cpu max` and that ffi-rs's addon finds its libraries.

import { DataType, load, open } from "ffi-rs";

open({ library: "libc", path: "" });
const pid = load({
  library: "libc",
  funcName: "getpid",
  retType: DataType.I32,
  paramsType: [],
  paramsValue: [],
});
console.log(`SEALROOT-VM: ffi_getpid=${String(pid)}`);
console.log(`SEALROOT-VM: bun_version=${process.versions.bun ?? "none"}`);
