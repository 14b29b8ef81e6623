// The structured log: pino writing synchronously to stdout (no transports — worker threads do not work in
// a compiled binary), one event per phase with stable keys (phase, ok, ms, path, expected, actual, errno).

import pino from "pino";

export type EventLog = (event: Record<string, unknown>) => void;

export function stdoutEventLog(name: string): EventLog {
  const logger = pino(
    { name, base: null, timestamp: pino.stdTimeFunctions.isoTime, messageKey: "msg" },
    pino.destination({ dest: 1, sync: true }),
  );
  return (event) => {
    const failed = event.ok === false;
    if (failed) logger.error(event, String(event.phase));
    else logger.info(event, String(event.phase));
  };
}
