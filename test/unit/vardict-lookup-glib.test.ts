import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { DataType, define, isNullPointer, type JsExternal, open } from "ffi-rs";
import { describe, expect, it } from "vitest";
import { encode, lookupVardict, print, Variant } from "../../src/formats/gvariant.ts";
import { ED25519_SIGNATURE_KEY } from "../../src/formats/ostree/objects.ts";
import { OSTREE } from "../helpers/fixtures.ts";
import { framingBombCommitmeta, rawVardict, rawVariant } from "../helpers/hostile.ts";

// Differential test of lookupVardict() — the boot path's lazy `ostree.sign.ed25519` lookup — against
// Debian's GLib itself, through ffi-rs: g_variant_new_from_bytes("a{sv}", untrusted) then
// g_variant_lookup_value(dict, key, "aay") (what ostree-prepare-root calls), printed. Seeds are the
// golden `.commitmeta` files and hand-made dictionaries (a duplicated key, a first entry of the wrong type,
// junk before the signature); each is mutated byte by byte and cut short with a fixed PRNG.
const LIBGLIB = "/usr/lib/x86_64-linux-gnu/libglib-2.0.so.0";

function glib() {
  if (!existsSync(LIBGLIB))
    throw new Error(`Cannot load ${LIBGLIB}: missing, expected Debian package libglib2.0-0`);
  open({ library: "glib", path: LIBGLIB });
  const ptr = DataType.External;
  return define({
    // GBytes *g_bytes_new (gconstpointer data, gsize size);  (copies the data)
    g_bytes_new: { library: "glib", retType: ptr, paramsType: [DataType.U8Array, DataType.U64] },
    // GVariant *g_variant_new_from_bytes (const GVariantType *type, GBytes *bytes, gboolean trusted);
    g_variant_new_from_bytes: {
      library: "glib",
      retType: ptr,
      paramsType: [DataType.String, ptr, DataType.I32],
    },
    // GVariant *g_variant_lookup_value (GVariant *dictionary, const gchar *key, const GVariantType *type);
    g_variant_lookup_value: {
      library: "glib",
      retType: ptr,
      paramsType: [ptr, DataType.String, DataType.String],
    },
    // gchar *g_variant_print (GVariant *value, gboolean type_annotate);  (leaked: a test process)
    g_variant_print: { library: "glib", retType: DataType.String, paramsType: [ptr, DataType.I32] },
  });
}

let fns: ReturnType<typeof glib> | undefined;

/** GLib's answer, printed; "absent" when g_variant_lookup_value returns NULL. */
function glibLookup(bytes: Uint8Array, key: string): string {
  fns ??= glib();
  const gbytes = fns.g_bytes_new([bytes, bytes.length]) as JsExternal;
  const dict = fns.g_variant_new_from_bytes(["a{sv}", gbytes, 0]) as JsExternal;
  const value = fns.g_variant_lookup_value([dict, key, "aay"]) as JsExternal;
  return isNullPointer(value) ? "absent" : (fns.g_variant_print([value, 1]) as string);
}

function ours(bytes: Uint8Array, key: string): string {
  const v = lookupVardict(bytes, key, "aay");
  return v === undefined ? "absent" : print("aay", v, true);
}

/** xorshift32: the same mutations every run. */
function prng(seed: number) {
  let x = seed >>> 0 || 1;
  return (n: number) => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x % n;
  };
}

const sig = (b: number) => new Uint8Array(64).fill(b);
const aay = (...s: Uint8Array[]) => rawVariant("aay", encode("aay", s));
const golden = (f: string) => new Uint8Array(readFileSync(join(OSTREE, f)));
const SEEDS: [string, Uint8Array][] = [
  ["the golden signed .commitmeta", golden("bad/c2.commitmeta.signed-by-other")],
  ["the golden corrupt-signature .commitmeta", golden("bad/c2.commitmeta.corrupt-signature")],
  ["the golden truncated .commitmeta", golden("bad/c2.commitmeta.truncated")],
  [
    "a duplicated key, the first of another type",
    rawVardict([
      [ED25519_SIGNATURE_KEY, rawVariant("s", new TextEncoder().encode("x\0"))],
      [ED25519_SIGNATURE_KEY, aay(sig(1))],
    ]),
  ],
  [
    "a duplicated key, both aay",
    rawVardict([
      [ED25519_SIGNATURE_KEY, aay(sig(2), sig(3))],
      [ED25519_SIGNATURE_KEY, aay(sig(4))],
    ]),
  ],
  [
    "other entries before the signature",
    encode("a{sv}", [
      ["version", new Variant("s", "1.0")],
      ["ostree.sign.ed25519x", new Variant("aay", [sig(5)])],
      ["ostree.sign.ed2551", new Variant("aay", [sig(6)])],
      [ED25519_SIGNATURE_KEY, new Variant("aay", [sig(7), new Uint8Array(3)])],
    ]),
  ],
];

describe("lookupVardict() against GLib's g_variant_lookup_value()", () => {
  it("agrees on the seeds", () => {
    for (const [name, bytes] of SEEDS)
      expect(ours(bytes, ED25519_SIGNATURE_KEY), name).toBe(glibLookup(bytes, ED25519_SIGNATURE_KEY));
  });

  it("agrees on 3,000 mutated and truncated seeds", () => {
    const rand = prng(0x5ea1);
    let found = 0;
    for (let n = 0; n < 3000; n++) {
      const [name, seed] = SEEDS[n % SEEDS.length]!;
      let b = seed.slice();
      const op = rand(4);
      if (op === 0 && b.length > 0) b = b.subarray(0, rand(b.length));
      else {
        // framing lives at the ends: flip bytes there more often than in the middle
        for (let k = 1 + rand(3); k > 0 && b.length > 0; k--) {
          const at = rand(2) ? b.length - 1 - rand(Math.min(16, b.length)) : rand(b.length);
          b[at] = rand(256);
        }
      }
      const want = glibLookup(b, ED25519_SIGNATURE_KEY);
      if (want !== "absent") found++;
      expect(
        ours(b, ED25519_SIGNATURE_KEY),
        `${name}, mutation ${n}: ${Buffer.from(b).toString("hex")}`,
      ).toBe(want);
    }
    expect(found).toBeGreaterThan(300); // the mutations do not only break the dictionary
  });

  it("agrees on a signature behind 64 KiB of nested framing", () => {
    const b = framingBombCommitmeta(1 << 16, [[ED25519_SIGNATURE_KEY, aay(sig(8))]]);
    expect(ours(b, ED25519_SIGNATURE_KEY)).toBe(glibLookup(b, ED25519_SIGNATURE_KEY));
    expect(ours(b, ED25519_SIGNATURE_KEY)).not.toBe("absent");
  });
});
