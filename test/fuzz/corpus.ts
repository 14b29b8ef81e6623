// Seed inputs of the fuzz tier, all taken from the golden fixtures (read-only) or from the examples of the
// policy tests and docs: ostree objects out of the fixture repositories (extracted through
// test/helpers/fixtures.ts, good and bad/ sets), kernel command lines, prepare-root.conf files, key
// files, composefs images and dumpfiles. Each loader returns distinct byte strings in a stable order.

import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { FormatError } from "../../src/base/errors.ts";
import { BOOT_ENTRIES_DIR, parseBootEntry } from "../../src/formats/boot-entry.ts";
import {
  decodeDirmeta,
  encodeFilemeta,
  S_IFLNK,
  S_IFREG,
  splitLenPrefixed,
} from "../../src/formats/ostree/objects.ts";
import { COMPOSEFS, extracted, OSTREE } from "../helpers/fixtures.ts";

const enc = (s: string) => new TextEncoder().encode(s);

function distinct(items: Uint8Array[]): Uint8Array[] {
  const seen = new Set<string>();
  const out: Uint8Array[] = [];
  for (const b of items) {
    const k = Buffer.from(b).toString("base64");
    if (!seen.has(k)) {
      seen.add(k);
      out.push(b);
    }
  }
  return out;
}

const read = (path: string) => new Uint8Array(readFileSync(path));

const REPOS = [
  "ostree/repo-bare-user.tar",
  "ostree/repo-archive-z2.tar",
  "ostree/bad/repo-corrupt-signature.tar",
  "ostree/bad/repo-signed-by-other.tar",
  "ostree/bad/repo-truncated-commitmeta.tar",
  "ostree/bad/repo-wrong-cfs-digest.tar",
];

/** Every object with extension `ext` in the fixture repositories (good and bad/), deduplicated. */
export function ostreeObjects(ext: string): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const tar of REPOS) {
    const dir = join(extracted(tar), "objects");
    for (const xx of readdirSync(dir).sort()) {
      for (const f of readdirSync(join(dir, xx)).sort()) {
        if (f.endsWith(`.${ext}`)) out.push(read(join(dir, xx, f)));
      }
    }
  }
  return distinct(out);
}

/** Commitmeta objects of the repositories plus the loose bad/ variants (corrupt, other key, truncated). */
export function commitmetas(): Uint8Array[] {
  const bad = readdirSync(join(OSTREE, "bad"))
    .filter((n) => n.startsWith("c2.commitmeta.") && !n.endsWith(".info"))
    .sort()
    .map((n) => read(join(OSTREE, "bad", n)));
  return distinct([...ostreeObjects("commitmeta"), ...bad]);
}

/** The length-prefixed headers of archive-z2 `.filez` objects (the zlib body cut off at 64 bytes). */
export function filezHeaders(): Uint8Array[] {
  return distinct(
    ostreeObjects("filez").map((b) => {
      try {
        const { header } = splitLenPrefixed(b, "seed");
        return b.subarray(0, Math.min(b.length, 8 + header.length + 64));
      } catch (e) {
        if (e instanceof FormatError) return b.subarray(0, 256);
        throw e;
      }
    }),
  );
}

/** bare-user `user.ostreemeta` values: the fixture dirmetas' owners and xattrs on file and symlink modes. */
export function filemetas(): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const d of ostreeObjects("dirmeta")) {
    const m = decodeDirmeta(d);
    for (const mode of [S_IFREG | 0o644, S_IFREG | 0o4755, S_IFLNK | 0o777])
      out.push(encodeFilemeta({ ...m, mode }));
  }
  return distinct(out);
}

const D = "0".repeat(63);
/** Kernel command lines: the fixture boot entries and logs, and the examples of the cmdline/policy tests. */
export function cmdlines(): Uint8Array[] {
  const entries = join(extracted("ostree/sysroot.tar"), BOOT_ENTRIES_DIR);
  const fromEntries = readdirSync(entries)
    .sort()
    .flatMap((f) => parseBootEntry(readFileSync(join(entries, f), "utf8")).get("options") ?? []);
  const fromLogs = readdirSync(join(OSTREE, "logs"))
    .sort()
    .flatMap((f) => [
      ...readFileSync(join(OSTREE, "logs", f), "utf8").matchAll(/ostree-prepare-root \S+ '([^']*)'/g),
    ])
    .map((m) => m[1] as string);
  const examples = [
    "",
    "\n",
    "console=ttyS0 panic=-1 loglevel=4",
    "root=LABEL=root rw ostree=/ostree/boot.0/refos/x/0 ostree.prepare-root.composefs=1\n",
    "ostree=/a ostree=/b",
    "ostree=/a\t",
    "ostree=/../../etc",
    "ostree=",
    "androidboot.slot_suffix=_a ostree=/x",
    "androidboot.slot_suffix=_b",
    "androidboot.slot_suffix=_c",
    "androidboot.foo ostree=/x",
    "ostree=/x ostree.prepare-root.composefs=signed ot-signed=/k",
    "ostree=/x ostree.prepare-root.composefs=signed\t ot-signed=/k\t",
    "ostree=/x ostree.prepare-root.composefs=verity",
    "ostree=/x ostree.prepare-root.composefs=0 ostree.prepare-root.composefs=false ostree.prepare-root.composefs=no ",
    "ostree=/x ostree.prepare-root.composefs=maybe ostree.prepare-root.composefs=1 ostree.prepare-root.composefs=true ",
    "ostree=/x ostree.prepare-root.composefs=yes ostree.prepare-root.composefs=signed",
    "ostree=/x ostree.prepare-root.composefs=YES",
    "ostree=/x ot-composefs=on ot-composefs=off",
    "ostree=/x ot-composefs=maybe",
    `ostree=/x ot-composefs=digest=${D}a ot-composefs=digest=${D}b`,
    `ostree=/x ot-composefs=digest=${D}A ot-composefs=digest=${D}a`,
    "ostree=/x ot-composefs=digest=abcd",
    "ostree=/x ot-composefs=signed=/etc/k.pub ot-signed=/k ot-composefs=signed=relative",
    "ot-composefs ot-composefsx=on xot-signed=/k ostree.prepare-root.composefsx=1",
    "ot-composefs= ot-signed= ostree.prepare-root.composefs=",
  ];
  return distinct([...fromEntries, ...fromLogs, ...examples].map(enc));
}

