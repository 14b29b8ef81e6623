import { describe, expect, it } from "vitest";
import { UsageError } from "../base/errors.ts";
import type { FsRead } from "../base/fs.ts";
import {
  DEFAULT_KEYPATH,
  ETC_CONFIG_PATH,
  emptyConfig,
  parseLegacyRepoReadonly,
  parsePrepareRootConfig,
  readPrepareRootConfig,
  USR_CONFIG_PATH,
} from "./config.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const F = "/etc/ostree/prepare-root.conf";

/** A FsRead holding only whole files (all prepare-root.conf reading needs). */
function filesFs(files: Record<string, string>): FsRead {
  const no = () => {
    throw new Error("not used");
  };
  return {
    readFile: no,
    readFileIfExists: (p) => (p in files ? enc(files[p] as string) : undefined),
    lstat: no,
    lstatIfExists: no,
    readlink: no,
    readdir: no,
    lgetxattr: no,
    llistxattr: no,
  };
}

describe("parsePrepareRootConfig() reads the keys ostree 2026.4 reads", () => {
  const enabled: [string, string][] = [
    ["signed", "signed"],
    ["verity", "verity"],
    ["maybe", "maybe"],
    ["yes", "yes"],
    ["true", "yes"],
    ["1", "yes"],
    ["no", "no"],
    ["false", "no"],
    ["0", "no"],
    // ostree fails on the trailing space after signed/verity ("Invalid tri-state value: signed"); sealroot strips.
    ["signed ", "signed"],
    ["verity\t", "verity"],
  ];
  it.each(enabled)("[composefs] enabled = %j → %s", (raw, value) => {
    const cfg = parsePrepareRootConfig(`[composefs]\nenabled = ${raw}\n`, F);
    expect(cfg.composefs).toEqual({ value, raw });
  });

  it("gives ostree's defaults for an empty file", () => {
    expect(parsePrepareRootConfig("", F)).toEqual({
      file: F,
      keypath: DEFAULT_KEYPATH,
      keypathFromConfig: false,
      etcTransient: false,
      rootTransient: false,
      rootTransientRo: false,
      emergencyShell: false,
      floor: {},
      measure: { tpm: "auto", pcr: 15 },
    });
    expect(emptyConfig()).toEqual({
      keypath: DEFAULT_KEYPATH,
      keypathFromConfig: false,
      etcTransient: false,
      rootTransient: false,
      rootTransientRo: false,
      emergencyShell: false,
      floor: {},
      measure: { tpm: "auto", pcr: 15 },
    });
  });

  it("reads keypath, sysroot.readonly, etc.transient and root.transient-ro (which implies transient)", () => {
    const cfg = parsePrepareRootConfig(
      "[composefs]\nkeypath = /etc/k.pub \n[sysroot]\nreadonly=false\n[etc]\ntransient=1\n[root]\ntransient-ro=true\n",
      F,
    );
    expect(cfg).toEqual({
      file: F,
      keypath: "/etc/k.pub",
      keypathFromConfig: true,
      sysrootReadonly: false,
      etcTransient: true,
      rootTransient: true,
      rootTransientRo: true,
      emergencyShell: false,
      floor: {},
      measure: { tpm: "auto", pcr: 15 },
    });
  });

  it("reads [sealroot] tpm and pcr, and refuses values that are not a mode or a PCR index", () => {
    expect(parsePrepareRootConfig("[sealroot]\ntpm = required \npcr = 9\n", F).measure).toEqual({
      tpm: "required",
      pcr: 9,
    });
    expect(parsePrepareRootConfig("[sealroot]\ntpm=off\n", F).measure).toEqual({ tpm: "off", pcr: 15 });
    expect(() => parsePrepareRootConfig("[sealroot]\ntpm = yes\n", F)).toThrow(
      `Cannot parse "${F}": [sealroot] tpm = "yes" (line 2) is not a valid value, expected auto, required, off`,
    );
    for (const bad of ["24", "-1", "x", "", "015"]) {
      expect(() => parsePrepareRootConfig(`[sealroot]\npcr = ${bad}\n`, F), bad).toThrow(
        "is not a PCR index, expected 0…23",
      );
    }
  });

  it("reads the anti-rollback floor from [sealroot] min-timestamp and min-version", () => {
    const cfg = parsePrepareRootConfig("[sealroot]\nmin-timestamp = 1735776000 \nmin-version = 41.2\n", F);
    expect(cfg.floor).toEqual({ minTimestamp: 1735776000n, minVersion: "41.2" });
    expect(() => parsePrepareRootConfig("[sealroot]\nmin-timestamp = -1\n", F)).toThrow(
      'Cannot use "/etc/ostree/prepare-root.conf" [sealroot] min-timestamp "-1": not a number, expected unix seconds (decimal digits)',
    );
    expect(() => parsePrepareRootConfig("[sealroot]\nmin-version =\n", F)).toThrow(
      'Cannot parse "/etc/ostree/prepare-root.conf": [sealroot] min-version is empty (line 2), expected an ostree.version string',
    );
  });

  it("reads sealroot's own [sealroot] emergency-shell as yes/no, true/false or 1/0", () => {
    expect(parsePrepareRootConfig("[sealroot]\nemergency-shell = yes\n", F).emergencyShell).toBe(true);
    expect(parsePrepareRootConfig("[sealroot]\nemergency-shell=1\n", F).emergencyShell).toBe(true);
    expect(parsePrepareRootConfig("[sealroot]\nemergency-shell = no\n", F).emergencyShell).toBe(false);
    expect(() => parsePrepareRootConfig("[sealroot]\nemergency-shell = maybe\n", F)).toThrow(
      'Cannot parse "/etc/ostree/prepare-root.conf": [sealroot] emergency-shell = "maybe" (line 2) is not a valid value, expected yes, true, 1, no, false or 0',
    );
  });

  const errors: [string, string][] = [
    [
      "[composefs]\nenabled = sign\n",
      'Cannot parse "/etc/ostree/prepare-root.conf": [composefs] enabled = "sign" (line 2) is not a valid value, expected signed, verity, maybe, yes, true, 1, no, false or 0',
    ],
    [
      "[composefs]\nenabled = Signed\n",
      'Cannot parse "/etc/ostree/prepare-root.conf": [composefs] enabled = "Signed" (line 2) is not a valid value, expected signed, verity, maybe, yes, true, 1, no, false or 0',
    ],
    [
      "[composefs]\nenabled =\n",
      'Cannot parse "/etc/ostree/prepare-root.conf": [composefs] enabled = "" (line 2) is not a valid value, expected signed, verity, maybe, yes, true, 1, no, false or 0',
    ],
    [
      "[sysroot]\nreadonly = yes\n",
      'Cannot parse "/etc/ostree/prepare-root.conf": [sysroot] readonly = "yes" (line 2) is not a boolean, expected true, false, 1 or 0',
    ],
    [
      "[sysroot]\nreadonly = TRUE\n",
      'Cannot parse "/etc/ostree/prepare-root.conf": [sysroot] readonly = "TRUE" (line 2) is not a boolean, expected true, false, 1 or 0',
    ],
    [
      "[etc]\ntransient = on\n",
      'Cannot parse "/etc/ostree/prepare-root.conf": [etc] transient = "on" (line 2) is not a boolean, expected true, false, 1 or 0',
    ],
    [
      "[root]\ntransient = no\n",
      'Cannot parse "/etc/ostree/prepare-root.conf": [root] transient = "no" (line 2) is not a boolean, expected true, false, 1 or 0',
    ],
    [
      "[root]\ntransient-ro = y\n",
      'Cannot parse "/etc/ostree/prepare-root.conf": [root] transient-ro = "y" (line 2) is not a boolean, expected true, false, 1 or 0',
    ],
    [
      "[root]\ntransient = true\ntransient-ro = true\n",
      'Cannot use "/etc/ostree/prepare-root.conf": [root] transient and [root] transient-ro are both true, expected at most one of them',
    ],
    [
      "[composefs]\nenabled signed\n",
      'Cannot parse "/etc/ostree/prepare-root.conf": line 2 "enabled signed" is not a key-value pair, group, or comment, expected [group], key=value or # comment',
    ],
  ];
  it.each(errors)("refuses %j with a UsageError", (text, message) => {
    expect(() => parsePrepareRootConfig(text, F)).toThrow(UsageError);
    expect(() => parsePrepareRootConfig(text, F)).toThrow(message);
  });

  it("reports the error ostree reports first: root.* before enabled", () => {
    expect(() => parsePrepareRootConfig("[root]\ntransient=x\n[composefs]\nenabled=bad\n", F)).toThrow(
      "[root] transient",
    );
  });
});

