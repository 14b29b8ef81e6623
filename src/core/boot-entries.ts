// ostree's boot entries of a sysroot in ostree's deployment order, read over the injected FsRead: what
// `ostree admin status` counts deployments by (`sealroot deploy-image --deployment N`) and the entry the
// boot loader starts by default (`sealroot verify` without --cmdline). Parsing one entry is
// src/formats/boot-entry.ts's. Pure: it reads the entries and trusts nothing they say.

import type { FsRead } from "../base/fs.ts";
import { BOOT_ENTRIES_DIR, isOstreeBootEntryName, parseBootEntry } from "../formats/boot-entry.ts";
import { utf8 } from "../formats/bytes.ts";
import { MAX_KEYFILE_BYTES } from "../formats/keyfile.ts";
import { cmdlineTarget } from "./cmdline.ts";
import { compareOstreeVersions } from "./version.ts";

export interface BootEntry {
  /** Absolute path of the `.conf` file. */
  file: string;
  version: string | undefined;
  /** Its `options` line: the kernel command line the boot loader passes. */
  options: string;
  /** The `ostree=` boot symlink of its `options` line. */
  target: string;
}

/**
 * The ostree boot entries of `<sysroot>/boot/loader/entries` (`ostree-*.conf`) in ostree's deployment
 * order (compare_boot_loader_configs: `version` descending by strverscmp, entries without a version
 * last, ties in file-name order). Entries without an `ostree=` argument are not ostree's and are
 * skipped, as ostree skips them; the other arguments are not checked here (the policy does that). Each
 * entry is read capped at MAX_KEYFILE_BYTES as a "boot entry".
 */
export function listBootEntries(fs: FsRead, sysroot: string): BootEntry[] {
  const dir = `${sysroot}/${BOOT_ENTRIES_DIR}`;
  if (fs.lstatIfExists(dir) === undefined) return [];
  const out: BootEntry[] = [];
  for (const name of fs.readdir(dir).sort()) {
    if (!isOstreeBootEntryName(name)) continue;
    const file = `${dir}/${name}`;
    const fields = parseBootEntry(utf8.decode(fs.readFile(file, MAX_KEYFILE_BYTES, "boot entry")));
    const options = fields.get("options") ?? "";
    const target = cmdlineTarget(options);
    if (!target) continue;
    out.push({ file, version: fields.get("version"), options, target: target.path });
  }
  return out.sort((a, b) => {
    if (a.version !== undefined && b.version !== undefined)
      return -compareOstreeVersions(a.version, b.version);
    return a.version !== undefined ? -1 : b.version !== undefined ? 1 : 0;
  });
}
