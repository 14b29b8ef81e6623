// The order of `ostree.version` strings, for the anti-rollback floor `[sealroot] min-version`. ostree has
// no ordering of commit versions of its own: libostree compares versions in exactly one place,
// compare_boot_loader_configs() in src/libostree/ostree-sysroot.c, which sorts boot entries with glibc's
// strverscmp(3) (read at ostree 462046551181); its anti-downgrade checks (pull's timestamp-check,
// ostree_sysroot_upgrader_check_timestamps(), which rpm-ostree uses) compare commit timestamps, and
// rpm-ostree and bootc only print the version. So this is strverscmp(3), byte for byte on the UTF-8
// bytes, proved against glibc's own in test/unit/version-glibc.test.ts. Pure.

const NUL = 0;
const ZERO = 0x30;

/** What a byte is to strverscmp: a non-digit (NUL included), a nonzero digit, or '0'. */
type Kind = "other" | "digit" | "zero";
function kind(c: number): Kind {
  if (c === ZERO) return "zero";
  return c > ZERO && c <= 0x39 ? "digit" : "other";
}
const isDigit = (c: number | undefined) => c !== undefined && c >= ZERO && c <= 0x39;

/** Where the common prefix leaves off: outside a number, in an integral part (it began with 1-9), in a
 * fractional part (it began with 0 and has had a nonzero digit), or in a run of leading zeros. */
type Run = "none" | "integral" | "fraction" | "zeros";
function after(run: Run, k: Kind): Run {
  if (k === "other") return "none";
  switch (run) {
    case "none":
      return k === "zero" ? "zeros" : "integral";
    case "integral":
      return "integral";
    case "fraction":
      return "fraction";
    case "zeros":
      return k === "zero" ? "zeros" : "fraction";
  }
}

/**
 * Compares two version strings as glibc's strverscmp(3) does: < 0, 0 or > 0 (returned as -1, 0, 1).
 * Runs of digits compare as numbers when they are integral (`1.9 < 1.10`, `41.20250101.0 < 41.20250102.0`);
 * a run beginning with `0` is a fractional part and compares digit by digit, below any integral part
 * (`000 < 00 < 01 < 010 < 09 < 0 < 1 < 9 < 10`); everything else compares by byte value.
 */
export function compareOstreeVersions(a: string, b: string): number {
  const s1 = new TextEncoder().encode(a);
  const s2 = new TextEncoder().encode(b);
  let i = 0;
  let run: Run = "none";
  for (;;) {
    const c1 = s1[i] ?? NUL;
    const c2 = s2[i] ?? NUL;
    if (c1 !== c2) return Math.sign(decide(run, s1, s2, i));
    if (c1 === NUL) return 0;
    run = after(run, kind(c1));
    i++;
  }
}

/** The verdict at the first differing byte `i`, given the run the common prefix left off in. */
function decide(run: Run, s1: Uint8Array, s2: Uint8Array, i: number): number {
  const c1 = s1[i] ?? NUL;
  const c2 = s2[i] ?? NUL;
  const k1 = kind(c1);
  const k2 = kind(c2);
  const diff = c1 - c2;
  const byLength = (): number => {
    // both numbers go on: the longer digit run is the larger number, equal lengths go by this digit
    for (let j = i + 1; ; j++) {
      const d1 = isDigit(s1[j]);
      const d2 = isDigit(s2[j]);
      if (d1 && !d2) return 1;
      if (!d1) return d2 ? -1 : diff;
    }
  };
  switch (run) {
    case "fraction":
      return diff;
    case "none":
      // two numbers start here: integral ones compare by length; a fraction (0…) sorts below by its byte
      return k1 === "digit" && k2 === "digit" ? byLength() : diff;
    case "integral":
      // inside one integral number: the one that stops first is smaller
      if (k1 === "other" && k2 === "other") return diff;
      if (k1 === "other") return -1;
      if (k2 === "other") return 1;
      return byLength();
    case "zeros":
      // only zeros so far: more zeros, or a nonzero digit after them, is a smaller fraction
      if (k1 === "other" && k2 === "other") return diff;
      if (k1 === "other") return 1;
      if (k2 === "other") return -1;
      return diff;
  }
}