describe("readPrepareRootConfig() applies ostree's whole-file replacement", () => {
  it("uses /usr/lib alone when /etc is absent", () => {
    const cfg = readPrepareRootConfig(filesFs({ [USR_CONFIG_PATH]: "[composefs]\nenabled=yes\n" }));
    expect(cfg.file).toBe(USR_CONFIG_PATH);
    expect(cfg.replaced).toBeUndefined();
    expect(cfg.composefs?.value).toBe("yes");
  });

  it("lets /etc replace every key of /usr/lib, not merge with it", () => {
    const cfg = readPrepareRootConfig(
      filesFs({
        [USR_CONFIG_PATH]: "[composefs]\nenabled=yes\n[sysroot]\nreadonly=true\n",
        [ETC_CONFIG_PATH]: "[etc]\ntransient=true\n",
      }),
    );
    expect(cfg).toEqual({
      file: ETC_CONFIG_PATH,
      replaced: USR_CONFIG_PATH,
      keypath: DEFAULT_KEYPATH,
      keypathFromConfig: false,
      etcTransient: true,
      rootTransient: false,
      rootTransientRo: false,
      emergencyShell: false,
      floor: {},
      measure: { tpm: "auto", pcr: 15 },
    });
  });

  it("still fails on a broken /usr/lib file even when /etc replaces it (ostree parses both)", () => {
    expect(() =>
      readPrepareRootConfig(
        filesFs({
          [USR_CONFIG_PATH]: "[composefs]\nenabled=bogus\n",
          [ETC_CONFIG_PATH]: "[composefs]\nenabled=yes\n",
        }),
      ),
    ).toThrow('Cannot parse "/usr/lib/ostree/prepare-root.conf"');
  });

  it("reads under another initramfs root and gives defaults with no file", () => {
    const fs = filesFs({ [`/initrd${ETC_CONFIG_PATH}`]: "[composefs]\nenabled=maybe\n" });
    expect(readPrepareRootConfig(fs, "/initrd/").composefs?.value).toBe("maybe");
    expect(readPrepareRootConfig(fs)).toEqual(emptyConfig());
  });
});

describe("parseLegacyRepoReadonly()", () => {
  const cases: [string | undefined, boolean][] = [
    [undefined, false],
    ["[core]\nrepo_version=1\n", false],
    ["[sysroot]\nreadonly=true\n", true],
    ["[sysroot]\nreadonly = 1 \n", true],
    ["[sysroot]\nreadonly=yes\n", false],
    ["not a key file", false],
  ];
  it.each(cases)("reads %j as %s (errors count as false, as in ostree)", (text, want) => {
    expect(
      parseLegacyRepoReadonly(text === undefined ? undefined : enc(text), "/sysroot/ostree/repo/config"),
    ).toBe(want);
  });
});
