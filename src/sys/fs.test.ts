import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { FormatError, SysError } from "../base/errors.ts";
import { realFs } from "./fs.ts";

// Issue 11 item 4: every whole-file read of the hostile physical root is lstat'ed, required to be a regular
// file, size-capped, then read — a FIFO (which hung prepare-root forever) and a link to /dev/zero (13 s and
// ENOMEM) are refused at once.
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "sealroot-fs-"));
  writeFileSync(join(dir, "small"), "abc");
  writeFileSync(join(dir, "big"), new Uint8Array(5000));
  execFileSync("mkfifo", [join(dir, "fifo")]);
  symlinkSync("/dev/zero", join(dir, "zero"));
  symlinkSync("small", join(dir, "link"));
  mkdirSync(join(dir, "dir"));
});

describe("realFs.readFile() takes regular files of at most the cap, never following the last link", () => {
  it("reads a regular file within the cap", () => {
    expect(new TextDecoder().decode(realFs.readFile(join(dir, "small"), 3))).toBe("abc");
  });

  it.each([
    ["fifo", "a FIFO"],
    ["zero", "a symbolic link"],
    ["link", "a symbolic link"],
    ["dir", "a directory"],
  ])("refuses %s as %s, before opening it", (name, kind) => {
    const t0 = performance.now();
    const path = join(dir, name);
    const read = () => realFs.readFile(path, 1 << 20, "repository config");
    expect(read).toThrow(FormatError);
    expect(read).toThrow(`Cannot read repository config "${path}": ${kind}, expected a regular file`);
    expect(performance.now() - t0).toBeLessThan(1000);
  });

  it("refuses a character device", () => {
    expect(() => realFs.readFile("/dev/zero", 1 << 20, "public key file")).toThrow(
      'Cannot read public key file "/dev/zero": a character device, expected a regular file',
    );
  });

  it("refuses a file over the cap with both sizes", () => {
    const path = join(dir, "big");
    expect(() => realFs.readFile(path, 4096, "prepare-root.conf")).toThrow(
      `Cannot read prepare-root.conf "${path}": 5000 bytes, expected at most 4096`,
    );
  });

  it("reads procfs files, whose size says 0, up to the cap", () => {
    expect(realFs.readFile("/proc/self/stat", 1 << 16).length).toBeGreaterThan(0);
    expect(() => realFs.readFile("/proc/self/stat", 4)).toThrow(/: 5 bytes, expected at most 4$/);
  });

  it("says undefined for nothing there, and SysError ENOENT from readFile", () => {
    expect(realFs.readFileIfExists(join(dir, "none"), 10)).toBeUndefined();
    expect(() => realFs.readFile(join(dir, "none"), 10)).toThrow(SysError);
  });
});
