// TPM 2.0 command and response marshalling for the three commands measured boot needs — GetCapability
// (TPM_CAP_PCRS: which banks are active), PCR_Extend (with the empty-password session TPM_RS_PW) and
// PCR_Read — and the names of TPM_RC response codes. Pure bytes in, values out: sending a command is
// src/sys/tpm.ts's. Layouts and constants are from the TPM 2.0 Library specification, Part 2 (structures:
// TPM_ST, TPM_CC, TPM_RC, TPM_CAP, TPMS_PCR_SELECTION, TPML_DIGEST_VALUES, TPMS_AUTH_COMMAND) and Part 3
// (commands: 22.2 TPM2_PCR_Extend, 22.4 TPM2_PCR_Read, 30.2 TPM2_GetCapability). Every integer on the
// wire is big-endian.

import { FormatError, q, TpmError } from "../base/errors.ts";
import { type DigestAlgorithm, digestOf } from "../base/hash.ts";
import { Reader, utf8, Writer } from "./bytes.ts";

// ---- the banks ----

/** A PCR bank sealroot can extend: named as systemd names them in the log (`tpm2_hash_alg_to_string`). */
export type PcrBank = DigestAlgorithm;

/** Every bank sealroot knows, in TPM_ALG_ID order (systemd's `tpm2_hash_algorithms[]` order too). */
export const PCR_BANKS: readonly PcrBank[] = ["sha1", "sha256", "sha384", "sha512"];

/** Digest size in bytes of each bank. */
export const BANK_DIGEST_SIZE: Readonly<Record<PcrBank, number>> = {
  sha1: 20,
  sha256: 32,
  sha384: 48,
  sha512: 64,
};

/** TPM2_PCRS_MAX in systemd, IMPLEMENTATION_PCR in the PC Client profile: PCRs 0…23. */
export const PCR_COUNT = 24;

export function isPcrBank(s: string): s is PcrBank {
  return (PCR_BANKS as readonly string[]).includes(s);
}

export interface BankDigest {
  bank: PcrBank;
  digest: Uint8Array;
}

/** The event's digest in each bank, in the order of `banks`: H(UTF-8 bytes of the string), no NUL. */
export function eventDigests(event: string, banks: readonly PcrBank[]): BankDigest[] {
  const bytes = utf8.encode(event);
  return banks.map((bank) => ({ bank, digest: digestOf(bank, bytes) }));
}

// ---- Part 2 constants ----
/** TPM_ST: a command or response without / with an authorization area. */
export const TPM_ST_NO_SESSIONS = 0x8001;
export const TPM_ST_SESSIONS = 0x8002;
/** TPM_CC. */
export const TPM_CC_PCR_Extend = 0x00000182;
export const TPM_CC_PCR_Read = 0x0000017e;
export const TPM_CC_GetCapability = 0x0000017a;
/** TPM_CAP_PCRS: the current PCR allocation, a TPML_PCR_SELECTION. */
export const TPM_CAP_PCRS = 0x00000005;
/** TPM_RS_PW: the password authorization "session", here with an empty password. */
export const TPM_RS_PW = 0x40000009;
/** sessionAttributes of the password session: none, as tpm2-tss (tpm2_pcrextend 5.4) sends it. */
export const PW_SESSION_ATTRIBUTES = 0x00;
/** TPM_ALG_ID of each bank sealroot can extend. */
export const TPM_ALG: Readonly<Record<PcrBank, number>> = {
  sha1: 0x0004,
  sha256: 0x000b,
  sha384: 0x000c,
  sha512: 0x000d,
};
/** Other hash algorithms a PCR bank may use, named for messages (TPM_ALG_SM3_256, TPM_ALG_SHA3_*). */
const OTHER_ALG_NAMES: Record<number, string> = {
  18: "sm3_256",
  39: "sha3_256",
  40: "sha3_384",
  41: "sha3_512",
};
/** The command/response header: tag u16, size u32, command code or response code u32. */
export const TPM_HEADER_SIZE = 10;
/** TPM_BUFSIZE of Linux's drivers/char/tpm/tpm.h: no command or response is larger. */
export const MAX_TPM_RESPONSE = 4096;
/** PCR_SELECT_MIN for 24 PCRs: the pcrSelect bitmap is 3 bytes. */
const PCR_SELECT_SIZE = 3;

export function algName(alg: number): string {
  const bank = PCR_BANKS.find((b) => TPM_ALG[b] === alg);
  return bank ?? OTHER_ALG_NAMES[alg] ?? `TPM_ALG 0x${alg.toString(16).padStart(4, "0")}`;
}

