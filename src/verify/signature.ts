// The commit-signature verdict: does any `ostree.sign.ed25519` signature over the exact `.commit` bytes
// verify with any trusted key? Pure; returns a verdict ({ok:false, reason}) rather than throwing, so only
// the orchestrator turns a refusal into a boot failure. Malformed entries (wrong length) never verify and
// are named in the reason; they do not stop the other signatures from being tried (ostree aborts instead).
// More than MAX_SIGNATURES is refused before any is tried.

import { toHex } from "../formats/bytes.ts";
import { ED25519_SIGNATURE_KEY } from "../formats/ostree/objects.ts";
import { verifyDetached } from "./ed25519.ts";

/**
 * Most signatures tried per commit. `ostree sign` appends one per key it signs with, so a commit carries
 * a handful. Each one costs an ed25519 check per trusted key (~1.5 ms natively: 10,000 junk signatures
 * in an unverified `.commitmeta` held the boot for 15 s), so past the cap none is tried.
 */
export const MAX_SIGNATURES = 256;

export type SignatureVerdict =
  | { ok: true; key: Uint8Array; keyHex: string; signatureIndex: number }
  | { ok: false; reason: string; tried: number; expected?: string };

/**
 * `signatures` is the decoded `ostree.sign.ed25519` value (undefined when the commit has no such key,
 * which includes a missing or unreadable `.commitmeta`). `keys` are 32-byte public keys.
 */
export function verifyCommitSignatures(
  commit: Uint8Array,
  signatures: readonly Uint8Array[] | undefined,
  keys: readonly Uint8Array[],
): SignatureVerdict {
  if (keys.length === 0) return { ok: false, reason: "no trusted public keys given", tried: 0 };
  if (!signatures || signatures.length === 0) {
    return {
      ok: false,
      reason: `no ${ED25519_SIGNATURE_KEY} signatures in the commit's detached metadata`,
      tried: 0,
    };
  }
  if (signatures.length > MAX_SIGNATURES) {
    return {
      ok: false,
      reason: `${signatures.length} signatures`,
      expected: `at most ${MAX_SIGNATURES} signatures`,
      tried: 0,
    };
  }
  const malformed: string[] = [];
  for (const [i, sig] of signatures.entries()) {
    if (sig.length !== 64) {
      malformed.push(`signature ${i + 1} is ${sig.length} bytes, expected 64`);
      continue;
    }
    for (const key of keys) {
      if (key.length === 32 && verifyDetached(sig, commit, key)) {
        return { ok: true, key, keyHex: toHex(key), signatureIndex: i };
      }
    }
  }
  const n = signatures.length;
  const k = keys.length;
  const extra = malformed.length > 0 ? ` (${malformed.join("; ")})` : "";
  return {
    ok: false,
    reason: `none of ${n} signature${n === 1 ? "" : "s"} verifies with ${k === 1 ? "the trusted key" : `any of ${k} trusted keys`}${extra}`,
    tried: n,
  };
}
