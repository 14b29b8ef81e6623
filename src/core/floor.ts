// The anti-rollback floor, pure: `[sealroot] min-timestamp = <unix seconds>` and `min-version = <string>`
// from the initramfs's prepare-root.conf, raised (never lowered) by a kernel argument, and the check of a
// signed commit against it — its timestamp (the commit's own, big-endian in the object) and its `version`
// metadata compared as ostree orders versions (core/version.ts). Parsing the config key (core/config.ts)
// and the karg (core/cmdline.ts), and refusing at stage `commit` (core/decision.ts), are elsewhere.

import { FormatError, q } from "../base/errors.ts";
import { compareOstreeVersions } from "./version.ts";

export interface RollbackFloor {
  /** Unix seconds: a commit with an older timestamp is refused. */
  minTimestamp?: bigint | undefined;
  /** A commit whose `version` metadata sorts below this (or that has none) is refused. */
  minVersion?: string | undefined;
}

/** Parses `min-timestamp`: decimal unix seconds, 0 … 2^64-1 (the commit field's range). */
export function parseMinTimestamp(value: string, where: string): bigint {
  if (!/^[0-9]{1,20}$/.test(value) || BigInt(value) > 0xffffffffffffffffn)
    throw new FormatError(
      `Cannot use ${where} min-timestamp ${q(value)}: not a number, expected unix seconds (decimal digits)`,
    );
  return BigInt(value);
}

/**
 * The floor a kernel argument may move: each part of `raise` counts only where it is higher than the
 * initramfs's (`base`), so a command line can raise the floor and never lower it. A part `base` lacks is
 * taken from `raise` (a floor where there was none is higher).
 */
export function raiseFloor(base: RollbackFloor, raise: RollbackFloor): RollbackFloor {
  const ts =
    raise.minTimestamp !== undefined &&
    (base.minTimestamp === undefined || raise.minTimestamp > base.minTimestamp)
      ? raise.minTimestamp
      : base.minTimestamp;
  const ver =
    raise.minVersion !== undefined &&
    (base.minVersion === undefined || compareOstreeVersions(raise.minVersion, base.minVersion) > 0)
      ? raise.minVersion
      : base.minVersion;
  return {
    ...(ts === undefined ? {} : { minTimestamp: ts }),
    ...(ver === undefined ? {} : { minVersion: ver }),
  };
}

/** UTC as `YYYY-MM-DD HH:MM:SS UTC`, for a message; seconds past JS dates' range print alone. */
function utc(s: bigint): string {
  const ms = Number(s) * 1000;
  if (!Number.isFinite(ms) || ms > 8.64e15) return `${s}`;
  return `${s} (${new Date(ms)
    .toISOString()
    .replace("T", " ")
    .replace(/\.\d+Z$/, " UTC")})`;
}

/**
 * Why `commit` is below the floor, as the reason of a refusal at stage `commit` — both values in it — or
 * undefined when it is at or above every part of the floor. `version` is the commit's `version`
 * metadata, undefined when it has none (then any min-version refuses it).
 */
export function floorViolation(
  commit: { checksum: string; timestamp: bigint; version?: string | undefined },
  floor: RollbackFloor,
): string | undefined {
  if (floor.minTimestamp !== undefined && commit.timestamp < floor.minTimestamp)
    return `Cannot boot commit ${q(commit.checksum)}: timestamp ${utc(commit.timestamp)}, expected at least min-timestamp ${utc(floor.minTimestamp)}`;
  if (floor.minVersion !== undefined) {
    if (commit.version === undefined)
      return `Cannot boot commit ${q(commit.checksum)}: no version metadata, expected at least min-version ${q(floor.minVersion)}`;
    if (compareOstreeVersions(commit.version, floor.minVersion) < 0)
      return `Cannot boot commit ${q(commit.checksum)}: version ${q(commit.version)}, expected at least min-version ${q(floor.minVersion)}`;
  }
  return undefined;
}
