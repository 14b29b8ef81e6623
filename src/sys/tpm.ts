// The TPM, the I/O half: one transport over a file descriptor — the kernel's TPM character device
// (/dev/tpmrm0, the resource manager, else /dev/tpm0) or a stream socket to a TPM simulator (swtpm's
// `--server type=unixio`) — that writes one marshalled command and reads one response, bounded; and the
// three operations measured boot needs on top of src/formats/tpm2.ts. Also appending a record to the
// userspace measurement log the way systemd does, and the boot ID and CLOCK_BOOTTIME that record carries.

import {
  closeSync,
  fchmodSync,
  fstatSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  constants as osc,
  readSync,
  writeSync,
} from "node:fs";
import { dirname } from "node:path";
import { FormatError, q } from "../base/errors.ts";
import {
  activeBanks,
  type BankDigest,
  decodeGetCapabilityPcrs,
  decodePcrExtend,
  decodePcrRead,
  encodeGetCapabilityPcrs,
  encodePcrExtend,
  encodePcrRead,
  eventDigests,
  MAX_TPM_RESPONSE,
  type PcrBank,
  type PcrValue,
  TPM_HEADER_SIZE,
} from "../formats/tpm2.ts";
import { sysError } from "./errno.ts";
import {
  CLOCK_BOOTTIME,
  clockGettime,
  close,
  connect,
  flock,
  LOCK_EX,
  O_CLOEXEC,
  O_NOFOLLOW,
  O_RDWR,
  SOCK_CLOEXEC,
  SOCK_STREAM,
  socket,
} from "./ffi/libc.ts";
import { AF_UNIX, decodeTimespecUsec, encodeSockaddrUn, TIMESPEC_SIZE } from "./ffi/structs.ts";
import { nodeErr } from "./fs.ts";

/** The kernel's TPM devices in the order systemd picks them: the in-kernel resource manager first. */
export const TPM_DEVICES = ["/dev/tpmrm0", "/dev/tpm0"] as const;

/** Sends one command and returns its one response. */
export interface TpmTransport {
  /** The device or socket, for messages. */
  readonly path: string;
  transmit(command: Uint8Array): Uint8Array;
  close(): void;
}

/**
 * A TPM behind an open fd. The write is one write(2) (the kernel's tpm_common_write takes the whole
 * command at once); the response is read until its header's responseSize is in, at most MAX_TPM_RESPONSE
 * bytes — a character device hands it over in one read, a socket may split it.
 */
export class FdTpm implements TpmTransport {
  constructor(
    readonly fd: number,
    readonly path: string,
  ) {}

  transmit(command: Uint8Array): Uint8Array {
    let off = 0;
    while (off < command.length) {
      try {
        off += writeSync(this.fd, command, off, command.length - off);
      } catch (e) {
        throw nodeErr("write a TPM command to", this.path, e);
      }
    }
    const buf = new Uint8Array(MAX_TPM_RESPONSE);
    let n = 0;
    let size = TPM_HEADER_SIZE;
    while (n < size) {
      let got: number;
      try {
        got = readSync(this.fd, buf, n, buf.length - n, null);
      } catch (e) {
        throw nodeErr("read a TPM response from", this.path, e);
      }
      if (got === 0)
        throw new FormatError(
          `Cannot read a TPM response from ${q(this.path)}: end of stream after ${n} bytes, expected ${size}`,
          { path: this.path },
        );
      n += got;
      if (n >= TPM_HEADER_SIZE) {
        size = new DataView(buf.buffer).getUint32(2, false);
        if (size < TPM_HEADER_SIZE || size > MAX_TPM_RESPONSE)
          throw new FormatError(
            `Cannot read a TPM response from ${q(this.path)}: responseSize ${size}, expected ${TPM_HEADER_SIZE}…${MAX_TPM_RESPONSE}`,
            { path: this.path },
          );
      }
    }
    if (n > size)
      throw new FormatError(
        `Cannot read a TPM response from ${q(this.path)}: ${n} bytes, responseSize says ${size}`,
        { path: this.path },
      );
    return buf.slice(0, n);
  }

