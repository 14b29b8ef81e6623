// Measured boot, the pure half: the one event string sealroot measures, the PCR extend rule and its replay, and the record systemd keeps in its userspace measurement log
// (/run/log/systemd/tpm2-measure.log) with a bounded parser for such logs. Talking to the TPM and writing
// the log are src/sys/tpm.ts's; the banks, the event's digests and the command encoding are
// src/formats/tpm2.ts's. No I/O here.

import { FormatError, q } from "../base/errors.ts";
import { digestOf } from "../base/hash.ts";
import { bytesEqual, fromHex, toHex } from "../formats/bytes.ts";
import {
  BANK_DIGEST_SIZE,
  type BankDigest,
  eventDigests,
  isPcrBank,
  PCR_BANKS,
  PCR_COUNT,
  type PcrBank,
} from "../formats/tpm2.ts";

/** `[sealroot] pcr` when unset: PCR 15, the one systemd-pcrfs measures the root file system into. */
export const DEFAULT_MEASURE_PCR = 15;

/** Where systemd-pcrextend (and sealroot, next to it) appends its userspace measurement records. */
export const MEASURE_LOG_PATH = "/run/log/systemd/tpm2-measure.log";

function isPcrIndex(n: unknown): n is number {
  return typeof n === "number" && Number.isInteger(n) && n >= 0 && n < PCR_COUNT;
}

// ---- the event string ----

/** What one boot measures: the signed commit, the composefs image's fs-verity digest, the verifying key,
 * and the trust policy that let it through. `undefined` digest or key reads `none`. */
export interface MeasureEventInput {
  /** The ostree commit checksum (SHA-256, 64 lowercase hex digits). */
  commit: string;
  /** The composefs image's fs-verity digest (SHA-256, 64 lowercase hex digits), or none. */
  composefs?: string | undefined;
  /** The ed25519 public key that verified the commit's signature (32 bytes as 64 hex digits), or none. */
  key?: string | undefined;
  /** The policy mode, e.g. `signed` or `digest`: lowercase letters, digits, `.`, `_`, `+`, `-`. */
  policy: string;
}

/** The version tag in every event string; a change of its fields is a new version. */
export const EVENT_PREFIX = "sealroot:v1:";

const HEX64 = /^[0-9a-f]{64}$/;
const POLICY_MODE = /^[a-z0-9][a-z0-9._+-]{0,63}$/;

function eventField(name: string, value: string, re: RegExp, expected: string): string {
  if (!re.test(value)) {
    const shown = value.length > 80 ? `${value.slice(0, 80)}…` : value;
    throw new FormatError(
      `Cannot build the measurement event: ${name} ${q(shown)} (${value.length} characters), expected ${expected}`,
      { field: name, value },
    );
  }
  return value;
}

/**
 * The exact UTF-8 string sealroot measures:
 * `sealroot:v1:commit=<hex>:composefs=<hex|none>:key=<hex|none>:policy=<mode>`. Every field is checked so
 * that no value can contain the `:` separator or anything a log reader would have to escape.
 */
export function measurementEvent(inp: MeasureEventInput): string {
  const hex = "64 lowercase hex digits";
  const commit = eventField("commit", inp.commit, HEX64, hex);
  const composefs =
    inp.composefs === undefined ? "none" : eventField("composefs digest", inp.composefs, HEX64, hex);
  const key = inp.key === undefined ? "none" : eventField("key", inp.key, HEX64, hex);
  const policy = eventField(
    "policy mode",
    inp.policy,
    POLICY_MODE,
    "1-64 of a-z 0-9 . _ + - starting with a letter or digit",
  );
  return `${EVENT_PREFIX}commit=${commit}:composefs=${composefs}:key=${key}:policy=${policy}`;
}

// ---- digests, extend, replay ----

/** A PCR's value after TPM2_Startup(CLEAR), as systemd-pcrlock assumes it: PCRs 17…22 (the DRTM ones)
 * start as all 0xff, every other all zero. (PCR 0's last byte is the startup locality, which only the
 * firmware log records; a userspace log replays it from zero.) */
export function initialPcrValue(pcr: number, bank: PcrBank): Uint8Array {
  const v = new Uint8Array(BANK_DIGEST_SIZE[bank]);
  if (pcr >= 17 && pcr <= 22) v.fill(0xff);
  return v;
}

