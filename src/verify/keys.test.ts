import { readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { OSTREE } from "../../test/helpers/fixtures.ts";
import { PRIMARY_KEY_HEX } from "../../test/helpers/golden.ts";
import { FormatError } from "../base/errors.ts";
import { toHex } from "../formats/bytes.ts";
import {
  decodeBase64,
  encodeBase64,
  formatPublicKeyFile,
  formatSecretKeyFile,
  MAX_KEY_FILE_BYTES,
  parsePublicKeyFile,
  parseSecretKey,
  parseSecretKeyFile,
} from "./keys.ts";

const raw = (name: string) => new Uint8Array(readFileSync(join(OSTREE, "keys", name)));
const text = (name: string) => readFileSync(join(OSTREE, "keys", name), "latin1");

const OTHER = "7dc729545331aa886c33ef75b16a24fac1fd873a35ebcb82861440ff98ec617b";
const PRIMARY_B64 = "FDMhoEa8ahZ6bsk07Y11ITvRHY10j9rRR9N3u7Y+zpw=";
const OTHER_B64 = "fccpVFMxqohsM+91sWok+sH9hzo168uChhRA/5jsYXs=";

function thrown(call: () => unknown): unknown {
  try {
    call();
  } catch (e) {
    return e;
  }
  throw new Error("expected a throw");
}

describe("public key files", () => {
  it.each([
    ["ed25519.pub", [PRIMARY_KEY_HEX]],
    ["ed25519-other.pub", [OTHER]],
    ["trusted-two-keys.pub", [OTHER, PRIMARY_KEY_HEX]],
  ])("parsePublicKeyFile(%s) reads the keys in file order", (name, hex) => {
    const f = parsePublicKeyFile(raw(name), name);
    expect(f.keys.map(toHex)).toEqual(hex);
    expect(f.problems).toEqual([]);
  });

  it("parsePublicKeyFile() gives the same keys from text as from bytes", () => {
    expect(parsePublicKeyFile(text("trusted-two-keys.pub"), "t").keys).toEqual(
      parsePublicKeyFile(raw("trusted-two-keys.pub"), "t").keys,
    );
  });

  it("parsePublicKeyFile() equals the .pub.raw files", () => {
    expect(parsePublicKeyFile(raw("ed25519.pub"), "p").keys).toEqual([raw("ed25519.pub.raw")]);
  });

  it("a malformed line is reported with its number and does not disable the other keys", () => {
    const f = parsePublicKeyFile(
      [
        "",
        "not base64!",
        OTHER_B64.slice(0, 40), // 30 bytes
        `  ${PRIMARY_B64}\r`,
        "AAAA",
        "",
        `${OTHER_B64.slice(0, 43)}`, // unpadded is still base64
        PRIMARY_B64, // duplicate, dropped
        "# comment",
        "",
      ].join("\n"),
      "/etc/ostree/initramfs-root-binding.key",
    );
    expect(f.keys.map(toHex)).toEqual([PRIMARY_KEY_HEX, OTHER]);
    expect(f.problems).toEqual([
      { line: 2, reason: "not base64" },
      { line: 3, reason: "decodes to 30 bytes, expected 32" },
      { line: 5, reason: "decodes to 3 bytes, expected 32" },
      { line: 9, reason: "not base64" },
    ]);
  });

  it.each([
    ["an empty file", "", "no key lines"],
    ["only empty lines", "\n\n  \n", "no key lines"],
    [
      "only malformed lines",
      `${PRIMARY_B64.slice(0, 43)}AAAA\nx\n`,
      "line 1: decodes to 35 bytes, expected 32; line 2: not base64",
    ],
    ["a secret key", text("ed25519.secret"), "line 1: decodes to 64 bytes, expected 32"],
  ])("a file with no well-formed key is a FormatError (%s)", (_what, content, seen) => {
    const e = thrown(() => parsePublicKeyFile(content, "/k.pub"));
    expect(e).toBeInstanceOf(FormatError);
    expect((e as Error).message).toBe(
      `Cannot read public key file "/k.pub": ${seen}, expected at least one line with a base64 32-byte ed25519 public key`,
    );
  });

  it("a file over the size cap is a FormatError", () => {
    const big = new Uint8Array(MAX_KEY_FILE_BYTES + 1).fill(0x41);
    expect(() => parsePublicKeyFile(big, "/big")).toThrow(
      `Cannot read public key file "/big": ${MAX_KEY_FILE_BYTES + 1} bytes, expected at most ${MAX_KEY_FILE_BYTES}`,
    );
  });

  it("non-ASCII bytes make a line malformed, not a crash", () => {
    const bytes = new Uint8Array([0xff, 0xfe, 0x0a, ...new TextEncoder().encode(PRIMARY_B64)]);
    const f = parsePublicKeyFile(bytes, "x");
    expect(f.keys.map(toHex)).toEqual([PRIMARY_KEY_HEX]);
    expect(f.problems).toEqual([{ line: 1, reason: "not base64" }]);
  });

  it.each([
    ["ed25519.pub", [raw("ed25519.pub.raw")]],
    ["trusted-two-keys.pub", [raw("ed25519-other.pub.raw"), raw("ed25519.pub.raw")]],
  ])("formatPublicKeyFile() writes %s byte for byte", (name, keys) => {
    expect(formatPublicKeyFile(keys)).toBe(text(name));
  });

  it("formatPublicKeyFile() refuses a key of the wrong size", () => {
    expect(() => formatPublicKeyFile([new Uint8Array(31)])).toThrow(
      "Cannot write public key file: ed25519 public key is 31 bytes, expected 32",
    );
  });
});

describe("secret keys", () => {
  it.each([
    ["ed25519.secret", "ed25519.seed.raw", "ed25519.pub.raw"],
    ["ed25519-other.secret", "ed25519-other.seed.raw", "ed25519-other.pub.raw"],
  ])("parseSecretKey(%s) is seed ‖ public", (secret, seed, pub) => {
    const sk = parseSecretKey(text(secret));
    expect(sk.subarray(0, 32)).toEqual(raw(seed));
    expect(sk.subarray(32)).toEqual(raw(pub));
    expect(parseSecretKeyFile(raw(secret), secret)).toEqual([sk]);
    expect(formatSecretKeyFile(sk)).toBe(text(secret));
  });

  it("parseSecretKeyFile() reads one key per line", () => {
    const both = text("ed25519.secret") + text("ed25519-other.secret");
    expect(parseSecretKeyFile(both, "k").map((k) => toHex(k.subarray(32)))).toEqual([PRIMARY_KEY_HEX, OTHER]);
  });

  it("a secret key whose public half is not the seed's is refused", () => {
    const sk = parseSecretKey(text("ed25519.secret"));
    sk.set(raw("ed25519-other.pub.raw"), 32);
    expect(() => parseSecretKey(encodeBase64(sk), "KEY-ID")).toThrow(
      `Cannot use KEY-ID: public half ${OTHER} does not match the seed, expected ${PRIMARY_KEY_HEX}`,
    );
  });

  it.each([
    [
      PRIMARY_B64,
      "Cannot read ed25519 secret key: decodes to 32 bytes, expected 64, expected base64 of seed ‖ public key",
    ],
    ["%%%", "Cannot read ed25519 secret key: not base64, expected base64 of seed ‖ public key"],
  ])("parseSecretKey(%s) is a FormatError", (input, message) => {
    const e = thrown(() => parseSecretKey(input));
    expect(e).toBeInstanceOf(FormatError);
    expect((e as Error).message).toBe(message);
  });

  it.each([
    ["an empty line", `${text("ed25519.secret")}\n`, 'Cannot read secret key file "/s" line 2: empty line'],
    [
      "a public key",
      `${text("ed25519.secret")}${PRIMARY_B64}\n`,
      'Cannot read secret key file "/s" line 2: decodes to 32 bytes',
    ],
    ["no lines", "", 'Cannot read secret key file "/s": no lines'],
  ])("parseSecretKeyFile() with %s is a FormatError", (_what, content, message) => {
    const e = thrown(() => parseSecretKeyFile(content, "/s"));
    expect(e).toBeInstanceOf(FormatError);
    expect((e as Error).message).toContain(message);
  });
});

describe("base64", () => {
  it.each([
    ["", ""],
    ["66", "Zg=="],
    ["666f", "Zm8="],
    ["666f6f", "Zm9v"],
    ["fbff", "+/8="],
  ])("encodeBase64(%s) is %s and decodes back", (hex, b64) => {
    const bytes = Uint8Array.from(hex.match(/../g) ?? [], (h) => Number.parseInt(h, 16));
    expect(encodeBase64(bytes)).toBe(b64);
    expect(decodeBase64(b64)).toEqual(bytes);
  });

  it.each(["Zg=", "Zg===", "Z", "Zm9v=", "Zm 9v", "Zm-_", "=Zm9"])("decodeBase64(%s) is undefined", (s) => {
    expect(decodeBase64(s)).toBeUndefined();
  });
});

describe("hostile input", () => {
  const onlyFormatErrors = (call: () => unknown) => {
    try {
      call();
    } catch (e) {
      if (!(e instanceof FormatError)) throw e;
    }
  };
  const b64ish = fc.string({ unit: fc.constantFrom(..."AZaz09+/=\n\r \t#-"), maxLength: 300 });

  it("parsePublicKeyFile() returns or throws FormatError on arbitrary bytes and base64-like text", () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 300 }), b64ish), (data) => {
        onlyFormatErrors(() => {
          const f = parsePublicKeyFile(data, "fuzz");
          for (const k of f.keys) expect(k).toHaveLength(32);
        });
      }),
      { seed: 42, numRuns: 500 },
    );
  });

  it("parseSecretKey() and parseSecretKeyFile() return or throw FormatError", () => {
    fc.assert(
      fc.property(b64ish, (text) => {
        onlyFormatErrors(() => parseSecretKey(text));
        onlyFormatErrors(() => parseSecretKeyFile(text, "fuzz"));
      }),
      { seed: 43, numRuns: 500 },
    );
  });

  it("decodeBase64() inverts encodeBase64() on arbitrary bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (b) => {
        expect(decodeBase64(encodeBase64(b))).toEqual(b);
      }),
      { seed: 44, numRuns: 300 },
    );
  });
});