/** prepare-root.conf: the fixture trees' files and the examples of the config tests. */
export function prepareRootConfs(): Uint8Array[] {
  const files = [
    join(extracted("ostree/trees/tree2.tar"), "usr/lib/ostree/prepare-root.conf"),
    join(extracted("ostree/sysroot.tar"), "ostree/repo/config"),
    join(extracted("ostree/repo-bare-user.tar"), "config"),
  ].map(read);
  const examples = [
    "",
    "[composefs]\nenabled = signed\n",
    "[composefs]\nenabled = verity\nkeypath = /etc/k.pub \n",
    "[composefs]\nenabled = maybe\n[sysroot]\nreadonly = true\n",
    "[composefs]\nenabled=no\n[sysroot]\nreadonly=false\n[etc]\ntransient=1\n[root]\ntransient-ro=true\n",
    "[root]\ntransient=true\ntransient-ro=true\n",
    "[root]\ntransient=true\n[composefs]\nenabled=0\n",
    "# leading comment\n\n  [composefs]  \n\tenabled =  signed \n# c\nkeypath=/k\r\n[sysroot]\nreadonly=true",
    "[a]\nk=1\n[b]\nx=y\n[a]\nk=2\nj=3\n",
    "[g]\nName[de_DE.UTF-8@euro]=x\nmy key = v\n",
    "[composefs]\nenabled = signed\nkeypath = /etc/ostree/initramfs-root-binding.key\n[etc]\ntransient = false\n",
    "[sysroot]\nreadonly = yes\n",
    "[core]\nrepo_version=1\nmode=bare\n[sysroot]\nreadonly=true\nbootloader=none\n",
    "[g]\ns=a\\sb\\tc\\nd\\\\e\\x\nEncoding=UTF-8\n",
  ];
  return distinct([...files, ...examples.map(enc)]);
}

/** Public key files (one base64 key per line) and, as mis-typed inputs, the other key formats. */
export function publicKeyFiles(): Uint8Array[] {
  const k = join(OSTREE, "keys");
  const names = readdirSync(k).sort();
  const pub = names.filter((n) => n.endsWith(".pub")).map((n) => read(join(k, n)));
  const other = names.filter((n) => /\.(pem|secret|raw)$/.test(n)).map((n) => read(join(k, n)));
  return distinct([...pub, ...other, enc("\n\n"), enc(" \tfccpVFMxqohsM+91sWok+sH9hzo168uChhRA/5jsYXs\r\n")]);
}

/** Secret key files (base64 seed ‖ public key per line) and a few near misses. */
export function secretKeyFiles(): Uint8Array[] {
  const k = join(OSTREE, "keys");
  const names = readdirSync(k).sort();
  const secret = names.filter((n) => n.endsWith(".secret")).map((n) => read(join(k, n)));
  const both = secret.map((s) => new TextDecoder().decode(s).trim()).join("\n");
  const pub = names.filter((n) => n.endsWith(".pub")).map((n) => read(join(k, n)));
  return distinct([...secret, enc(`${both}\n`), enc(`${both}\n\n`), ...pub]);
}

/** Composefs images: the composefs golden set, the fixture commits' images and the flipped bad/ one. */
export function composefsImages(): Uint8Array[] {
  const cfs = readdirSync(COMPOSEFS)
    .filter((n) => n.endsWith(".cfs"))
    .sort()
    .map((n) => join(COMPOSEFS, n));
  const ostree = readdirSync(join(OSTREE, "cfs"))
    .filter((n) => n.endsWith(".cfs"))
    .sort()
    .map((n) => join(OSTREE, "cfs", n));
  return distinct([...cfs, ...ostree, join(OSTREE, "bad/deploy-c2.ostree.cfs.flipped")].map(read));
}

/** Dumpfiles up to 16 KiB: the golden inputs (every should-fail one among them) and composefs-info output. */
export function dumpfiles(): Uint8Array[] {
  const dumps = [
    ...readdirSync(COMPOSEFS)
      .filter((n) => n.endsWith(".dump"))
      .sort()
      .map((n) => join(COMPOSEFS, n)),
    ...readdirSync(join(OSTREE, "cfs"))
      .filter((n) => n.endsWith(".dump"))
      .sort()
      .map((n) => join(OSTREE, "cfs", n)),
  ];
  return distinct(dumps.map(read).filter((b) => b.length <= 16384));
}
