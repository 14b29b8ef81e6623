// The structured log: one JSON line per phase on stdout, written synchronously (the boot may switch root
// or power off right after an event). The line is pino's (`{"level":30,"time":ISO,…event,"msg":phase}`,
// level 50 for a failed phase) without pino: loading pino cost ~0.15 s of every boot under QEMU TCG, for
// what is one JSON.stringify per phase here.

import { writeAll } from "../sys/write.ts";

export type EventLog = (event: Record<string, unknown>) => void;

/** pino's numeric levels. */
const INFO = 30;
const ERROR = 50;

/** One event's line: level, time, the event's own keys, msg (as pino orders them); a bigint as a string. */
export function eventLine(event: Record<string, unknown>, time: Date): string {
  const record = { level: event.ok === false ? ERROR : INFO, time: time.toISOString(), ...event };
  return `${JSON.stringify({ ...record, msg: String(event.phase) }, (_key, v) =>
    typeof v === "bigint" ? v.toString() : v,
  )}\n`;
}

export function stdoutEventLog(): EventLog {
  return (event) => writeAll(1, eventLine(event, new Date()));
}
