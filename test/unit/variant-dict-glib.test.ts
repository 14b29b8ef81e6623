import { existsSync } from "node:fs";
import { DataType, define, load, open } from "ffi-rs";
import { describe, expect, it } from "vitest";
import { Variant } from "../../src/formats/gvariant.ts";
import { variantDictEnd } from "../../src/formats/ostree/commit-write.ts";

// Differential test of variantDictEnd() (the key order ostree's commit metadata gets from a GVariantDict)
// against Debian's GLib itself, through ffi-rs: init from an a{sv}, insert keys, end, print. Covers the
// table growth past 8 and 16 slots, which the reference commits (5 keys) never reach. Fails loudly when
// libglib is missing: it is a dependency of Debian's ostree package, which the project installs.
const LIBGLIB = "/usr/lib/x86_64-linux-gnu/libglib-2.0.so.0";
const COMPOSEFS = "ostree.composefs.digest.v0";

function glib() {
  if (!existsSync(LIBGLIB))
    throw new Error(`Cannot load ${LIBGLIB}: missing, expected Debian package libglib2.0-0`);
  open({ library: "glib", path: LIBGLIB });
  const ptr = DataType.External;
  return define({
    // GVariantDict *g_variant_dict_new (GVariant *from_asv);
    g_variant_dict_new: { library: "glib", retType: ptr, paramsType: [ptr] },
    // void g_variant_dict_insert_value (GVariantDict *dict, const gchar *key, GVariant *value);
    g_variant_dict_insert_value: {
      library: "glib",
      retType: DataType.Void,
      paramsType: [ptr, DataType.String, ptr],
    },
    // GVariant *g_variant_new_boolean (gboolean value);
    g_variant_new_boolean: { library: "glib", retType: ptr, paramsType: [DataType.I32] },
    // GVariant *g_variant_dict_end (GVariantDict *dict);
    g_variant_dict_end: { library: "glib", retType: ptr, paramsType: [ptr] },
    // gchar *g_variant_print (GVariant *value, gboolean type_annotate);  (leaked: a test process)
    g_variant_print: { library: "glib", retType: DataType.String, paramsType: [ptr, DataType.I32] },
  });
}

let fns: ReturnType<typeof glib> | undefined;

/** GLib's order for: dict_init(a{sv} of `initial`) + insert each of `inserts` + end. */
function glibOrder(initial: string[], inserts: string[]): string[] {
  fns ??= glib();
  const f = fns;
  const build = (keys: string[], from: unknown) => {
    // g_variant_dict_new (NULL): the NULL goes through load() with an integer parameter
    const dict =
      from === null
        ? load({
            library: "glib",
            funcName: "g_variant_dict_new",
            retType: DataType.External,
            paramsType: [DataType.I64],
            paramsValue: [0],
          })
        : f.g_variant_dict_new([from]);
    for (const k of keys) f.g_variant_dict_insert_value([dict, k, f.g_variant_new_boolean([1])]);
    return f.g_variant_dict_end([dict]);
  };
  // An a{sv} in exactly `initial` order cannot come from a dict; build it from a dict and read its order.
  const start = initial.length ? build(initial, null) : null;
  const startOrder = start ? keysOf(f.g_variant_print([start, 0]) as string) : [];
  const end = build(inserts, start);
  return [...startOrder, "|", ...keysOf(f.g_variant_print([end, 0]) as string)];
}

const keysOf = (printed: string) => [...printed.matchAll(/'([^']*)': /g)].map((m) => m[1] ?? "");

function ours(initial: string[], inserts: string[]): string[] {
  const v = new Variant("b", true);
  const entries = (ks: string[]) => ks.map((k) => [k, v] as [string, Variant]);
  const start = initial.length ? variantDictEnd([], entries(initial)) : [];
  const end = variantDictEnd(start, entries(inserts));
  return [...start.map(([k]) => k), "|", ...end.map(([k]) => k)];
}

describe("variantDictEnd() against GLib's GVariantDict", () => {
  const metadataKeys = [
    "version",
    "ostree.ref-binding",
    "ostree.bootable",
    "ostree.linux",
    "ostree.composefs.digest.v0",
    "ostree.collection-binding",
    "ostree.source-title",
    "ostree.commit.timestamp",
    "ostree.endoflife",
    "ostree.endoflife-rebase",
    "rpmostree.inputhash",
    "ostree.container-cmd",
    "org.opencontainers.image.version",
    "ünïcødé-key",
  ];
  const cases: [string, string[], string[]][] = [
    ["the reference commit's keys", ["version", "ostree.ref-binding"], ["ostree.bootable", "ostree.linux"]],
    ["8 keys (first growth)", metadataKeys.slice(0, 7), [COMPOSEFS]],
    ["14 keys", metadataKeys.slice(0, 10), metadataKeys.slice(10)],
    [
      "40 generated keys",
      Array.from({ length: 25 }, (_, i) => `key.${i}`),
      Array.from({ length: 15 }, (_, i) => `x${i}`),
    ],
    ["a replaced key keeps its slot", metadataKeys.slice(0, 9), ["ostree.linux", COMPOSEFS]],
  ];
  it("reads GLib's order through the binding (the reference commits' order)", () => {
    const order = glibOrder(["version", "ostree.ref-binding"], ["ostree.bootable", "ostree.linux"]);
    expect(order.slice(order.indexOf("|") + 1)).toEqual([
      "ostree.linux",
      "version",
      "ostree.bootable",
      "ostree.ref-binding",
    ]);
  });
  for (const [name, initial, inserts] of cases) {
    it(`orders ${name} as GLib does`, () => {
      expect(ours(initial, inserts)).toEqual(glibOrder(initial, inserts));
    });
  }
});
