// What prepare-root leaves in /run for the booted system: `/run/ostree-booted`, the GVariant `a{sv}` that
// ostree-remount, libostree and ostree-system-generator read after switch-root — same keys, types,
// insertion order and absences as ostree-prepare-root 2026.4 (anchors.md §1.7). Pure: bytes out.

import { type DictEntries, encodeVardict, Variant } from "../formats/gvariant.ts";

export interface OstreeBootedRecord {
  /** st_dev and st_ino of the deployment directory. */
  deploymentDev: bigint;
  deploymentIno: bigint;
  rootTransient: boolean;
  rootTransientRo: boolean;
  /** The key file a signature verified with (signed mode only). */
  signedKeypath?: string;
  /** Present only when the root is the composefs mount. */
  composefs?: { verity: boolean };
  sysrootRo: boolean;
  /** The transient /etc directory (etc.transient only). */
  transientEtc?: string;
}

export function encodeOstreeBooted(r: OstreeBootedRecord): Uint8Array {
  const e: DictEntries = [
    ["backing-root-device-inode", new Variant("(tt)", [r.deploymentDev, r.deploymentIno])],
    ["root.transient", new Variant("b", r.rootTransient || r.rootTransientRo)],
    ["root.transient-ro", new Variant("b", r.rootTransientRo)],
  ];
  if (r.signedKeypath !== undefined) e.push(["composefs.signed", new Variant("s", r.signedKeypath)]);
  if (r.composefs) {
    e.push(["composefs", new Variant("b", true)]);
    e.push(["composefs.verity", new Variant("b", r.composefs.verity)]);
  }
  e.push(["sysroot-ro", new Variant("b", r.sysrootRo)]);
  if (r.transientEtc !== undefined) e.push(["transient-etc", new Variant("s", r.transientEtc)]);
  return encodeVardict(e);
}