function bankOf(alg: number): PcrBank | undefined {
  return PCR_BANKS.find((b) => TPM_ALG[b] === alg);
}

function checkPcr(pcr: number, action: string): void {
  if (!Number.isInteger(pcr) || pcr < 0 || pcr >= PCR_COUNT)
    throw new FormatError(`Cannot ${action}: PCR ${pcr}, expected 0…${PCR_COUNT - 1}`);
}

function command(tag: number, code: number, body: (w: Writer) => void): Uint8Array {
  const w = new Writer(128);
  w.u16be(tag).u32be(0).u32be(code); // commandSize is patched once the body is written
  body(w);
  return w.patchU32be(2, w.length).finish();
}

/** TPMS_PCR_SELECTION for one PCR: hash u16, sizeofSelect u8, pcrSelect[sizeofSelect] (bit n%8 of byte n/8). */
function pcrSelection(w: Writer, alg: number, pcr: number): void {
  w.u16be(alg).u8(PCR_SELECT_SIZE);
  for (let i = 0; i < PCR_SELECT_SIZE; i++) w.u8(i === pcr >> 3 ? 1 << (pcr & 7) : 0);
}

// ---- commands ----

/** TPM2_GetCapability(capability = TPM_CAP_PCRS, property = 0, propertyCount = 1), no sessions. */
export function encodeGetCapabilityPcrs(): Uint8Array {
  return command(TPM_ST_NO_SESSIONS, TPM_CC_GetCapability, (w) => {
    w.u32be(TPM_CAP_PCRS).u32be(0).u32be(1);
  });
}

/**
 * TPM2_PCR_Extend(pcrHandle = the PCR's index, TPML_DIGEST_VALUES digests) authorized by TPM_RS_PW with an
 * empty password: handle, then authorizationSize u32 and one TPMS_AUTH_COMMAND {sessionHandle u32, nonce
 * TPM2B (empty), sessionAttributes u8, hmac TPM2B (the password: empty)}, then count u32 and one TPMT_HA
 * {hashAlg u16, digest} per bank.
 */
export function encodePcrExtend(pcr: number, digests: readonly BankDigest[]): Uint8Array {
  checkPcr(pcr, "encode TPM2_PCR_Extend");
  if (digests.length === 0 || digests.length > PCR_BANKS.length)
    throw new FormatError(
      `Cannot encode TPM2_PCR_Extend: ${digests.length} digests, expected 1…${PCR_BANKS.length}`,
    );
  for (const d of digests) {
    if (d.digest.length !== BANK_DIGEST_SIZE[d.bank])
      throw new FormatError(
        `Cannot encode TPM2_PCR_Extend: ${d.bank} digest of ${d.digest.length} bytes, expected ${BANK_DIGEST_SIZE[d.bank]}`,
      );
  }
  return command(TPM_ST_SESSIONS, TPM_CC_PCR_Extend, (w) => {
    w.u32be(pcr); // TPMI_DH_PCR: PCR n is handle n (HR_PCR = 0)
    w.u32be(4 + 2 + 1 + 2); // authorizationSize
    w.u32be(TPM_RS_PW).u16be(0); // sessionHandle, nonce.size = 0
    w.u8(PW_SESSION_ATTRIBUTES);
    w.u16be(0); // hmac.size = 0: the empty password
    w.u32be(digests.length);
    for (const d of digests) {
      w.u16be(TPM_ALG[d.bank]).bytes(d.digest);
    }
  });
}

/** TPM2_PCR_Read(TPML_PCR_SELECTION: one TPMS_PCR_SELECTION per bank, each selecting `pcr`), no sessions. */
export function encodePcrRead(pcr: number, banks: readonly PcrBank[]): Uint8Array {
  checkPcr(pcr, "encode TPM2_PCR_Read");
  if (banks.length === 0 || banks.length > PCR_BANKS.length)
    throw new FormatError(
      `Cannot encode TPM2_PCR_Read: ${banks.length} banks, expected 1…${PCR_BANKS.length}`,
    );
  return command(TPM_ST_NO_SESSIONS, TPM_CC_PCR_Read, (w) => {
    w.u32be(banks.length);
    for (const b of banks) pcrSelection(w, TPM_ALG[b], pcr);
  });
}

// ---- response codes ----

