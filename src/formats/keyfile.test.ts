import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FormatError } from "../base/errors.ts";
import { asciiStrip, parseKeyFile } from "./keyfile.ts";

const enc = (s: string) => new TextEncoder().encode(s);

describe("parseKeyFile() follows GLib's GKeyFile line rules", () => {
  it("reads groups, keys, comments and blank lines; leading value whitespace is dropped, trailing kept", () => {
    const kf = parseKeyFile(
      "# leading comment\n\n  [composefs]  \n\tenabled =  signed \n# c\nkeypath=/k\r\n[sysroot]\nreadonly=true",
      "t.conf",
    );
    expect(kf.groups()).toEqual(["composefs", "sysroot"]);
    expect(kf.getValue("composefs", "enabled")).toBe("signed ");
    expect(kf.getValue("composefs", "keypath")).toBe("/k");
    expect(kf.getValue("sysroot", "readonly")).toBe("true");
    expect(kf.lineOf("composefs", "enabled")).toBe(4);
    expect(kf.getValue("composefs", "missing")).toBeUndefined();
    expect(kf.getValue("nogroup", "enabled")).toBeUndefined();
  });

  it("keeps a '\\r' at the end of a final line without newline (GLib strips it only before '\\n')", () => {
    expect(parseKeyFile("[g]\nk=v\r", "t").getValue("g", "k")).toBe("v\r");
    expect(parseKeyFile("[g]\nk=v\r\n", "t").getValue("g", "k")).toBe("v");
  });

  it("lets a later key replace an earlier one and merges a reopened group", () => {
    const kf = parseKeyFile("[a]\nk=1\n[b]\nx=y\n[a]\nk=2\nj=3\n", "t");
    expect(kf.getValue("a", "k")).toBe("2");
    expect(kf.keys("a")).toEqual(["k", "j"]);
    expect(kf.groups()).toEqual(["a", "b"]);
  });

  it("accepts locale keys and spaces inside keys, as GLib does", () => {
    const kf = parseKeyFile("[g]\nName[de_DE.UTF-8@euro]=x\nmy key = v\n", "t");
    expect(kf.getValue("g", "Name[de_DE.UTF-8@euro]")).toBe("x");
    expect(kf.getValue("g", "my key")).toBe("v");
  });

  const bad: [string, string][] = [
    ["k=v\n", 'Cannot parse "t": line 1 "k=v" comes before any [group], expected a [group] line first'],
    [
      "[g]\nnot a pair\n",
      'Cannot parse "t": line 2 "not a pair" is not a key-value pair, group, or comment, expected [group], key=value or # comment',
    ],
    [
      "[g]\n=v\n",
      'Cannot parse "t": line 2 "=v" is not a key-value pair, group, or comment, expected [group], key=value or # comment',
    ],
    [
      "[]\n",
      'Cannot parse "t": line 1 "[]" names the invalid group "", expected [name] without [, ] or control characters',
    ],
    [
      "[a[b]\n",
      'Cannot parse "t": line 1 "[a[b]" names the invalid group "a[b", expected [name] without [, ] or control characters',
    ],
    [
      "[g] x\n",
      'Cannot parse "t": line 1 "[g] x" is not a key-value pair, group, or comment, expected [group], key=value or # comment',
    ],
    [
      "[g]\nk]=v\n",
      'Cannot parse "t": line 2 "k]=v" has the invalid key name "k]", expected a key without [, ] or = (or key[locale])',
    ],
    [
      "[g]\nk[de]x=v\n",
      'Cannot parse "t": line 2 "k[de]x=v" has the invalid key name "k[de]x", expected a key without [, ] or = (or key[locale])',
    ],
    [
      "[g]\nEncoding=latin1\n",
      'Cannot parse "t": line 2 "Encoding=latin1" declares the encoding "latin1", expected UTF-8',
    ],
    ["[g]\nk=a\0b\n", 'Cannot parse "t": contains a NUL byte, expected text'],
  ];
  it.each(bad)("refuses %j", (text, message) => {
    expect(() => parseKeyFile(text, "t")).toThrow(FormatError);
    expect(() => parseKeyFile(text, "t")).toThrow(message);
  });

  it("refuses bytes that are not UTF-8", () => {
    expect(() => parseKeyFile(new Uint8Array([0x5b, 0x67, 0x5d, 0x0a, 0x6b, 0x3d, 0xff]), "t")).toThrow(
      'Cannot parse "t": not valid UTF-8, expected UTF-8 text',
    );
    expect(parseKeyFile(enc("[g]\nk=é\n"), "t").getValue("g", "k")).toBe("é");
  });
});