/** TPM2_PCR_Extend's rule: new = H(old ‖ digest), in the bank's own hash. */
export function extendPcr(bank: PcrBank, old: Uint8Array, digest: Uint8Array): Uint8Array {
  const size = BANK_DIGEST_SIZE[bank];
  if (old.length !== size || digest.length !== size) {
    throw new FormatError(
      `Cannot extend a ${bank} PCR: value ${old.length} and digest ${digest.length} bytes, expected ${size} each`,
    );
  }
  const both = new Uint8Array(2 * size);
  both.set(old);
  both.set(digest, size);
  return digestOf(bank, both);
}

/** One PCR's replayed value in one bank; `missingAt` is the first log line for that PCR that lacked the
 * bank, in which case no value can be known (`value` is then undefined). */
export interface ReplayedPcr {
  pcr: number;
  bank: PcrBank;
  value: Uint8Array | undefined;
  records: number;
  missingAt?: number;
}

/**
 * Replays log records into PCR values. The banks are those named by any record of the log (as
 * systemd-pcrlock does); each PCR that has records — or only `onlyPcr` when given, records or not — gets
 * one entry per bank, PCRs ascending and banks in PCR_BANKS order. A record for the PCR that lacks one of
 * the banks makes that bank's value unknowable (a TPM extends every active bank at once).
 */
export function replayLog(records: readonly LogRecord[], onlyPcr?: number): ReplayedPcr[] {
  const banks = PCR_BANKS.filter((b) => records.some((r) => r.digests.some((d) => d.bank === b)));
  const pcrs =
    onlyPcr === undefined
      ? [...new Set(records.flatMap((r) => (r.pcr === undefined ? [] : [r.pcr])))].sort((a, b) => a - b)
      : [onlyPcr];
  const out: ReplayedPcr[] = [];
  for (const pcr of pcrs) {
    const mine = records.filter((r) => r.pcr === pcr);
    for (const bank of banks) {
      let value: Uint8Array | undefined = initialPcrValue(pcr, bank);
      let missingAt: number | undefined;
      for (const r of mine) {
        const d = r.digests.find((x) => x.bank === bank);
        if (d === undefined) {
          missingAt ??= r.line;
          value = undefined;
        } else if (value !== undefined) value = extendPcr(bank, value, d.digest);
      }
      out.push({ pcr, bank, value, records: mine.length, ...(missingAt === undefined ? {} : { missingAt }) });
    }
  }
  return out;
}

// ---- the log record systemd writes ----

/** What one record of the userspace log says. */
export interface MeasureRecordInput {
  pcr: number;
  digests: readonly BankDigest[];
  /** The measured string, as systemd puts it in `content.string`. */
  event: string;
  /** /proc/sys/kernel/random/boot_id without dashes: 32 lowercase hex digits (systemd's SD_ID128 form). */
  bootId: string;
  /** CLOCK_BOOTTIME in microseconds when the record was written. */
  timestampUsec: number;
}

const RS = "\x1e";

/**
 * One record of the userspace measurement log, byte for byte as systemd writes it. systemd's
 * `tpm2_userspace_log()` (src/shared/tpm2-util.c, read at commit 506ea38996fc) builds
 *
 *     JSON_BUILD_OBJECT(
 *       JSON_BUILD_PAIR("pcr", JSON_BUILD_UNSIGNED(pcr_index)),
 *       JSON_BUILD_PAIR("digests", JSON_BUILD_VARIANT(array)),      -- [{"hashAlg": "sha256", "digest": hex}, …]
 *       JSON_BUILD_PAIR("content_type", JSON_BUILD_STRING("systemd")),
 *       JSON_BUILD_PAIR("content", JSON_BUILD_OBJECT(
 *         JSON_BUILD_PAIR_CONDITION(description, "string", JSON_BUILD_STRING(description)),
 *         JSON_BUILD_PAIR("bootId", JSON_BUILD_ID128(boot_id)),
 *         JSON_BUILD_PAIR("timestamp", JSON_BUILD_UNSIGNED(now(CLOCK_BOOTTIME))),
 *         JSON_BUILD_PAIR_CONDITION(event_type >= 0, "eventType", …))))
 *
 * and formats it with JSON_FORMAT_SEQ: an ASCII RS (0x1e), the compact JSON, a newline (RFC 7464, "what
 * jq --seq eats"; sd_json_variant_dump() writes '\x1e', the text, '\n'). It calls this "a subset of the
 * TCG Canonical Event Log Format – the JSON flavour" without `recnum`. Each digest object is
 * {"hashAlg","digest"} in that order, hex lowercase. sealroot's event has no systemd eventType
 * (phase, filesystem, volume-key, machine-id, …), so like systemd for such events it writes none; the
 * `string` is the event itself (systemd-pcrextend puts its C-escaped word there; sealroot's event has
 * nothing to escape).
 */