/** TPM_RC format-zero codes (RC_VER1 + n) and warnings (RC_WARN + n), Part 2 table "TPM_RC Values". */
const RC_FMT0: Record<number, string> = {
  0: "TPM_RC_SUCCESS",
  30: "TPM_RC_BAD_TAG",
  256: "TPM_RC_INITIALIZE",
  257: "TPM_RC_FAILURE",
  259: "TPM_RC_SEQUENCE",
  267: "TPM_RC_PRIVATE",
  281: "TPM_RC_HMAC",
  288: "TPM_RC_DISABLED",
  289: "TPM_RC_EXCLUSIVE",
  292: "TPM_RC_AUTH_TYPE",
  293: "TPM_RC_AUTH_MISSING",
  294: "TPM_RC_POLICY",
  295: "TPM_RC_PCR",
  296: "TPM_RC_PCR_CHANGED",
  301: "TPM_RC_UPGRADE",
  302: "TPM_RC_TOO_MANY_CONTEXTS",
  303: "TPM_RC_AUTH_UNAVAILABLE",
  304: "TPM_RC_REBOOT",
  305: "TPM_RC_UNBALANCED",
  322: "TPM_RC_COMMAND_SIZE",
  323: "TPM_RC_COMMAND_CODE",
  324: "TPM_RC_AUTHSIZE",
  325: "TPM_RC_AUTH_CONTEXT",
  326: "TPM_RC_NV_RANGE",
  327: "TPM_RC_NV_SIZE",
  328: "TPM_RC_NV_LOCKED",
  329: "TPM_RC_NV_AUTHORIZATION",
  330: "TPM_RC_NV_UNINITIALIZED",
  331: "TPM_RC_NV_SPACE",
  332: "TPM_RC_NV_DEFINED",
  336: "TPM_RC_BAD_CONTEXT",
  337: "TPM_RC_CPHASH",
  338: "TPM_RC_PARENT",
  339: "TPM_RC_NEEDS_TEST",
  340: "TPM_RC_NO_RESULT",
  341: "TPM_RC_SENSITIVE",
  2305: "TPM_RC_CONTEXT_GAP",
  2306: "TPM_RC_OBJECT_MEMORY",
  2307: "TPM_RC_SESSION_MEMORY",
  2308: "TPM_RC_MEMORY",
  2309: "TPM_RC_SESSION_HANDLES",
  2310: "TPM_RC_OBJECT_HANDLES",
  2311: "TPM_RC_LOCALITY",
  2312: "TPM_RC_YIELDED",
  2313: "TPM_RC_CANCELED",
  2314: "TPM_RC_TESTING",
  2320: "TPM_RC_REFERENCE_H0",
  2321: "TPM_RC_REFERENCE_H1",
  2322: "TPM_RC_REFERENCE_H2",
  2323: "TPM_RC_REFERENCE_H3",
  2324: "TPM_RC_REFERENCE_H4",
  2325: "TPM_RC_REFERENCE_H5",
  2326: "TPM_RC_REFERENCE_H6",
  2328: "TPM_RC_REFERENCE_S0",
  2329: "TPM_RC_REFERENCE_S1",
  2330: "TPM_RC_REFERENCE_S2",
  2331: "TPM_RC_REFERENCE_S3",
  2332: "TPM_RC_REFERENCE_S4",
  2333: "TPM_RC_REFERENCE_S5",
  2334: "TPM_RC_REFERENCE_S6",
  2336: "TPM_RC_NV_RATE",
  2337: "TPM_RC_LOCKOUT",
  2338: "TPM_RC_RETRY",
  2339: "TPM_RC_NV_UNAVAILABLE",
};

/** TPM_RC format-one codes (RC_FMT1 + n, n in bits 0…5), which name a handle, session or parameter. */
const RC_FMT1: Record<number, string> = {
  1: "TPM_RC_ASYMMETRIC",
  2: "TPM_RC_ATTRIBUTES",
  3: "TPM_RC_HASH",
  4: "TPM_RC_VALUE",
  5: "TPM_RC_HIERARCHY",
  7: "TPM_RC_KEY_SIZE",
  8: "TPM_RC_MGF",
  9: "TPM_RC_MODE",
  10: "TPM_RC_TYPE",
  11: "TPM_RC_HANDLE",
  12: "TPM_RC_KDF",
  13: "TPM_RC_RANGE",
  14: "TPM_RC_AUTH_FAIL",
  15: "TPM_RC_NONCE",
  16: "TPM_RC_PP",
  18: "TPM_RC_SCHEME",
  21: "TPM_RC_SIZE",
  22: "TPM_RC_SYMMETRIC",
  23: "TPM_RC_TAG",
  24: "TPM_RC_SELECTOR",
  26: "TPM_RC_INSUFFICIENT",
  27: "TPM_RC_SIGNATURE",
  28: "TPM_RC_KEY",
  29: "TPM_RC_POLICY_FAIL",
  31: "TPM_RC_INTEGRITY",
  32: "TPM_RC_TICKET",
  33: "TPM_RC_RESERVED_BITS",
  34: "TPM_RC_BAD_AUTH",
  35: "TPM_RC_EXPIRED",
  36: "TPM_RC_POLICY_CC",
  37: "TPM_RC_BINDING",
  38: "TPM_RC_CURVE",
  39: "TPM_RC_ECC_POINT",
};

