// ed25519 key files as ostree writes and reads them: a public key file holds one base64 32-byte key per
// line (prepare-root's `keypath`, `ostree sign --keys-file`); a secret key is base64 of libsodium's 64-byte
// seed ‖ public key (`ostree sign` KEY-ID or keys file). Pure: text or bytes in, keys out, and the writers
// back. Unlike ostree, one malformed public-key line is reported and skipped instead of failing every key.

import { FormatError, q } from "../base/errors.ts";
import { toHex } from "../formats/bytes.ts";
import { checkSecretKey, PUBLIC_KEY_BYTES, SECRET_KEY_BYTES } from "./ed25519.ts";

/** Size cap for a key file: a real one is a few lines of 45 or 89 bytes. */
export const MAX_KEY_FILE_BYTES = 1 << 20;

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const B64_INDEX = new Map([...B64].map((c, i) => [c, i]));

/** Standard base64 with `=` padding (RFC 4648 §4), as GLib's g_base64_encode writes it. */
export function encodeBase64(b: Uint8Array): string {
  let out = "";
  for (let i = 0; i < b.length; i += 3) {
    const n = ((b[i] ?? 0) << 16) | ((b[i + 1] ?? 0) << 8) | (b[i + 2] ?? 0);
    const chars = Math.min(4, Math.ceil(((b.length - i) * 8) / 6));
    for (let j = 0; j < 4; j++) out += j < chars ? B64[(n >> (18 - 6 * j)) & 63] : "=";
  }
  return out;
}

/**
 * Strict standard-alphabet base64: padding optional but, if present, complete; no whitespace or other
 * characters inside. Unused low bits of the last character are ignored, as GLib's decoder does.
 * Returns `undefined` for text that is not base64.
 */
export function decodeBase64(s: string): Uint8Array | undefined {
  const body = s.replace(/={1,2}$/, "");
  if (body.length !== s.length && s.length % 4 !== 0) return undefined;
  if (body.length % 4 === 1) return undefined;
  const out = new Uint8Array(Math.floor((body.length * 6) / 8));
  let acc = 0;
  let bits = 0;
  let at = 0;
  for (const c of body) {
    const v = B64_INDEX.get(c);
    if (v === undefined) return undefined;
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[at++] = (acc >> bits) & 0xff;
    }
  }
  return out;
}

export interface KeyFileProblem {
  /** 1-based line number. */
  line: number;
  /** What is wrong with it, e.g. `decodes to 31 bytes, expected 32`. */
  reason: string;
}

export interface PublicKeyFile {
  /** Well-formed keys in file order, duplicates dropped. */
  keys: Uint8Array[];
  /** Malformed lines, skipped. */
  problems: KeyFileProblem[];
}

function textOf(data: Uint8Array | string, action: string, path: string): string {
  const size = data.length;
  if (size > MAX_KEY_FILE_BYTES) {
    throw new FormatError(
      `Cannot ${action} ${q(path)}: ${size} bytes, expected at most ${MAX_KEY_FILE_BYTES}`,
      {
        path,
        size,
        max: MAX_KEY_FILE_BYTES,
      },
    );
  }
  if (typeof data === "string") return data;
  // Byte-for-char (latin1): any non-ASCII byte then fails the base64 check of its line.
  let s = "";
  for (let i = 0; i < data.length; i += 8192) s += String.fromCharCode(...data.subarray(i, i + 8192));
  return s;
}

