// The boot tests' console parsing, on serial text as QEMU captured it (no VM): sealroot's refusal reason is
// read from a complete copy only — a copy cut short by a kernel line (the /dev/kmsg echo of the same
// reason, printed while the console write was still draining) is dropped, its other copy counts.

import { describe, expect, it } from "vitest";
import { refusalLines } from "./lib/dracut.ts";

const REASON =
  'sealroot: prepare-root refused (image): Composefs image "/x/.ostree.cfs" has digest ab, expected cd';

describe("refusalLines", () => {
  it.each<[string, string, string[]]>([
    ["the console copy (busybox, dracut without systemd)", `${REASON}\n`, [REASON]],
    ["the kmsg copy (busybox)", `[    5.634305] ${REASON}\n`, [REASON]],
    ["the journal's copy (dracut with systemd)", `[   12.994334] sealroot[218]: ${REASON}\n`, [REASON]],
    [
      "the console copy cut by the kmsg copy, its rest on the next line (observed in the busybox kind)",
      `${REASON.slice(0, 60)}[    5.634305] ${REASON}\n${REASON.slice(60)}\n`,
      [REASON],
    ],
    ["the console copy cut by another kernel line", `${REASON.slice(0, 60)}[    5.6] EXT4-fs (vda): x\n`, []],
    ["both copies whole", `${REASON}\n[    5.6] ${REASON}\n`, [REASON, REASON]],
    ["no reason", "[    1.0] Run /init as init process\nSEALROOT-OS: pass version=2\n", []],
  ])("%s", (_what, serial, expected) => {
    expect(refusalLines(serial)).toEqual(expected);
  });
});