export function formatMeasureRecord(r: MeasureRecordInput): string {
  if (!isPcrIndex(r.pcr))
    throw new FormatError(`Cannot write a measurement record: PCR ${r.pcr}, expected 0…${PCR_COUNT - 1}`);
  if (!/^[0-9a-f]{32}$/.test(r.bootId))
    throw new FormatError(
      `Cannot write a measurement record: boot ID ${q(r.bootId)}, expected 32 lowercase hex digits`,
    );
  if (!Number.isSafeInteger(r.timestampUsec) || r.timestampUsec < 0)
    throw new FormatError(
      `Cannot write a measurement record: timestamp ${r.timestampUsec}, expected microseconds ≥ 0`,
    );
  if (r.digests.length === 0)
    throw new FormatError("Cannot write a measurement record: no digest, expected one per active bank");
  const record = {
    pcr: r.pcr,
    digests: r.digests.map((d) => ({ hashAlg: d.bank, digest: toHex(d.digest) })),
    content_type: "systemd",
    content: { string: r.event, bootId: r.bootId, timestamp: r.timestampUsec },
  };
  // JSON.stringify escapes exactly what systemd's json_format_string() escapes for valid UTF-8 text
  // (", \, \b \f \n \r \t, other controls as \u00xx) and emits compact separators, as JSON_FORMAT_SEQ does.
  return `${RS}${JSON.stringify(record)}\n`;
}

// ---- reading a log ----

/** A whole log is read at most this large (a boot's userspace log holds tens of records of ~300 bytes). */
export const MAX_MEASURE_LOG_BYTES = 4 * 1024 * 1024;
/** At most this many lines. */
export const MAX_MEASURE_LOG_LINES = 65_536;
/** One record's line at most this long. */
export const MAX_MEASURE_LOG_LINE = 64 * 1024;

/** One parsed record. `pcr` is undefined for a record of an NvPCR (`nv_index`), which no PCR replays. */
export interface LogRecord {
  /** 1-based line in the log. */
  line: number;
  pcr: number | undefined;
  nvIndex?: number;
  /** The banks systemd knows; digests of other algorithms (sm3_256, …) are skipped as systemd-pcrlock does. */
  digests: BankDigest[];
  contentType?: string;
  /** `content.string` of a `content_type: "systemd"` record: what was measured. */
  string?: string;
}

const fatalUtf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Parses a userspace measurement log: RFC 7464 records (RS, JSON, newline) as systemd writes them, or
 * plain JSON lines; blank lines are skipped. It reads the fields systemd-pcrlock's
 * `event_log_record_parse_json()` reads — `pcr` (0…23) or `nv_index`, `digests[].hashAlg/digest`,
 * `content_type`, and `content.string` when the type is "systemd" — and throws a FormatError naming the
 * line for anything else: bad UTF-8 or JSON, a missing or mistyped field, a digest of the wrong size, a
 * bank twice in one record, or a log over its caps.
 */
