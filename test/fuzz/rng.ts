// The fuzz tier's random source: sfc32 seeded from (run seed, target name, iteration), so every input
// is reproducible on its own from those three numbers — a finding is replayed without regenerating the
// inputs before it. Pure, no Math.random.

/** FNV-1a of a string, for mixing a target name into the seed. */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

function splitmix32(x: number): number {
  let z = (x + 0x9e3779b9) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}

export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number, stream: number, iteration: number) {
    this.a = splitmix32(seed >>> 0);
    this.b = splitmix32(this.a ^ stream);
    this.c = splitmix32(this.b ^ (iteration >>> 0));
    this.d = splitmix32(this.c ^ Math.floor(iteration / 2 ** 32));
    for (let i = 0; i < 12; i++) this.u32();
  }

  /** Uniform 32-bit unsigned integer. */
  u32(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t;
  }

  /** Uniform integer in [0, n) for 0 < n ≤ 2^32; 0 when n ≤ 0. */
  below(n: number): number {
    return n <= 0 ? 0 : Math.floor((this.u32() / 2 ** 32) * n);
  }

  /** Uniform integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.below(hi - lo + 1);
  }

  chance(p: number): boolean {
    return this.u32() / 2 ** 32 < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error("Rng.pick() of an empty list");
    return items[this.below(items.length)] as T;
  }

  /** Index chosen with the given relative weights. */
  weighted(weights: readonly number[]): number {
    let total = 0;
    for (const w of weights) total += w;
    let x = (this.u32() / 2 ** 32) * total;
    for (let i = 0; i < weights.length; i++) {
      x -= weights[i] as number;
      if (x < 0) return i;
    }
    return weights.length - 1;
  }

  /** 1 + a geometric count with mean about 1/(1-p), capped at max: small stacks are the common case. */
  count(max: number, p = 0.5): number {
    let n = 1;
    while (n < max && this.chance(p)) n++;
    return n;
  }

  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.u32() & 0xff;
    return out;
  }
}

/** The generator of iteration `iteration` of target `target` in a run seeded with `seed`. */
export function rngFor(seed: number, target: string, iteration: number): Rng {
  return new Rng(seed, fnv1a(target), iteration);
}
