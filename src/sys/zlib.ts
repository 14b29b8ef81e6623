// Raw-deflate decompression for archive-mode ostree objects (`.filez`), injected into the pure repository
// reader as its `inflateRaw`. node:zlib runs under Node and Bun alike. Output is capped by the caller;
// corrupt streams and over-cap output become FormatError, never a zlib RangeError.

import { inflateRawSync } from "node:zlib";
import { FormatError } from "../base/errors.ts";

/** Inflates a raw deflate stream; throws FormatError when it is corrupt or inflates beyond `maxOutput`. */
export function inflateRaw(compressed: Uint8Array, maxOutput: number): Uint8Array {
  try {
    const out = inflateRawSync(compressed, { maxOutputLength: Math.max(1, maxOutput) });
    if (out.length > maxOutput) throw new RangeError("over cap");
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const observed =
      code === "ERR_BUFFER_TOO_LARGE" || e instanceof RangeError
        ? `more than ${maxOutput} bytes`
        : `corrupt data (${(e as Error).message})`;
    throw new FormatError(
      `Cannot inflate deflate stream: ${observed}, expected a valid stream of at most ${maxOutput} bytes`,
      { maxOutput },
      { cause: e },
    );
  }
}