describe("KeyFile.getBoolean() is g_key_file_get_boolean", () => {
  const cases: [string, boolean | string][] = [
    ["true", true],
    ["1", true],
    ["false", false],
    ["0", false],
    ["true  \t", true],
    ["yes", "is not a boolean"],
    ["no", "is not a boolean"],
    ["TRUE", "is not a boolean"],
    ["True", "is not a boolean"],
    ["", "is not a boolean"],
    ["tru", "is not a boolean"],
    ["true x", "is not a boolean"],
    ["01", "is not a boolean"],
  ];
  it.each(cases)("reads %j as %j", (value, want) => {
    const kf = parseKeyFile(`[g]\nk=${value}\n`, "f.conf");
    if (typeof want === "boolean") expect(kf.getBoolean("g", "k")).toBe(want);
    else
      expect(() => kf.getBoolean("g", "k")).toThrow(
        `Cannot parse "f.conf": [g] k = ${JSON.stringify(value)} (line 2) is not a boolean, expected true, false, 1 or 0`,
      );
  });
  it("returns undefined for an absent key", () => {
    expect(parseKeyFile("[g]\n", "t").getBoolean("g", "k")).toBeUndefined();
  });
});

describe("KeyFile.getString() decodes GLib escapes", () => {
  it("decodes \\s \\n \\t \\r \\\\", () => {
    expect(parseKeyFile("[g]\nk=a\\sb\\nc\\td\\re\\\\f\n", "t").getString("g", "k")).toBe("a b\nc\td\re\\f");
  });
  it("refuses an unknown escape and a trailing backslash", () => {
    expect(() => parseKeyFile("[g]\nk=a\\qb\n", "t").getString("g", "k")).toThrow(
      'Cannot parse "t": [g] k = "a\\\\qb" (line 2) contains the invalid escape sequence "\\q", expected \\s, \\n, \\t, \\r or \\\\',
    );
    expect(() => parseKeyFile("[g]\nk=a\\\n", "t").getString("g", "k")).toThrow(
      "ends with an escape character",
    );
  });
  it("leaves getValue() raw", () => {
    expect(parseKeyFile("[g]\nk=a\\sb\n", "t").getValue("g", "k")).toBe("a\\sb");
  });
});

describe("asciiStrip()", () => {
  it("strips GLib's ASCII whitespace only", () => {
    expect(asciiStrip(" \t\v\f\r\nx y\n ")).toBe("x y");
    expect(asciiStrip("\u00a0x")).toBe("\u00a0x");
  });
});

describe("parseKeyFile() on hostile input", () => {
  it("returns or throws FormatError, never anything else", () => {
    const alphabet = fc.constantFrom(
      "[",
      "]",
      "=",
      "#",
      " ",
      "\t",
      "\r",
      "\n",
      "\\",
      "a",
      "k",
      "é",
      "\0",
      ";",
    );
    fc.assert(
      fc.property(
        fc.array(alphabet, { maxLength: 200 }),
        fc.uint8Array({ maxLength: 200 }),
        (chars, bytes) => {
          for (const input of [chars.join(""), bytes]) {
            try {
              const kf = parseKeyFile(input, "h");
              for (const g of kf.groups()) for (const k of kf.keys(g)) kf.getString(g, k);
            } catch (e) {
              if (!(e instanceof FormatError)) throw e;
            }
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});