export function parseMeasureLog(bytes: Uint8Array, path = "measurement log"): LogRecord[] {
  if (bytes.length > MAX_MEASURE_LOG_BYTES)
    throw new FormatError(
      `Cannot parse ${q(path)}: ${bytes.length} bytes, expected at most ${MAX_MEASURE_LOG_BYTES}`,
      { path, size: bytes.length, cap: MAX_MEASURE_LOG_BYTES },
    );
  const records: LogRecord[] = [];
  let start = 0;
  let line = 0;
  while (start < bytes.length) {
    line++;
    if (line > MAX_MEASURE_LOG_LINES)
      throw new FormatError(`Cannot parse ${q(path)}: more than ${MAX_MEASURE_LOG_LINES} lines`, {
        path,
        line,
      });
    let end = bytes.indexOf(0x0a, start);
    if (end < 0) end = bytes.length;
    const raw = bytes.subarray(start, end);
    start = end + 1;
    const bad = (why: string): FormatError =>
      new FormatError(`Cannot parse ${q(path)} line ${line}: ${why}`, { path, line });
    if (raw.length > MAX_MEASURE_LOG_LINE)
      throw bad(`${raw.length} bytes, expected a record of at most ${MAX_MEASURE_LOG_LINE}`);
    let text: string;
    try {
      text = fatalUtf8.decode(raw);
    } catch (e) {
      throw new FormatError(
        `Cannot parse ${q(path)} line ${line}: not UTF-8, expected a JSON record`,
        { path, line },
        { cause: e },
      );
    }
    if (text.startsWith(RS)) text = text.slice(1);
    if (text.trim() === "") continue;
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new FormatError(
        `Cannot parse ${q(path)} line ${line}: not JSON (${(e as Error).message}), expected one record per line`,
        { path, line },
        { cause: e },
      );
    }
    records.push(recordOf(json, line, bad));
  }
  return records;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function kindOf(v: unknown): string {
  if (v === undefined) return "missing";
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  return `a ${typeof v}`;
}

function recordOf(json: unknown, line: number, bad: (why: string) => FormatError): LogRecord {
  if (!isObject(json)) throw bad(`${kindOf(json)}, expected a JSON object`);
  const { pcr, nv_index: nv } = json;
  if (pcr !== undefined && nv !== undefined) throw bad(`both "pcr" and "nv_index", expected one of them`);
  if (pcr === undefined && nv === undefined) throw bad(`no "pcr" (or "nv_index"), expected one`);
  if (pcr !== undefined && !isPcrIndex(pcr))
    throw bad(`"pcr" is ${JSON.stringify(pcr)}, expected an integer 0…${PCR_COUNT - 1}`);
  if (nv !== undefined && !(Number.isInteger(nv) && (nv as number) >= 0 && (nv as number) < 0xffffffff))
    throw bad(`"nv_index" is ${JSON.stringify(nv)}, expected an unsigned 32-bit integer`);
  const list = json.digests;
  if (!Array.isArray(list)) throw bad(`"digests" is ${kindOf(list)}, expected an array`);
  const digests: BankDigest[] = [];
  list.forEach((d: unknown, i) => {
    if (!isObject(d)) throw bad(`digests[${i}] is ${kindOf(d)}, expected an object`);
    const alg = d.hashAlg;
    if (typeof alg !== "string") throw bad(`digests[${i}].hashAlg is ${kindOf(alg)}, expected a string`);
    if (!isPcrBank(alg)) return; // an algorithm sealroot cannot replay: skipped, as systemd-pcrlock does
    const hex = d.digest;
    if (typeof hex !== "string") throw bad(`digests[${i}].digest is ${kindOf(hex)}, expected a hex string`);
    const size = BANK_DIGEST_SIZE[alg];
    if (hex.length !== 2 * size || !/^[0-9a-fA-F]*$/.test(hex))
      throw bad(`digests[${i}] ${alg} digest of ${hex.length} characters, expected ${2 * size} hex digits`);
    if (digests.some((x) => x.bank === alg)) throw bad(`${alg} digest twice, expected one per bank`);
    digests.push({ bank: alg, digest: fromHex(hex) });
  });
  const rec: LogRecord = {
    line,
    pcr: pcr as number | undefined,
    ...(nv === undefined ? {} : { nvIndex: nv as number }),
    digests,
  };
  const type = json.content_type;
  if (type !== undefined) {
    if (typeof type !== "string") throw bad(`"content_type" is ${kindOf(type)}, expected a string`);
    rec.contentType = type;
    if (type === "systemd") {
      const content = json.content;
      if (!isObject(content)) throw bad(`"content" is ${kindOf(content)}, expected an object`);
      if (content.string !== undefined) {
        if (typeof content.string !== "string")
          throw bad(`"content.string" is ${kindOf(content.string)}, expected a string`);
        rec.string = content.string;
      }
    }
  }
  return rec;
}

/** Whether a record's `content.string` hashes to each of its digests: the measured string is what the
 * log says it is. `undefined` when the record carries no string. */
export function recordStringMatches(r: LogRecord): boolean | undefined {
  if (r.string === undefined) return undefined;
  const got = eventDigests(
    r.string,
    r.digests.map((d) => d.bank),
  );
  return got.every((g, i) => bytesEqual(g.digest, r.digests[i]!.digest));
}
