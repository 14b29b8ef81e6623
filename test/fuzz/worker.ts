// Worker thread of `npm run fuzz`: runs one range of one target (harness.runRange) and reports findings,
// progress and the final stats to run.ts, which watches `progress[0]` (the iteration in flight) to catch
// an input that hangs and terminates this thread if one does.

import { parentPort, workerData } from "node:worker_threads";
import { prepare, runRange, targetNamed } from "./harness.ts";

export interface WorkerJob {
  target: string;
  seed: number;
  from: number;
  to: number;
  capMs: number;
  deadline: number;
  progress: SharedArrayBuffer;
  /** Finding signatures already reported for this target (by an earlier worker). */
  seen: string[];
}

const job = workerData as WorkerJob;
const port = parentPort!;
const p = prepare(targetNamed(job.target));
const stats = runRange(p, {
  seed: job.seed,
  from: job.from,
  to: job.to,
  capMs: job.capMs,
  deadline: job.deadline,
  progress: new Int32Array(job.progress),
  seen: new Set(job.seen),
  onFinding: (finding) => port.postMessage({ type: "finding", finding }),
  onProgress: (s) => port.postMessage({ type: "progress", stats: s }),
  progressMs: 1000,
});
port.postMessage({ type: "done", stats });