const hex32 = (n: number) => `0x${n.toString(16).padStart(3, "0")}`;

/**
 * The name of a response code, e.g. `TPM_RC_LOCALITY`, `TPM_RC_VALUE (parameter 1)`,
 * `TPM_RC_BAD_AUTH (session 1)`. Bits 16 and up are a TSS layer (tpm2-tss puts its own codes there);
 * format one (bit 7) carries the error in bits 0…5 and, with P (bit 6), a parameter number in bits 8…11,
 * else with S (bit 11) a session number in bits 8…10, else a handle number there; format zero is
 * RC_VER1 (bit 8) or RC_WARN (bits 8 and 11), or a vendor code (bit 10).
 */
export function tpmRcName(rc: number): string {
  const layer = rc >>> 16;
  if (layer !== 0) return `TSS layer ${layer} code ${hex32(rc & 0xffff)}`;
  if (rc & 0x080) {
    const base = RC_FMT1[rc & 0x3f] ?? `TPM_RC_FMT1 error ${hex32(rc & 0x3f)}`;
    const n = (rc >> 8) & 0xf;
    if (rc & 0x040) return n ? `${base} (parameter ${n})` : base;
    if (rc & 0x800) return `${base} (session ${n & 7})`;
    return n ? `${base} (handle ${n & 7})` : base;
  }
  if (rc & 0x400) return `vendor code ${hex32(rc)}`;
  return RC_FMT0[rc] ?? `TPM_RC ${hex32(rc)}`;
}

// ---- responses ----

/** Who answered and what was asked, for messages: `Cannot <action> "<path>": …`. */
export interface TpmContext {
  path: string;
}

/**
 * Checks a response's header against its length and cap, and its code: anything but TPM_RC_SUCCESS is a
 * TpmError naming the code. Returns a Reader past the header. `sessions` says the command carried an
 * authorization area, so a successful response must too (tag TPM_ST_SESSIONS).
 */
function response(
  bytes: Uint8Array,
  cmd: string,
  action: string,
  ctx: TpmContext,
  sessions: boolean,
): Reader {
  const what = `${cmd} response from ${q(ctx.path)}`;
  if (bytes.length > MAX_TPM_RESPONSE)
    throw new FormatError(`Cannot read ${what}: ${bytes.length} bytes, expected at most ${MAX_TPM_RESPONSE}`);
  const r = new Reader(bytes, what);
  const tag = r.u16be("tag");
  const size = r.u32be("responseSize");
  const rc = r.u32be("responseCode");
  if (size !== bytes.length)
    throw new FormatError(`Cannot read ${what}: responseSize says ${size} bytes, ${bytes.length} received`);
  if (rc !== 0) {
    const name = tpmRcName(rc);
    throw new TpmError(
      rc,
      name,
      `Cannot ${action} ${q(ctx.path)}: ${name} (0x${rc.toString(16).padStart(3, "0")}), expected TPM_RC_SUCCESS`,
      { path: ctx.path, command: cmd },
    );
  }
  const want = sessions ? TPM_ST_SESSIONS : TPM_ST_NO_SESSIONS;
  if (tag !== want)
    throw new FormatError(
      `Cannot read ${what}: tag 0x${tag.toString(16)}, expected 0x${want.toString(16)} for a successful response`,
    );
  return r;
}

function done(r: Reader): void {
  if (r.remaining !== 0)
    throw new FormatError(`Cannot read ${r.what}: ${r.remaining} bytes after the last field, expected none`);
}

/** One TPMS_PCR_SELECTION of a response: the bank's algorithm and its pcrSelect bitmap. */
export interface PcrSelection {
  alg: number;
  select: Uint8Array;
}

function readSelections(r: Reader, field: string): PcrSelection[] {
  const count = r.u32be(`${field}.count`);
  // TPML_PCR_SELECTION holds at most HASH_COUNT entries; 16 bounds any TPM's allocation list.
  if (count > 16)
    throw new FormatError(`Cannot read ${r.what}: ${field}.count ${count}, expected at most 16`);
  const out: PcrSelection[] = [];
  for (let i = 0; i < count; i++) {
    const alg = r.u16be(`${field}[${i}].hash`);
    const n = r.u8(`${field}[${i}].sizeofSelect`);
    out.push({ alg, select: r.bytesN(n, `${field}[${i}].pcrSelect`).slice() });
  }
  return out;
}