  close(): void {
    closeSync(this.fd);
  }
}

/**
 * Opens the first TPM device that exists, read-write, not following a link: `undefined` when none does
 * (ENOENT, or ENODEV/ENXIO for a node without a driver) — no TPM, which the caller logs. Anything else
 * (EACCES, EBUSY: /dev/tpm0 held by another process) and a node that is not a character device throw.
 */
export function openTpmDevice(candidates: readonly string[] = TPM_DEVICES): FdTpm | undefined {
  for (const path of candidates) {
    let fd: number;
    try {
      fd = openSync(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOENT" || code === "ENODEV" || code === "ENXIO") continue;
      throw nodeErr("open TPM device", path, e);
    }
    const st = fstatSync(fd);
    if (!st.isCharacterDevice()) {
      closeSync(fd);
      throw sysError("open TPM device", path, "ENOTTY", { expected: "a character device" });
    }
    return new FdTpm(fd, path);
  }
  return undefined;
}

/**
 * The TPM at `path`: a character device (opened as openTpmDevice does) or a TPM simulator's command
 * socket. `undefined` when nothing is there.
 */
export function openTpmAt(path: string): FdTpm | undefined {
  let st: ReturnType<typeof lstatSync>;
  try {
    st = lstatSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw nodeErr("stat TPM", path, e);
  }
  return st?.isSocket() ? connectTpmSocket(path) : openTpmDevice([path]);
}

/** Measures `event` into `pcr` of the first TPM of `candidates` (TPM_DEVICES) that exists, or of the
 * one at `path`; `undefined` when there is none. The TPM is closed again. */
export function measureOnTpm(
  pcr: number,
  event: string,
  path?: string,
): { device: string; digests: BankDigest[]; unsupported: string[] } | undefined {
  const tpm = path === undefined ? openTpmDevice() : openTpmAt(path);
  if (!tpm) return undefined;
  try {
    const m = measureEvent(tpm, pcr, event);
    return { device: tpm.path, digests: m.digests, unsupported: m.unsupported };
  } finally {
    tpm.close();
  }
}

/** Connects to a TPM simulator's command socket (`swtpm socket --server type=unixio,path=PATH`). */
export function connectTpmSocket(path: string): FdTpm {
  const s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s.value < 0) throw sysError("create a socket for", path, s.errno);
  const r = connect(s.value, encodeSockaddrUn(path));
  if (r.value < 0) {
    close(s.value);
    throw sysError("connect to TPM socket", path, r.errno);
  }
  return new FdTpm(s.value, path);
}

/** The banks `pcr` is allocated in (TPM2_GetCapability(TPM_CAP_PCRS)); `unsupported` names active banks
 * sealroot cannot hash for (sm3_256, sha3_*), which it leaves unextended. */
export function pcrBanks(tpm: TpmTransport, pcr: number): { banks: PcrBank[]; unsupported: string[] } {
  return activeBanks(decodeGetCapabilityPcrs(tpm.transmit(encodeGetCapabilityPcrs()), tpm), pcr);
}

/** TPM2_PCR_Extend of `pcr` with one digest per bank. */
export function extendPcrOnTpm(tpm: TpmTransport, pcr: number, digests: readonly BankDigest[]): void {
  decodePcrExtend(tpm.transmit(encodePcrExtend(pcr, digests)), pcr, tpm);
}

/** TPM2_PCR_Read of `pcr` in `banks`; a bank the TPM lacks is absent from the result. */
export function readPcrOnTpm(tpm: TpmTransport, pcr: number, banks: readonly PcrBank[]): PcrValue[] {
  return decodePcrRead(tpm.transmit(encodePcrRead(pcr, banks)), pcr, tpm);
}

/** What one measurement did: the banks extended, with the digests, and the active banks left out. */
export interface Measurement {
  pcr: number;
  event: string;
  digests: BankDigest[];
  unsupported: string[];
}

