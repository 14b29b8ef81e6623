// Writing files for the build-side commands: atomic replace (write a temporary file beside the target,
// fsync, rename) so a crash never leaves a half-written key, commitmeta or image; and the OS's random
// source for key generation; and writing all of a text to a descriptor (the structured log on stdout).

import { closeSync, fchmodSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { sysError } from "./errno.ts";

export function writeFileAtomic(path: string, data: Uint8Array | string, mode = 0o644): void {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  writeFileAtomicWith(path, mode, (write) => write(bytes));
}

/**
 * writeFileAtomic() of content that `produce` hands to `write` in chunks, in order, so the whole of it
 * need never be in memory. An error thrown by `produce` itself removes the temporary file and passes on
 * unchanged; file errors become SysError.
 */
export function writeFileAtomicWith(
  path: string,
  mode: number,
  produce: (write: (chunk: Uint8Array) => void) => void,
): void {
  const tmp = join(dirname(path), `.${basename(path)}.tmp${process.pid}`);
  let fd: number;
  try {
    fd = openSync(tmp, "wx", mode);
  } catch (e) {
    throw sysError("create", tmp, (e as NodeJS.ErrnoException).code ?? "EIO");
  }
  const failed = (e: unknown) => sysError("write", path, (e as NodeJS.ErrnoException).code ?? "EIO");
  try {
    try {
      fchmodSync(fd, mode); // exact mode, whatever the umask
    } catch (e) {
      throw failed(e);
    }
    produce((chunk) => {
      try {
        let off = 0;
        while (off < chunk.length) off += writeSync(fd, chunk, off, chunk.length - off);
      } catch (e) {
        throw failed(e);
      }
    });
    try {
      fsyncSync(fd);
      closeSync(fd);
      renameSync(tmp, path);
    } catch (e) {
      throw failed(e);
    }
  } catch (e) {
    closeBestEffort(fd);
    unlinkBestEffort(tmp);
    throw e;
  }
}

function closeBestEffort(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed after a successful close; nothing to report
  }
}

/** Removes a temporary file after a failure; its absence is fine, and the failure itself is what is reported. */
export function unlinkBestEffort(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // the temporary file may not exist; the original error is what matters
  }
}

/** `n` bytes from the Web Crypto CSPRNG (the kernel's getrandom; Bun's global is native, whereas loading
 * node:crypto costs ~0.15 s of a boot under TCG). At most 65,536 bytes a call. */
export function randomBytes(n: number): Uint8Array {
  return globalThis.crypto.getRandomValues(new Uint8Array(n));
}

/** write(2) until all of `text` is out: a pipe may take part of it, or (non-blocking) none yet. */
export function writeAll(fd: number, text: string): void {
  let rest = Buffer.from(text);
  while (rest.length > 0) {
    try {
      rest = rest.subarray(writeSync(fd, rest));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EAGAIN") throw e;
    }
  }
}
