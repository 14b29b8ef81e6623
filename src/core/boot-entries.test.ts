import { describe, expect, it } from "vitest";
import { fakeStat } from "../../test/helpers/fake-stat.ts";
import { extracted } from "../../test/helpers/fixtures.ts";
import type { FsRead, Stat } from "../base/fs.ts";
import { parseBootEntry } from "../formats/boot-entry.ts";
import { utf8 } from "../formats/bytes.ts";
import { realFs } from "../sys/fs.ts";
import { listBootEntries } from "./boot-entries.ts";

/** A read-only fake file system of text files and directories. */
function fakeFs(files: Record<string, string>): FsRead {
  const stat = (kind: Stat["kind"]): Stat => fakeStat(kind);
  const isDir = (p: string) => Object.keys(files).some((f) => f.startsWith(`${p}/`));
  return {
    readFile: (p) => utf8.encode(files[p] ?? ""),
    readFileIfExists: (p) => (p in files ? utf8.encode(files[p] ?? "") : undefined),
    lstat: (p) => stat(isDir(p) ? "dir" : "file"),
    lstatIfExists: (p) => (p in files ? stat("file") : isDir(p) ? stat("dir") : undefined),
    readlink: () => "",
    readdir: (p) => [
      ...new Set(
        Object.keys(files)
          .filter((f) => f.startsWith(`${p}/`))
          .map((f) => f.slice(p.length + 1).split("/")[0] ?? ""),
      ),
    ],
    lgetxattr: () => undefined,
    llistxattr: () => [],
  };
}

describe("listBootEntries(): ostree admin status order", () => {
  const E = "/s/boot/loader/entries";
  const entry = (version: string | undefined, target: string) =>
    `title x\n${version === undefined ? "" : `version ${version}\n`}options root=LABEL=root ostree=${target} rw\n`;

  it("sorts by version, highest first, numerically; entries without a version last", () => {
    const fs = fakeFs({
      [`${E}/ostree-9-refos.conf`]: entry("9", "/ostree/boot.1/refos/a/0"),
      [`${E}/ostree-10-refos.conf`]: entry("10", "/ostree/boot.1/refos/a/1"),
      [`${E}/ostree-x.conf`]: entry(undefined, "/ostree/boot.1/refos/a/2"),
      [`${E}/ostree-2.conf`]: entry("2", "/ostree/boot.1/refos/a/3"),
    });
    expect(listBootEntries(fs, "/s").map((e) => [e.version, e.target])).toEqual([
      ["10", "/ostree/boot.1/refos/a/1"],
      ["9", "/ostree/boot.1/refos/a/0"],
      ["2", "/ostree/boot.1/refos/a/3"],
      [undefined, "/ostree/boot.1/refos/a/2"],
    ]);
  });

  it("orders dotted versions with strverscmp, as ostree does (1.10 above 1.9), and keeps each options line", () => {
    const fs = fakeFs({
      [`${E}/ostree-1.conf`]: entry("1.9", "/ostree/boot.1/refos/a/0"),
      [`${E}/ostree-2.conf`]: entry("1.10", "/ostree/boot.1/refos/a/1"),
    });
    expect(listBootEntries(fs, "/s").map((e) => [e.version, e.options])).toEqual([
      ["1.10", "root=LABEL=root ostree=/ostree/boot.1/refos/a/1 rw"],
      ["1.9", "root=LABEL=root ostree=/ostree/boot.1/refos/a/0 rw"],
    ]);
  });

  it("finds the target without judging the other arguments (the policy does)", () => {
    const fs = fakeFs({
      [`${E}/ostree-1.conf`]: "options ot-composefs=bogus ostree=/ostree/boot.1/refos/a/0\n",
    });
    expect(listBootEntries(fs, "/s").map((e) => e.target)).toEqual(["/ostree/boot.1/refos/a/0"]);
  });

  it("skips files that are not ostree-*.conf or have no ostree= argument", () => {
    const fs = fakeFs({
      [`${E}/other.conf`]: entry("5", "/ostree/boot.1/refos/a/0"),
      [`${E}/ostree-1.conf.bak`]: entry("5", "/ostree/boot.1/refos/a/0"),
      [`${E}/ostree-3.conf`]: "title y\nversion 3\noptions root=/dev/vda rw\n",
      [`${E}/ostree-1.conf`]: entry("1", "/ostree/boot.1/refos/a/0"),
    });
    expect(listBootEntries(fs, "/s").map((e) => e.file)).toEqual([`${E}/ostree-1.conf`]);
  });

  it("lists the reference sysroot's two deployments, commit 2 first", () => {
    const sysroot = extracted("ostree/sysroot.tar");
    expect(listBootEntries(realFs, sysroot).map((e) => [e.version, e.target])).toEqual([
      ["2", "/ostree/boot.0/refos/e989f10c8387addbc8e73ca5ecd7a67c31eada810d013ff58001a1b72a3f3a82/0"],
      ["1", "/ostree/boot.0/refos/b0d948d23ff829a8ccc9b2f90d9b055a40896951f3d65ae8b2b8fe17125eeb25/0"],
    ]);
  });
});

describe("parseBootEntry(): one set of rules for every reader of boot entries", () => {
  it.each([
    ["key, blanks, value", "options root=/dev/vda  rw\n", "root=/dev/vda  rw"],
    ["a tab separator and trailing blanks", "options\troot=/dev/vda rw \t\n", "root=/dev/vda rw"],
    ["a CRLF line end", "options root=/dev/vda rw\r\n", "root=/dev/vda rw"],
    ["the first of two options lines", "options a=1\noptions b=2\n", "a=1"],
    ["no newline at the end", "title x\noptions a=1", "a=1"],
  ])("reads %s", (_w, text, options) => {
    expect(parseBootEntry(text).get("options")).toBe(options);
  });

  it.each([
    ["a comment", "# options a=1\n"],
    ["a line with leading blanks", "  options a=1\n"],
    ["a key without a value", "options\n"],
    ["a longer key", "optionsx a=1\n"],
  ])("does not take %s as the options field", (_w, text) => {
    expect(parseBootEntry(text).get("options")).toBeUndefined();
  });

  it("reads every field of an entry ostree wrote", () => {
    const text =
      "title refos 2 (ostree:0)\nversion 2\nlinux /boot/vmlinuz\ninitrd /boot/initrd\noptions ostree=/x\n";
    expect(Object.fromEntries(parseBootEntry(text))).toEqual({
      title: "refos 2 (ostree:0)",
      version: "2",
      linux: "/boot/vmlinuz",
      initrd: "/boot/initrd",
      options: "ostree=/x",
    });
  });
});