const selected = (s: PcrSelection, pcr: number) => ((s.select[pcr >> 3] ?? 0) & (1 << (pcr & 7))) !== 0;

/** TPM2_GetCapability(TPM_CAP_PCRS)'s response: moreData u8, TPMS_CAPABILITY_DATA {capability u32 =
 * TPM_CAP_PCRS, TPML_PCR_SELECTION}: the PCR allocation, one selection per implemented bank. */
export function decodeGetCapabilityPcrs(bytes: Uint8Array, ctx: TpmContext): PcrSelection[] {
  const r = response(bytes, "TPM2_GetCapability", "get the PCR banks of", ctx, false);
  r.u8("moreData");
  const cap = r.u32be("capability");
  if (cap !== TPM_CAP_PCRS)
    throw new FormatError(
      `Cannot read ${r.what}: capability ${cap}, expected TPM_CAP_PCRS (${TPM_CAP_PCRS})`,
    );
  const sel = readSelections(r, "pcrSelection");
  done(r);
  return sel;
}

/** The banks in which `pcr` is allocated: those sealroot can extend, in PCR_BANKS order, and the others
 * (named, e.g. `sm3_256`), which it cannot hash for. */
export function activeBanks(
  selections: readonly PcrSelection[],
  pcr: number,
): { banks: PcrBank[]; unsupported: string[] } {
  const on = selections.filter((s) => selected(s, pcr));
  const banks = PCR_BANKS.filter((b) => on.some((s) => s.alg === TPM_ALG[b]));
  const unsupported = on.filter((s) => bankOf(s.alg) === undefined).map((s) => algName(s.alg));
  return { banks, unsupported };
}

/** TPM2_PCR_Extend's response: parameterSize u32 (0: no parameters), then one TPMS_AUTH_RESPONSE
 * {nonce TPM2B, sessionAttributes u8, hmac TPM2B} for the password session. */
export function decodePcrExtend(bytes: Uint8Array, pcr: number, ctx: TpmContext): void {
  const r = response(bytes, "TPM2_PCR_Extend", `extend PCR ${pcr} of`, ctx, true);
  const params = r.u32be("parameterSize");
  if (params !== 0)
    throw new FormatError(`Cannot read ${r.what}: parameterSize ${params}, expected 0 (PCR_Extend has none)`);
  r.skip(r.u16be("nonce.size"), "nonce");
  r.u8("sessionAttributes");
  r.skip(r.u16be("hmac.size"), "hmac");
  done(r);
}

export interface PcrValue {
  pcr: number;
  bank: PcrBank;
  value: Uint8Array;
}

/**
 * TPM2_PCR_Read's response: pcrUpdateCounter u32, pcrSelectionOut (what was read), TPML_DIGEST {count u32,
 * TPM2B_DIGEST each}, the digests in selection order (banks as listed, PCRs ascending). A bank the TPM
 * does not have comes back unselected and so absent from the result.
 */
export function decodePcrRead(bytes: Uint8Array, pcr: number, ctx: TpmContext): PcrValue[] {
  const r = response(bytes, "TPM2_PCR_Read", `read PCR ${pcr} of`, ctx, false);
  r.u32be("pcrUpdateCounter");
  const sel = readSelections(r, "pcrSelectionOut");
  const count = r.u32be("pcrValues.count");
  const slots: { pcr: number; alg: number }[] = [];
  for (const s of sel)
    for (let p = 0; p < 8 * s.select.length; p++) if (selected(s, p)) slots.push({ pcr: p, alg: s.alg });
  if (count !== slots.length)
    throw new FormatError(
      `Cannot read ${r.what}: ${count} digests for ${slots.length} selected PCRs, expected one each`,
    );
  const out: PcrValue[] = [];
  for (const [i, slot] of slots.entries()) {
    const size = r.u16be(`pcrValues[${i}].size`);
    const value = r.bytesN(size, `pcrValues[${i}].buffer`).slice();
    const bank = bankOf(slot.alg);
    if (bank === undefined) continue;
    if (size !== BANK_DIGEST_SIZE[bank])
      throw new FormatError(
        `Cannot read ${r.what}: ${bank} PCR ${slot.pcr} of ${size} bytes, expected ${BANK_DIGEST_SIZE[bank]}`,
      );
    out.push({ pcr: slot.pcr, bank, value });
  }
  done(r);
  return out;
}
