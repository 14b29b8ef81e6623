// Making new commit objects the way ostree does: the sealed copy of a commit (same tree, same fields,
// `ostree.composefs.digest.v0` set), its exact `.commit` bytes and checksum, and the order of the
// metadata keys. ostree adds a key by loading the a{sv} into a GVariantDict (a GLib GHashTable keyed by
// g_str_hash) and reading it back in hash-table slot order, so the key order — and with it the commit
// checksum — is GLib's; `variantDictEnd` reproduces that order. Pure: writing the bytes is the caller's.

import { FormatError } from "../../base/errors.ts";
import { sha256 } from "../../base/hash.ts";
import { toHex, utf8 } from "../bytes.ts";
import { Variant } from "../gvariant.ts";
import { COMPOSEFS_DIGEST_KEY, type Commit, encodeCommit, type MetadataEntries } from "./objects.ts";

/** GLib ghash.c: tables start at 1 << HASH_TABLE_MIN_SHIFT slots. */
const HASH_TABLE_MIN_SHIFT = 3;
/** ghash.c prime_mod[]: for a table of 1 << shift slots, the largest prime below it (initial bucket). */
const PRIME_MOD = [
  1, 2, 3, 7, 13, 31, 61, 127, 251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071, 262139, 524287,
  1048573, 2097143, 4194301, 8388593, 16777213, 33554393, 67108859, 134217689, 268435399, 536870909,
  1073741789, 2147483647,
];
/** ghash.c: slot hash 0 = unused, 1 = tombstone (never made here: GVariantDict only inserts). */
const UNUSED = 0;
/** Most keys a dictionary built here may hold (ostree metadata has a handful; bounds the emulation). */
export const MAX_DICT_KEYS = 1 << 20;

/** g_str_hash: djb2 over the key's bytes read as *signed* char, in 32-bit arithmetic. */
export function gStrHash(key: string): number {
  let h = 5381;
  for (const byte of utf8.encode(key)) h = (Math.imul(h, 33) + (byte >= 0x80 ? byte - 0x100 : byte)) >>> 0;
  return h;
}

/**
 * A GHashTable<string, V> reduced to what decides iteration order: GLib ≥ 2.60's open addressing with
 * quadratic probing from `(hash * 11) % prime`, growth when the occupied count reaches 15/16, and the
 * in-place resize that evicts and re-places entries slot by slot.
 */
class GHashTableOrder<V> {
  private shift = HASH_TABLE_MIN_SHIFT;
  private hashes: number[] = new Array(1 << HASH_TABLE_MIN_SHIFT).fill(UNUSED);
  private keys: Array<string | undefined> = new Array(1 << HASH_TABLE_MIN_SHIFT);
  private values: Array<V | undefined> = new Array(1 << HASH_TABLE_MIN_SHIFT);
  private nnodes = 0;
  private noccupied = 0;

  private get size(): number {
    return 1 << this.shift;
  }
  private get mask(): number {
    return this.size - 1;
  }
  private toIndex(hash: number): number {
    return (Math.imul(hash, 11) >>> 0) % (PRIME_MOD[this.shift] ?? 1);
  }

  /** g_hash_table_insert: a present key keeps its slot (and its key), only the value changes. */
  insert(key: string, value: V): void {
    let hash = gStrHash(key);
    if (hash <= 1) hash = 2;
    let index = this.toIndex(hash);
    let step = 0;
    while (this.hashes[index] !== UNUSED) {
      if (this.hashes[index] === hash && this.keys[index] === key) {
        this.values[index] = value;
        return;
      }
      step++;
      index = (index + step) & this.mask;
    }
    this.hashes[index] = hash;
    this.keys[index] = key;
    this.values[index] = value;
    this.nnodes++;
    this.noccupied++;
    this.maybeResize();
  }

  private maybeResize(): void {
    const size = this.size;
    const shrink = size > 1 << HASH_TABLE_MIN_SHIFT && Math.floor((size - 1) / 4) >= this.nnodes;
    const grow = size <= this.noccupied + Math.floor(this.noccupied / 16);
    if (shrink || grow) this.resize();
  }

