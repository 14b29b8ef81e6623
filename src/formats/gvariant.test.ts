import { describe, expect, it } from "vitest";
import { FormatError } from "../base/errors.ts";
import { fromHex, toHex } from "./bytes.ts";
import {
  arrayLength,
  byteswap,
  decode,
  decodeVardict,
  encode,
  type GVariantValue,
  isNormalForm,
  lookup,
  lookupVardict,
  parseType,
  print,
  tryParseType,
  tupleMemberBytes,
  Variant,
} from "./gvariant.ts";

// Serialisations from the GVariant specification (GLib docs, "GVariant Serialisation") and GLib itself.
const VECTORS: Array<[string, GVariantValue, string]> = [
  ["s", "hello world", "68656c6c6f20776f726c6400"],
  ["ms", ["hello world"], "68656c6c6f20776f726c640000"],
  ["ms", [], ""],
  ["mi", [7], "07000000"],
  ["as", ["i", "can", "has", "strings?"], "690063616e0068617300737472696e67733f0002060a13"],
  ["(si)", ["foo", -1], "666f6f00ffffffff04"],
  [
    "a{si}",
    [
      ["hi", -2],
      ["bye", -1],
    ],
    "68690000feffffff0300000062796500ffffffff040915",
  ],
  ["v", new Variant("(y)", [7]), "0700287929"],
  ["()", [], "00"],
  ["(ty)", [1n, 2], "01000000000000000200000000000000"],
  ["ay", Uint8Array.of(1, 2, 3), "010203"],
  ["aay", [Uint8Array.of(1), Uint8Array.of()], "010101"],
  ["a(ayay)", [], ""],
  ["b", true, "01"],
  ["(uuua(ayay))", [0, 0, 0xed410000, []], "0000000000000000000041ed"],
];

describe("GVariant encode()/decode()", () => {
  it.each(VECTORS)("encode(%s) gives GLib's normal form and decodes back", (type, value, hex) => {
    const bytes = encode(type, value);
    expect(toHex(bytes)).toBe(hex);
    expect(decode(type, bytes)).toEqual(value);
    expect(isNormalForm(type, bytes)).toBe(true);
  });

  it("uses 2-byte framing offsets once a container passes 255 bytes", () => {
    const big = "x".repeat(300);
    const bytes = encode("as", [big, "y"]);
    expect(bytes.length).toBe(301 + 2 + 2 * 2);
    expect(toHex(bytes.subarray(303))).toBe("2d012f01");
    expect(decode("as", bytes)).toEqual([big, "y"]);
  });
});

describe("GVariant decode() reads non-normal data the way GLib does", () => {
  const cases: Array<[string, string, string, GVariantValue]> = [
    ["a fixed-size value of the wrong size reads as zeros", "u", "0102", 0],
    ["a string without its NUL reads as empty", "s", "6869", ""],
    ["a string with invalid UTF-8 reads as empty", "s", "ff00", ""],
    ["a string with an inner NUL reads as empty", "s", "610062 00".replace(" ", ""), ""],
    ["an array whose last offset points past the end is empty", "as", "610062004b", []],
    ["a fixed-element array not a multiple of the element size is empty", "au", "0102030405", []],
    ["a variant without a type string reads as the unit ()", "v", "0102", new Variant("()", [])],
    ["a variant with an indefinite type reads as the unit ()", "v", "00002a", new Variant("()", [])],
    ["a variant whose fixed-size child has the wrong size reads as ()", "v", "010075", new Variant("()", [])],
    ["a boolean byte other than 0/1 is true", "b", "02", true],
    ["a tuple member whose offset runs past the end reads as missing", "(sy)", "6100ff", ["", 0]],
  ];
  it.each(cases)("%s", (_what, type, hex, value) => {
    expect(decode(type, fromHex(hex))).toEqual(value);
    expect(isNormalForm(type, fromHex(hex))).toBe(false);
  });

  it("reads array elements before an out-of-order offset and empties the rest", () => {
    // "ab\0" "c\0" "d\0" framed by offsets 3, 2, 7: the decrease at element 1 hides elements 1 and 2.
    expect(decode("as", fromHex("61620063006400030207"))).toEqual(["ab", "", ""]);
  });

  it("keeps deep variant nesting under GLib's depth limit of 128", () => {
    let v: Variant = new Variant("y", 1);
    for (let k = 0; k < 200; k++) v = new Variant("v", v);
    const bytes = encode("v", v);
    let d = decode("v", bytes);
    let depth = 0;
    while (d instanceof Variant && d.type === "v") {
      d = d.value;
      depth++;
    }
    expect(depth).toBeLessThan(128);
    expect(d).toEqual(new Variant("()", []));
  });

  it("refuses an input that expands beyond the work cap with FormatError", () => {
    // A variant holding `a(t…t)`-like missing members: many array elements, each a missing 64 KiB tuple.
    const type = `a(s(${"t".repeat(8192)}))`;
    const n = 4000;
    const body = new Uint8Array(n + n * 2);
    const dv = new DataView(body.buffer);
    for (let k = 0; k < n; k++) dv.setUint16(n + 2 * k, k + 1, true);
    const v = new Uint8Array(body.length + 1 + type.length);
    v.set(body);
    v.set(new TextEncoder().encode(type), body.length + 1);
    expect(() => decode("v", v)).toThrow(FormatError);
    expect(() => decode("v", v)).toThrow(
      `Cannot decode ${v.length} bytes as GVariant "v": framing that expands past the work cap, expected at most 8 values per byte`,
    );
  });
});