/** Lines split on "\n", each stripped of surrounding spaces, tabs and "\r"; a final newline ends no line. */
function linesOf(text: string): string[] {
  const lines = text.split("\n");
  if (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  return lines.map((l) => l.replace(/^[ \t\r]+|[ \t\r]+$/g, ""));
}

function decodeKeyLine(line: string, expected: number): Uint8Array | string {
  const bytes = decodeBase64(line);
  if (bytes === undefined) return "not base64";
  if (bytes.length !== expected) return `decodes to ${bytes.length} bytes, expected ${expected}`;
  return bytes;
}

/**
 * A public key file: one base64 32-byte ed25519 key per line, empty lines skipped. A malformed line is
 * returned in `problems` and does not disable the others; a file with no well-formed key at all is a
 * FormatError (ostree: `public key file specified, but no public keys found`).
 */
export function parsePublicKeyFile(data: Uint8Array | string, path: string): PublicKeyFile {
  const lines = linesOf(textOf(data, "read public key file", path));
  const keys: Uint8Array[] = [];
  const seen = new Set<string>();
  const problems: KeyFileProblem[] = [];
  lines.forEach((line, i) => {
    if (line === "") return;
    const r = decodeKeyLine(line, PUBLIC_KEY_BYTES);
    if (typeof r === "string") problems.push({ line: i + 1, reason: r });
    else if (!seen.has(toHex(r))) {
      seen.add(toHex(r));
      keys.push(r);
    }
  });
  if (keys.length === 0) {
    const seen =
      problems.length === 0 ? "no key lines" : problems.map((p) => `line ${p.line}: ${p.reason}`).join("; ");
    throw new FormatError(
      `Cannot read public key file ${q(path)}: ${seen}, expected at least one line with a base64 ${PUBLIC_KEY_BYTES}-byte ed25519 public key`,
      { path, problems },
    );
  }
  return { keys, problems };
}

/**
 * One secret key as `ostree sign` takes it on the command line: base64 of 64 bytes, seed ‖ public key.
 * The public half must be the seed's public key. `what` names the source for messages.
 */
export function parseSecretKey(text: string, what = "ed25519 secret key"): Uint8Array {
  const r = decodeKeyLine(text.replace(/^[ \t\r\n]+|[ \t\r\n]+$/g, ""), SECRET_KEY_BYTES);
  if (typeof r === "string") {
    throw new FormatError(`Cannot read ${what}: ${r}, expected base64 of seed ‖ public key`, {
      what,
      reason: r,
    });
  }
  checkSecretKey(r, what);
  return r;
}

/**
 * A secret key file as `ostree sign --keys-file` reads it: every line one base64 64-byte secret key. Every
 * line must be a good key (ostree fails on an empty line: "Invalid base64 blob format"); no key is an error.
 */
export function parseSecretKeyFile(data: Uint8Array | string, path: string): Uint8Array[] {
  const lines = linesOf(textOf(data, "read secret key file", path));
  if (lines.length === 0) {
    throw new FormatError(
      `Cannot read secret key file ${q(path)}: no lines, expected one base64 secret key per line`,
      {
        path,
      },
    );
  }
  return lines.map((line, i) => {
    const what = `secret key file ${q(path)} line ${i + 1}`;
    if (line === "") {
      throw new FormatError(`Cannot read ${what}: empty line, expected base64 of seed ‖ public key`, {
        path,
        line: i + 1,
      });
    }
    return parseSecretKey(line, what);
  });
}

/** A public key file in ostree's format: base64 of each 32-byte key, one per line, each ending in "\n". */
export function formatPublicKeyFile(keys: readonly Uint8Array[]): string {
  return keys
    .map((k) => {
      if (k.length !== PUBLIC_KEY_BYTES) {
        throw new FormatError(
          `Cannot write public key file: ed25519 public key is ${k.length} bytes, expected ${PUBLIC_KEY_BYTES}`,
          { actual: k.length, expected: PUBLIC_KEY_BYTES },
        );
      }
      return `${encodeBase64(k)}\n`;
    })
    .join("");
}

/** A secret key file as `ostree sign` reads it: base64 of seed ‖ public key, then "\n". */
export function formatSecretKeyFile(secretKey: Uint8Array): string {
  checkSecretKey(secretKey);
  return `${encodeBase64(secretKey)}\n`;
}
