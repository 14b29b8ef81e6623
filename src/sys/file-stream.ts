// Streaming reads of a whole file in large chunks, synchronously and in constant memory: one reused buffer,
// positional reads (pread) from offset 0, so a file descriptor's own offset is neither used nor moved —
// the boot path measures the composefs image on the very fd it then mounts. Errors become SysError
// naming the path and errno. Consumers (e.g. the fs-verity hasher) get each chunk only for the call.

import { closeSync, openSync, readSync } from "node:fs";
import { sysError } from "./errno.ts";

/** 1 MiB: read overhead is negligible by then (1, 2, 4, 8 MiB hash 1 GiB alike) and it is little memory. */
export const DEFAULT_CHUNK_SIZE = 1 << 20;

/** Called with each chunk in file order; the bytes are valid only until the callback returns. */
export type ChunkSink = (chunk: Uint8Array) => void;

function errCode(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException)?.code;
}

/**
 * Reads the open file `fd` from offset 0 to its end, handing each chunk to `sink`; returns the bytes read.
 * `path` only names the file in errors.
 */
export function streamFd(fd: number, path: string, sink: ChunkSink, chunkSize = DEFAULT_CHUNK_SIZE): number {
  const buf = new Uint8Array(chunkSize);
  let pos = 0;
  for (;;) {
    let n: number;
    try {
      n = readSync(fd, buf, 0, chunkSize, pos);
    } catch (e) {
      const code = errCode(e);
      if (code) throw sysError("read", path, code);
      throw e;
    }
    if (n === 0) return pos;
    sink(buf.subarray(0, n));
    pos += n;
  }
}

/** Opens `path` read-only, streams it to `sink` (see streamFd), closes it; returns the bytes read. */
export function streamFile(path: string, sink: ChunkSink, chunkSize = DEFAULT_CHUNK_SIZE): number {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (e) {
    const code = errCode(e);
    if (code) throw sysError("open", path, code);
    throw e;
  }
  try {
    return streamFd(fd, path, sink, chunkSize);
  } finally {
    closeSync(fd);
  }
}
