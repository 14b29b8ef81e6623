// One timed phase of a boot: run it, log one event with its name, outcome and milliseconds (plus the
// fields its result gives), and hand the result or the error on. Shared by the prepare-root orchestrator
// and the PID-1 mode so that every phase event has the same shape.

import { messageOf } from "../base/errors.ts";

export type LogEvent = { phase: string; ok: boolean; ms: number } & Record<string, unknown>;

export interface PhaseClock {
  log: (e: LogEvent) => void;
  /** Milliseconds on a monotonic clock. */
  now: () => number;
}

/** Runs `fn` as the phase `name`; `took` receives its duration, success or not. */
export function runPhase<T>(
  c: PhaseClock,
  name: string,
  fn: () => T,
  fields: (r: T) => Record<string, unknown> = () => ({}),
  took: (ms: number) => void = () => {},
): T {
  const t0 = c.now();
  try {
    const r = fn();
    const ms = c.now() - t0;
    took(ms);
    c.log({ phase: name, ok: true, ms, ...fields(r) });
    return r;
  } catch (e) {
    const ms = c.now() - t0;
    took(ms);
    c.log({ phase: name, ok: false, ms, error: messageOf(e) });
    throw e;
  }
}
