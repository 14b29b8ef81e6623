// A Boot Loader Specification entry (`boot/loader/entries/*.conf`) as ostree writes one: `key value`
// lines (`title`, `version`, `linux`, `initrd`, `options`, …). The one parser of these files: text in,
// fields out; which entries exist and their order (ostree's deployment order) are src/core/boot-entries.ts's.
// Pure.

/** Where the entries live, relative to the sysroot. */
export const BOOT_ENTRIES_DIR = "boot/loader/entries";

/** ostree reads only the entries it writes: `ostree-*.conf` (_ostree_sysroot_read_boot_loader_configs). */
export function isOstreeBootEntryName(name: string): boolean {
  return name.startsWith("ostree-") && name.endsWith(".conf");
}

/**
 * The fields of one entry. A field is a line that starts with a key (no leading blank, not `#`), then
 * spaces or tabs, then the value with surrounding whitespace removed; lines end in LF or CRLF. A key
 * given twice keeps its first value (ostree writes each once). Lines without a value are not fields.
 */
export function parseBootEntry(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const m = /^([^\s#]\S*)[ \t]+(.*)$/.exec(line);
    if (m?.[1] && m[2] !== undefined && !fields.has(m[1])) fields.set(m[1], m[2].trim());
  }
  return fields;
}
