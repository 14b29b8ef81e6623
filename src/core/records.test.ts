import { describe, expect, it } from "vitest";
import { toHex } from "../formats/bytes.ts";
import { decodeVardict, print } from "../formats/gvariant.ts";
import { encodeOstreeBooted } from "./records.ts";

describe("encodeOstreeBooted()", () => {
  it("starts with the bytes the reference wrote for a composefs boot (logs/prepare-root-karg.log)", () => {
    // od of /run/ostree-booted after `ostree.prepare-root.composefs=1`: dev 0xfe00, ino 0x21433c
    const bytes = encodeOstreeBooted({
      deploymentDev: 0xfe00n,
      deploymentIno: 0x21433cn,
      rootTransient: false,
      rootTransientRo: false,
      composefs: { verity: false },
      sysrootRo: true,
    });
    expect(toHex(bytes.subarray(0, 80))).toBe(
      "6261636b696e672d726f6f742d6465766963652d696e6f646500000000000000" +
        "00fe0000000000003c432100000000000028747429" +
        "1a0000726f6f742e7472616e7369656e7400000000620f00000000",
    );
  });

  it("keeps ostree's keys, types and order, with absent keys left out", () => {
    const cases: [Parameters<typeof encodeOstreeBooted>[0], string][] = [
      [
        {
          deploymentDev: 1n,
          deploymentIno: 2n,
          rootTransient: false,
          rootTransientRo: false,
          sysrootRo: false,
        },
        "{'backing-root-device-inode': <(uint64 1, uint64 2)>, 'root.transient': <false>, 'root.transient-ro': <false>, 'sysroot-ro': <false>}",
      ],
      [
        {
          deploymentDev: 1n,
          deploymentIno: 2n,
          rootTransient: false,
          rootTransientRo: true,
          signedKeypath: "/etc/ostree/initramfs-root-binding.key",
          composefs: { verity: true },
          sysrootRo: true,
          transientEtc: "/run/ostree/transient-etc.abc",
        },
        "{'backing-root-device-inode': <(uint64 1, uint64 2)>, 'root.transient': <true>, 'root.transient-ro': <true>, 'composefs.signed': <'/etc/ostree/initramfs-root-binding.key'>, 'composefs': <true>, 'composefs.verity': <true>, 'sysroot-ro': <true>, 'transient-etc': <'/run/ostree/transient-etc.abc'>}",
      ],
    ];
    for (const [rec, text] of cases) {
      expect(print("a{sv}", decodeVardict(encodeOstreeBooted(rec)) as never)).toBe(text);
    }
  });
});
