import { describe, expect, it } from "vitest";
import { fakeStat } from "../../test/helpers/fake-stat.ts";
import { C2_DIGEST } from "../../test/helpers/golden.ts";
import { cappedRead } from "../base/fs.ts";
import type { InitSys } from "../sys/types.ts";
import { failClosed } from "./fail-closed.ts";

/** An initramfs holding /proc/cmdline and these files; power-off and kmsg writes are recorded. */
function run(cmdline: string, files: Record<string, string> = {}) {
  const all: Record<string, string> = { "/proc/cmdline": `${cmdline}\n`, ...files };
  const calls: string[] = [];
  const err: string[] = [];
  const bytes = (p: string) => new TextEncoder().encode(all[p] ?? "");
  const lstat = (p: string) =>
    all[p] === undefined ? undefined : fakeStat("file", { size: bytes(p).length });
  const sys = {
    readFile: (p: string, cap: number, what?: string) => cappedRead(lstat, bytes, p, cap, what) as Uint8Array,
    readFileIfExists: (p: string, cap: number, what?: string) => cappedRead(lstat, bytes, p, cap, what),
    writeDevice: (p: string, t: string) => calls.push(`write ${p} ${t}`),
    powerOff: () => {
      calls.push("poweroff");
      throw new Error("powered off");
    },
  } as unknown as InitSys;
  let code: number | undefined;
  try {
    code = failClosed(sys, (l) => err.push(l));
  } catch (e) {
    if ((e as Error).message !== "powered off") throw e;
  }
  return { code, calls, err };
}

const SIGNED = { "/usr/lib/ostree/prepare-root.conf": "[composefs]\nenabled = signed\n" };
const LINE =
  "sealroot: no emergency shell after the refusal: the boot verifies its root and the initramfs's prepare-root.conf has no [sealroot] emergency-shell = yes; powering off\n";

describe("sealroot fail-closed: after a refusal, a shell only where the boot verifies nothing or the initramfs opts in", () => {
  it("lets the shell follow a boot that verifies nothing", () => {
    expect(run("ostree=/ostree/boot.0/x/y/0 rd.shell")).toEqual({ code: 0, calls: [], err: [] });
  });

  it("powers off after a signed boot's refusal, saying why on stderr and /dev/kmsg", () => {
    expect(run("ostree=/ostree/boot.0/x/y/0 rd.shell", SIGNED)).toEqual({
      code: undefined,
      calls: [`write /dev/kmsg <2>${LINE}`, "poweroff"],
      err: [LINE],
    });
  });

  it("powers off when the unverified command line itself asks for verity", () => {
    expect(run(`ostree=/x ot-composefs=digest=${C2_DIGEST}`).calls).toEqual([
      expect.stringMatching(/^write \/dev\/kmsg /),
      "poweroff",
    ]);
  });

  it("lets the shell follow a signed boot whose initramfs says [sealroot] emergency-shell = yes", () => {
    const conf = {
      "/etc/ostree/prepare-root.conf": "[composefs]\nenabled = signed\n[sealroot]\nemergency-shell = yes\n",
    };
    expect(run("ostree=/x", conf).code).toBe(0);
  });

  it("powers off when the initramfs's config does not parse", () => {
    const r = run("ostree=/x", { "/etc/ostree/prepare-root.conf": "[composefs]\nenabled = sign\n" });
    expect(r.calls.at(-1)).toBe("poweroff");
    expect(r.err[0]).toMatch(
      /^sealroot: no emergency shell after the refusal: the initramfs's prepare-root.conf does not parse \(Cannot parse/,
    );
  });
});
