// The one call recorder under every fake system of the tests (fake-sys.ts's BootSys, kernel-sys.ts's raw
// Sys and InitSys) and the privileged tier's fault-injecting wrapper of the real Sys
// (test/privileged/run-prepare-root.ts): each call becomes one readable line `name(args) = result`, or
// `name(args) → ERRNO` when it failed, and a fault rule can fail any call, by its line, before it changes
// anything. Rules are small stateful functions so a test says which call fails in its own words.

import { SysError } from "../../src/base/errors.ts";

/** Answers the errno a call fails with, or undefined to let it run; sees every recorded line in order. */
export type FaultRule = (line: string) => string | undefined;

/** Fails the `nth` (default first) call whose line starts with `call`. */
export function failNth(call: string, errno: string, nth = 1): FaultRule {
  let seen = 0;
  return (line) => (line.startsWith(call) && ++seen === nth ? errno : undefined);
}

/** Fails the `k`-th recorded call (1-based), whatever it is. */
export function failKth(k: number, errno: string): FaultRule {
  let seen = 0;
  return () => (++seen === k ? errno : undefined);
}

export class Recorder {
  /** Every side-effecting call, in order. */
  readonly calls: string[] = [];

  constructor(private readonly fault: FaultRule = () => undefined) {}

  /** Records `line` and runs the call, unless the fault rule fails it first (then nothing changes). A
   * failure of the call itself is recorded with its errno and rethrown. `show` renders the result. */
  rec<T>(line: string, run: () => T, show: (r: T) => string | undefined = () => undefined): T {
    const injected = this.fault(line);
    if (injected !== undefined) {
      this.calls.push(`${line} → ${injected}`);
      throw new SysError(injected, `Cannot ${line}: ${injected} (injected fault)`);
    }
    let r: T;
    try {
      r = run();
    } catch (e) {
      this.calls.push(`${line} → ${e instanceof SysError ? e.errno : String(e)}`);
      throw e;
    }
    const shown = show(r);
    this.calls.push(shown === undefined ? line : `${line} = ${shown}`);
    return r;
  }
}