describe("reading without decoding everything", () => {
  const v = (type: string, value: GVariantValue) => new Variant(type, value);
  const dict = (...entries: Array<[string, Variant]>) => encode("a{sv}", entries);
  const sig = Uint8Array.of(1, 2, 3);

  it.each<[string, Uint8Array, string, GVariantValue | undefined]>([
    ["finds an aay entry among others", dict(["a", v("s", "x")], ["k", v("aay", [sig])]), "k", [sig]],
    ["takes the first of a duplicated key", dict(["k", v("aay", [sig])], ["k", v("aay", [])]), "k", [sig]],
    [
      "stops at the first entry named key, of another type",
      dict(["k", v("s", "x")], ["k", v("aay", [])]),
      "k",
      undefined,
    ],
    ["misses an absent key", dict(["ka", v("aay", [])]), "k", undefined],
    ["reads a truncated dictionary as empty", dict(["k", v("aay", [sig])]).subarray(0, 9), "k", undefined],
    ["reads nothing from no bytes", new Uint8Array(0), "k", undefined],
  ])("lookupVardict() %s, as g_variant_lookup_value()", (_, bytes, key, want) => {
    expect(lookupVardict(bytes, key, "aay")).toEqual(want);
    const eager = lookup(decodeVardict(bytes), key, "aay");
    expect(eager?.value).toEqual(want);
  });

  it("lookupVardict() matches a key that is not a valid string only with the empty key, as g_variant_get_string()", () => {
    // {"k\xff": <[b"\x01\x02\x03"]>}: the key's bytes are not UTF-8, so GLib reads it as ""
    const bytes = dict(["k\u00ff", v("aay", [sig])]);
    const at = bytes.indexOf(0xc3);
    bytes.set([0xff, 0xff], at);
    expect(lookupVardict(bytes, "k\u00ff", "aay")).toBeUndefined();
    expect(lookupVardict(bytes, "", "aay")).toEqual([sig]);
  });

  it("counts an array's elements and splits a tuple from the framing alone", () => {
    expect(arrayLength("as", encode("as", ["a", "bc", ""]))).toBe(3);
    expect(arrayLength("at", new Uint8Array(24))).toBe(3);
    // four zero offsets: four (empty) elements, none decoded
    expect(arrayLength("a(say)", new Uint8Array(4))).toBe(4);
    const members = tupleMemberBytes("(sas)", encode("(sas)", ["ab", ["c"]]));
    expect(members.map((m) => toHex(m))).toEqual(["616200", "630002"]);
    expect(() => arrayLength("(s)", new Uint8Array(0))).toThrow(FormatError);
  });
});

describe("GVariant types", () => {
  it("parses definite types and reports alignment and fixed size", () => {
    expect(parseType("(ty)")).toMatchObject({ align: 7, fixed: 16 });
    expect(parseType("(uuua(ayay))")).toMatchObject({ align: 3, fixed: 0 });
    expect(parseType("{sv}")).toMatchObject({ kind: "{", align: 7 });
  });
  it.each(["", "a", "(", "{vs}", "r", "a*", "(y))", "{syy}", "z"])("rejects %j with FormatError", (s) => {
    expect(tryParseType(s)).toBeUndefined();
    expect(() => parseType(s)).toThrow(FormatError);
  });
  it("the encoder refuses a JS value of the wrong shape with FormatError", () => {
    expect(() => encode("u", -1)).toThrow(FormatError);
    expect(() => encode("s", "a\0b")).toThrow(FormatError);
    expect(() => encode("(uu)", [1])).toThrow(FormatError);
    expect(() => encode("ay", [1, 2])).toThrow(FormatError);
  });
});

describe("a{sv} helpers", () => {
  it("lookup() returns the first entry with the key, and nothing when its type differs", () => {
    const entries: Array<[string, Variant]> = [
      ["k", new Variant("s", "first")],
      ["k", new Variant("s", "second")],
      ["n", new Variant("u", 1)],
    ];
    const bytes = encode("a{sv}", entries);
    const back = decodeVardict(bytes);
    expect(lookup(back, "k")?.value).toBe("first");
    expect(lookup(back, "n", "s")).toBeUndefined();
    expect(lookup(back, "absent")).toBeUndefined();
  });
});

describe("print()", () => {
  it.each([
    ["a(ayay)", [], "@a(ayay) []"],
    ["a(ayay)", [[fromHex("757365722e7265662e64697200"), fromHex("31")]], "[(b'user.ref.dir', [byte 0x31])]"],
    ["ay", fromHex("61270000"), "[byte 0x61, 0x27, 0x00, 0x00]"],
    ["ay", fromHex("612700"), `b"a'"`],
    ["as", ["refos/x86_64/stable"], "['refos/x86_64/stable']"],
    ["(s)", ["it's"], '("it\'s",)'],
    ["a{sv}", [], "@a{sv} {}"],
    ["ms", [], "@ms nothing"],
    ["t", 5n, "uint64 5"],
    ["v", new Variant("b", true), "<true>"],
    ["s", "tab\tnl\n", "'tab\\tnl\\n'"],
  ] as Array<[string, GVariantValue, string]>)("print(%s) matches g_variant_print", (type, value, text) => {
    expect(print(type, value)).toBe(text);
  });

  it("byteswap() swaps numbers and leaves bytes and strings", () => {
    expect(byteswap("(tays)", [1n, Uint8Array.of(1, 2), "x"])).toEqual([1n << 56n, Uint8Array.of(1, 2), "x"]);
  });
});