  /** g_hash_table_resize + resize_map: the in-place relocation with its "placed" bitmap. */
  private resize(): void {
    const oldSize = this.size;
    const target = this.nnodes + Math.floor(this.nnodes / 3);
    let shift = 0;
    for (let n = target; n; n >>>= 1) shift++;
    this.shift = Math.max(shift, HASH_TABLE_MIN_SHIFT);
    for (let i = oldSize; i < this.size; i++) this.hashes[i] = UNUSED;
    const placed = new Array<boolean>(Math.max(this.size, oldSize)).fill(false);
    for (let i = 0; i < oldSize; i++) {
      let hash = this.hashes[i] ?? UNUSED;
      if (hash <= 1) {
        this.hashes[i] = UNUSED;
        continue;
      }
      if (placed[i]) continue;
      this.hashes[i] = UNUSED;
      let key = this.keys[i];
      let value = this.values[i];
      for (;;) {
        let index = this.toIndex(hash);
        let step = 0;
        while (placed[index]) {
          step++;
          index = (index + step) & this.mask;
        }
        placed[index] = true;
        const replaced = this.hashes[index] ?? UNUSED;
        this.hashes[index] = hash;
        const evictedKey = this.keys[index];
        const evictedValue = this.values[index];
        this.keys[index] = key;
        this.values[index] = value;
        if (replaced <= 1) break;
        hash = replaced;
        key = evictedKey;
        value = evictedValue;
      }
    }
    this.hashes.length = this.size;
    this.keys.length = this.size;
    this.values.length = this.size;
    this.noccupied = this.nnodes;
  }

  /** GHashTableIter order: slot 0 upwards. */
  entries(): Array<[string, V]> {
    const out: Array<[string, V]> = [];
    for (let i = 0; i < this.size; i++) {
      if ((this.hashes[i] ?? UNUSED) > 1) out.push([this.keys[i] as string, this.values[i] as V]);
    }
    return out;
  }
}

/**
 * `g_variant_dict_init(dict, initial)`, then `g_variant_dict_insert_value` for each of `inserts`, then
 * `g_variant_dict_end`: the entries in the order GLib emits them. Duplicate keys collapse as in GLib (the
 * last value wins, in the first one's slot).
 */
export function variantDictEnd(
  initial: MetadataEntries,
  inserts: ReadonlyArray<readonly [string, Variant]> = [],
): MetadataEntries {
  if (initial.length + inserts.length > MAX_DICT_KEYS) {
    throw new FormatError(
      `Cannot build metadata: ${initial.length + inserts.length} entries, expected at most ${MAX_DICT_KEYS}`,
    );
  }
  const table = new GHashTableOrder<Variant>();
  for (const [k, v] of initial) table.insert(k, v);
  for (const [k, v] of inserts) table.insert(k, v);
  return table.entries();
}

/** A commit object's bytes and its checksum (sha256 of those bytes). */
export interface EncodedCommit {
  commit: Commit;
  bytes: Uint8Array;
  checksum: string;
}

export function encodeCommitObject(commit: Commit): EncodedCommit {
  const bytes = encodeCommit(commit);
  return { commit, bytes, checksum: toHex(sha256(bytes)) };
}

/**
 * The sealed form of `commit`: every field kept (parent, subject, body, timestamp, related objects, root
 * tree), and the metadata passed through a GVariantDict with `ostree.composefs.digest.v0` inserted — what
 * `ostree commit --generate-composefs-metadata` does to the metadata it built (a present digest keeps
 * its slot and takes the new value).
 */
export function sealCommit(commit: Commit, digest: Uint8Array): EncodedCommit {
  if (digest.length !== 32) {
    throw new FormatError(`Cannot seal a commit: a ${digest.length}-byte digest, expected 32 bytes`);
  }
  const metadata = variantDictEnd(commit.metadata, [[COMPOSEFS_DIGEST_KEY, new Variant("ay", digest)]]);
  return encodeCommitObject({ ...commit, metadata });
}
