import { describe, expect, it } from "vitest";
import { dumpTree, escapeDumpField } from "./dump-print.ts";
import { type Dirent, type Inode, newInode } from "./tree.ts";

const b = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
const dir = (mode: number, entries: [string, Inode][], fields: Partial<Inode> = {}): Inode =>
  newInode(mode, {
    ...fields,
    children: entries.map(([name, inode]): Dirent => ({ name: b(name), inode, hardlink: false })),
  });

describe("escapeDumpField() escapes as composefs-info's print_escaped()", () => {
  const table: [string, number, string][] = [
    ["plain/path.txt", 0, "plain/path.txt"],
    ["a b", 0, "a\\x20b"],
    ["tab\there", 0, "tab\\there"],
    ["nl\ncr\r", 0, "nl\\ncr\\r"],
    ["back\\slash", 0, "back\\\\slash"],
    ["k=v", 0, "k=v"],
    ["k=v", 1, "k\\x3dv"],
    ["-", 0, "-"],
    ["-", 2, "\\x2d"],
    ["--", 2, "--"],
    ["\x00\x01\x7f\x80\xe9\xff~!", 0, "\\x00\\x01\\x7f\\x80\\xe9\\xff~!"],
  ];
  it.each(table)("%j with flags %i → %s", (input, flags, out) => {
    expect(escapeDumpField(b(input), flags)).toBe(out);
  });
});

describe("dumpTree()", () => {
  it("prints the root, entries depth-first, unpadded nsec, payloads, inline content, digests and xattrs", () => {
    const file = newInode(0o100644, {
      size: 9999,
      nlink: 2,
      payload: b("3a/e57e"),
      digest: new Uint8Array(32).fill(0xab),
      xattrs: [{ key: b("user.a=b"), value: b("x y\x00") }],
    });
    const root = dir(
      0o40755,
      [
        ["d", dir(0o40700, [["f", file]], { nlink: 2, uid: 65536 })],
        ["dash", newInode(0o100644, { size: 1, content: b("-") })],
        ["link to f", file],
        ["null", newInode(0o20666, { rdev: 259 })],
        ["s", newInode(0o120777, { size: 1, payload: b("-") })],
        ["t", newInode(0o100644, { mtime: { sec: -1, nsec: 999999999 } })],
      ],
      { nlink: 3, size: 60, mtime: { sec: 5, nsec: 31676 } },
    );
    const digest = "ab".repeat(32);
    expect(dumpTree(root)).toBe(
      [
        "/ 60 40755 3 0 0 0 5.31676 - - -",
        "/d 0 40700 2 65536 0 0 0.0 - - -",
        `/d/f 9999 100644 2 0 0 0 0.0 3a/e57e - ${digest} user.a\\x3db=x\\x20y\\x00`,
        "/dash 1 100644 1 0 0 0 0.0 - \\x2d -",
        `/link\\x20to\\x20f 9999 @100644 2 0 0 0 0.0 /d/f - ${digest} user.a\\x3db=x\\x20y\\x00`,
        "/null 0 20666 1 0 0 259 0.0 - - -",
        "/s 1 120777 1 0 0 0 0.0 \\x2d - -",
        "/t 0 100644 1 0 0 0 -1.999999999 - - -",
        "",
      ].join("\n"),
    );
  });

  it("names the first path of a hardlink, escaped, on every later link", () => {
    const target = newInode(0o100644, { nlink: 3 });
    const root = dir(0o40755, [
      ["a b", target],
      ["x", target],
      ["y", target],
    ]);
    expect(dumpTree(root).split("\n").slice(2, 4)).toEqual([
      "/x 0 @100644 3 0 0 0 0.0 /a\\x20b - -",
      "/y 0 @100644 3 0 0 0 0.0 /a\\x20b - -",
    ]);
  });

  it("handles a 5000-level deep tree without recursion", () => {
    let node = newInode(0o40755);
    const root = node;
    for (let i = 0; i < 5000; i++) {
      const child = newInode(0o40755);
      node.children = [{ name: b("d"), inode: child, hardlink: false }];
      node = child;
    }
    const lines = dumpTree(root).split("\n");
    expect(lines.length).toBe(5002);
    expect(lines[5000]!.startsWith(`${"/d".repeat(5000)} 0 40755`)).toBe(true);
  });
});
