// Hostile inputs for the "an untrusted disk is refused quickly" tests and bench/hostile.ts (issue 11):
// `.commitmeta` files made of GVariant framing that an eager decoder expands, a huge string, thousands
// of junk signatures, and a bare-user-only repository whose few dirtrees form a DAG that lists billions
// of paths. Built here, from the spec, with raw framing where the encoder (normal form only) cannot.

import { chmodSync, lstatSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { sha256 } from "../../src/base/hash.ts";
import { toHex, utf8 } from "../../src/formats/bytes.ts";
import { encode, Variant } from "../../src/formats/gvariant.ts";
import {
  contentChecksum,
  ED25519_SIGNATURE_KEY,
  encodeCommit,
  encodeDirmeta,
  encodeDirtree,
  type LooseObjectExt,
  loosePath,
  S_IFDIR,
  S_IFREG,
} from "../../src/formats/ostree/objects.ts";

/** Runs `f` (for the tests' loose time checks), returns its value (or what it threw) and the seconds it took. */
export function timed<T>(f: () => T): { value?: T; error?: unknown; s: number } {
  const t0 = performance.now();
  try {
    const value = f();
    return { value, s: (performance.now() - t0) / 1000 };
  } catch (error) {
    return { error, s: (performance.now() - t0) / 1000 };
  }
}

/** GLib's framing: `body`, then one little-endian offset per end, of the smallest size that fits. */
function framed(body: Uint8Array, ends: number[]): Uint8Array {
  let n = 1;
  while (n < 8 && body.length + ends.length * n > 2 ** (8 * n) - 1) n *= 2;
  const out = new Uint8Array(body.length + ends.length * n);
  out.set(body);
  ends.forEach((end, k) => {
    for (let b = 0; b < n; b++) out[body.length + k * n + b] = Math.floor(end / 2 ** (8 * b)) % 256;
  });
  return out;
}

/** An `a{sv}` of raw entries: each key with the serialised bytes of its variant (value + NUL + type). */
export function rawVardict(entries: Array<[string, Uint8Array]>): Uint8Array {
  const parts: Uint8Array[] = [];
  const ends: number[] = [];
  let len = 0;
  for (const [key, v] of entries) {
    const pad = (8 - (len % 8)) % 8;
    const k = utf8.encode(`${key}\0`);
    const valueAt = k.length + ((8 - (k.length % 8)) % 8);
    const body = new Uint8Array(valueAt + v.length);
    body.set(k);
    body.set(v, valueAt);
    const entry = framed(body, [k.length]);
    parts.push(new Uint8Array(pad), entry);
    len += pad + entry.length;
    ends.push(len);
  }
  const body = new Uint8Array(len);
  let at = 0;
  for (const p of parts) {
    body.set(p, at);
    at += p.length;
  }
  return framed(body, ends);
}

/** A serialised variant: `value` bytes, NUL, type string. */
export function rawVariant(type: string, value: Uint8Array): Uint8Array {
  const out = new Uint8Array(value.length + 1 + type.length);
  out.set(value);
  out.set(utf8.encode(type), value.length + 1);
  return out;
}

/** The fixed-size member of the bomb's elements: 8192 `t`s, 64 KiB of zeros each time it is missing. */
const BOMB_TUPLE = `(${"t".repeat(8192)})`;

/**
 * A variant of `a(s(t…t))` whose body is nothing but zero framing offsets: every element is empty, so
 * an eager decoder makes each one a missing 64 KiB tuple of 8192 numbers (GLib would read them lazily).
 * `size` is the variant's serialised size; its body is the rest after the type, a multiple of 4.
 */
export function framingBombVariant(size: number): Uint8Array {
  let type = `a(s${BOMB_TUPLE})`;
  // a body over 64 KiB has 4-byte offsets; pad the type string (more `y` members) until it divides
  while ((size - 1 - type.length) % 4 !== 0) type = `${type.slice(0, -1)}y)`;
  return rawVariant(type, new Uint8Array(size - 1 - type.length));
}

/**
 * A `.commitmeta` of `size` bytes (≥ 64 KiB): one `bomb` entry of nested framing (framingBombVariant),
 * then the `after` entries (raw, e.g. a real signature). Exactly `size` when `after` is empty; otherwise
 * the largest such file that fits (entries after the bomb start 8-aligned).
 */
export function framingBombCommitmeta(size: number, after: Array<[string, Uint8Array]> = []): Uint8Array {
  const make = (v: number) => rawVardict([["bomb", framingBombVariant(v)], ...after]);
  let v = size - 64 - after.reduce((n, [k, x]) => n + k.length + x.length + 16, 0);
  let out = make(v);
  v += size - out.length;
  out = make(v);
  while (out.length > size) {
    v -= 1;
    out = make(v);
  }
  return out;
}

/** A `.commitmeta` of exactly `size` bytes: one entry holding one string of `A`s. */
export function stringBombCommitmeta(size: number): Uint8Array {
  const make = (n: number) => rawVardict([["bomb", rawVariant("s", new Uint8Array(n + 1).fill(0x41, 0, n))]]);
  const n = size - 64;
  const out = make(n + size - make(n).length);
  if (out.length !== size) throw new Error(`stringBombCommitmeta: made ${out.length} bytes, wanted ${size}`);
  return out;
}

/** A normal-form `.commitmeta` with `n` junk 64-byte `ostree.sign.ed25519` signatures (none verifies). */
export function junkSignaturesCommitmeta(n: number): Uint8Array {
  const sigs = Array.from({ length: n }, (_, k) => {
    const s = new Uint8Array(64);
    new DataView(s.buffer).setUint32(0, k + 1, true);
    return s;
  });
  return encode("a{sv}", [[ED25519_SIGNATURE_KEY, new Variant("aay", sigs)]]);
}

const obj = (repo: string, hex: string, ext: LooseObjectExt) => {
  mkdirSync(join(repo, "objects", hex.slice(0, 2)), { recursive: true });
  return join(repo, "objects", loosePath(hex, ext));
};

/** A fresh bare-user-only repository to write hand-made objects into (every object valid and named by its hash). */
export class HandMadeRepo {
  readonly repo: string;
  /** The one dirmeta (root:root 0755) and one content object (`f`, 0644, "sealroot\n") to build trees of. */
  readonly dirmeta: Uint8Array;
  readonly file: Uint8Array;

  constructor(readonly dir: string) {
    this.repo = join(dir, "repo");
    mkdirSync(join(this.repo, "refs/heads"), { recursive: true });
    writeFileSync(join(this.repo, "config"), "[core]\nrepo_version=1\nmode=bare-user-only\n");
    this.dirmeta = this.put(encodeDirmeta({ uid: 0, gid: 0, mode: S_IFDIR | 0o755, xattrs: [] }), "dirmeta");
    // bare-user-only hashes uid 0, gid 0 and the file's own mode
    const content = utf8.encode("sealroot\n");
    const mode = S_IFREG | 0o644;
    this.file = contentChecksum({ uid: 0, gid: 0, mode, xattrs: [], symlinkTarget: "" }, content);
    const path = obj(this.repo, toHex(this.file), "file");
    writeFileSync(path, content);
    chmodSync(path, 0o644);
    if (lstatSync(path).mode !== mode) throw new Error(`HandMadeRepo: ${path} is not mode 0644`);
  }

  /** Writes a metadata object; returns its checksum. */
  put(bytes: Uint8Array, ext: "commit" | "dirtree" | "dirmeta"): Uint8Array {
    const sum = sha256(bytes);
    writeFileSync(obj(this.repo, toHex(sum), ext), bytes);
    return sum;
  }

  /** A commit of the tree `rootDirtree`, under ref `name`; returns its checksum (hex). */
  commit(rootDirtree: Uint8Array, name = "main"): string {
    const c = this.put(
      encodeCommit({
        metadata: [],
        parent: new Uint8Array(0),
        related: [],
        subject: "hand-made",
        body: "",
        timestamp: 0n,
        rootDirtree,
        rootDirmeta: this.dirmeta,
      }),
      "commit",
    );
    writeFileSync(join(this.repo, "refs/heads", name), `${toHex(c)}\n`);
    return toHex(c);
  }
}

export interface DagRepo {
  repo: string;
  commit: string;
  /** Paths the full tree lists, root included. */
  entries: number;
  /** The dirtree checksums (hex), leaf first. */
  dirtrees: string[];
  /** The one content object (hex). */
  file: string;
}

/**
 * A repository (ref `dag`) whose commit's tree is a DAG of `levels` dirtrees: each lists the next one
 * `fanout` times (as `d0`, `d1`, …), the last holds one file `f`. Every object is valid and verifies;
 * only the expanded tree is huge: fanout^(levels-1) copies of `f`.
 */
export function dagRepo(dir: string, levels = 27, fanout = 2): DagRepo {
  const r = new HandMadeRepo(dir);
  let tree = r.put(encodeDirtree({ files: [{ name: "f", checksum: r.file }], dirs: [] }), "dirtree");
  const dirtrees = [toHex(tree)];
  let entries = 1;
  for (let level = 1; level < levels; level++) {
    const dirs = Array.from({ length: fanout }, (_, k) => ({
      name: `d${k}`,
      dirtree: tree,
      dirmeta: r.dirmeta,
    }));
    tree = r.put(encodeDirtree({ files: [], dirs }), "dirtree");
    dirtrees.push(toHex(tree));
    entries = fanout * (1 + entries);
  }
  return { repo: r.repo, commit: r.commit(tree, "dag"), entries: entries + 1, dirtrees, file: toHex(r.file) };
}

/**
 * The bytes of a dirtree whose file list is `n` empty elements: nothing but zero framing offsets,
 * 4 bytes each. An eager decoder builds `n` entries before any check can see them.
 */
export function framedDirtree(n: number): Uint8Array {
  const files = new Uint8Array(4 * n);
  // (a(say)a(sayay)): the files array, then the empty dirs array, then one offset (end of files)
  return framed(files, [files.length]);
}