/** Extends `pcr` in every active bank sealroot can hash for with the digest of the UTF-8 `event`. A TPM
 * with no such bank for the PCR is refused: nothing would be measured. */
export function measureEvent(tpm: TpmTransport, pcr: number, event: string): Measurement {
  const { banks, unsupported } = pcrBanks(tpm, pcr);
  if (banks.length === 0)
    throw new FormatError(
      `Cannot measure into PCR ${pcr} of ${q(tpm.path)}: no active sha1/sha256/sha384/sha512 bank${unsupported.length ? ` (only ${unsupported.join(", ")})` : ""}, expected at least one`,
      { path: tpm.path, pcr, unsupported },
    );
  const digests = eventDigests(event, banks);
  extendPcrOnTpm(tpm, pcr, digests);
  return { pcr, event, digests, unsupported };
}

// ---- the userspace measurement log ----

/** S_ISVTX: set while a record is being appended; found set, the log was left half-written. */
const S_ISVTX = 0o1000;

/**
 * Appends one formatted record (core/measure.ts formatMeasureRecord) to the userspace measurement log as
 * systemd's tpm2_userspace_log_open()/tpm2_userspace_log() do: parents made 0755, the file opened
 * O_CREAT|O_WRONLY|O_APPEND|O_CLOEXEC|O_NOCTTY|O_NOFOLLOW mode 0600, flock(LOCK_EX), refused unless regular
 * or when its sticky bit says an earlier append did not finish, sticky bit set for the write, fsync,
 * sticky bit cleared, fsync.
 */
export function appendMeasureLog(path: string, record: string): void {
  const io = <T>(action: string, fn: () => T): T => {
    try {
      return fn();
    } catch (e) {
      throw nodeErr(action, path, e);
    }
  };
  io("create the directory of", () => mkdirSync(dirname(path), { recursive: true, mode: 0o755 }));
  const flags = osc.O_CREAT | osc.O_WRONLY | osc.O_APPEND | O_CLOEXEC | osc.O_NOCTTY | O_NOFOLLOW;
  const fd = io("open measurement log", () => openSync(path, flags, 0o600));
  try {
    const l = flock(fd, LOCK_EX);
    if (l.value < 0) throw sysError("lock measurement log", path, l.errno);
    const st = io("stat measurement log", () => fstatSync(fd));
    if (!st.isFile())
      throw sysError("append to measurement log", path, "EINVAL", { expected: "a regular file" });
    if (st.mode & S_ISVTX)
      throw sysError("append to measurement log", path, "ESTALE", {
        expected: "no sticky bit (it marks an append that did not finish)",
      });
    const bytes = new TextEncoder().encode(record);
    io("append to measurement log", () => {
      fchmodSync(fd, 0o600 | S_ISVTX);
      for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off, bytes.length - off);
      fsyncSync(fd);
      fchmodSync(fd, 0o600);
      fsyncSync(fd);
    });
  } finally {
    closeSync(fd);
  }
}

/** /proc/sys/kernel/random/boot_id as systemd's SD_ID128 string: 32 lowercase hex digits, no dashes. */
export function bootId(read: (path: string) => string): string {
  const path = "/proc/sys/kernel/random/boot_id";
  const raw = read(path).trim().replaceAll("-", "").toLowerCase();
  if (!/^[0-9a-f]{32}$/.test(raw))
    throw new FormatError(`Cannot read boot ID ${q(path)}: ${JSON.stringify(raw)}, expected a UUID`);
  return raw;
}

/** CLOCK_BOOTTIME in microseconds, what systemd stamps each log record with. */
export function boottimeUsec(): number {
  const ts = new Uint8Array(TIMESPEC_SIZE);
  const r = clockGettime(CLOCK_BOOTTIME, ts);
  if (r.value < 0) throw sysError("read clock", "CLOCK_BOOTTIME", r.errno);
  return decodeTimespecUsec(ts);
}
