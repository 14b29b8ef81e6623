// SHA-256 for every layer: the one module outside src/sys/ allowed a `node:` import (DESIGN.md: hashing is
// confined to one module). node:crypto runs natively under Node (vitest) and Bun (the compiled binary);
// nothing else here does I/O.

import { createHash } from "node:crypto";

export function sha256(data: Uint8Array): Uint8Array {
  return new Uint8Array(createHash("sha256").update(data).digest());
}

export interface Sha256 {
  update(data: Uint8Array): Sha256;
  digest(): Uint8Array;
}

export function createSha256(): Sha256 {
  const h = createHash("sha256");
  const api: Sha256 = {
    update(data) {
      h.update(data);
      return api;
    },
    digest: () => new Uint8Array(h.digest()),
  };
  return api;
}
