// Typed errors shared by every layer. Each has a stable `code`, structured `data` and an optional `cause`;
// messages follow `Cannot <action> "<path>": <observed>, expected <required>` so one line at an emergency
// shell says what failed and why. Pure: no I/O. The CLI maps classes to exit codes in one place.

export type ErrorData = Record<string, unknown>;

export class SealrootError extends Error {
  readonly code: string;
  readonly data: ErrorData;
  constructor(code: string, message: string, data: ErrorData = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.data = data;
  }
}

/** Bytes that do not decode: truncated, out of bounds, wrong magic, wrong framing, over a size cap. */
export class FormatError extends SealrootError {
  constructor(message: string, data: ErrorData = {}, options?: { cause?: unknown }) {
    super("EFORMAT", message, data, options);
  }
}

/** An object whose bytes do not hash to its name, or a signature/digest that does not match. */
export class IntegrityError extends SealrootError {
  constructor(message: string, data: ErrorData = {}, options?: { cause?: unknown }) {
    super("EINTEGRITY", message, data, options);
  }
}

/** Something the caller asked for that does not exist (a ref, an object, a deployment). */
export class NotFoundError extends SealrootError {
  constructor(message: string, data: ErrorData = {}, options?: { cause?: unknown }) {
    super("ENOTFOUND", message, data, options);
  }
}

/** Bad arguments or configuration given by the user (kernel command line, prepare-root.conf, CLI). */
export class UsageError extends SealrootError {
  constructor(message: string, data: ErrorData = {}, options?: { cause?: unknown }) {
    super("EUSAGE", message, data, options);
  }
}

/** A failing system call; `errno` is the symbolic name (ENOENT, EPERM, …). */
export class SysError extends SealrootError {
  readonly errno: string;
  constructor(errno: string, message: string, data: ErrorData = {}, options?: { cause?: unknown }) {
    super("ESYS", message, { ...data, errno }, options);
    this.errno = errno;
  }
}

/** A TPM 2.0 response code other than TPM_RC_SUCCESS; `rc` is the raw code, `rcName` its TPM_RC_* name. */
export class TpmError extends SealrootError {
  readonly rc: number;
  constructor(
    rc: number,
    rcName: string,
    message: string,
    data: ErrorData = {},
    options?: { cause?: unknown },
  ) {
    super("ETPM", message, { ...data, rc, rcName }, options);
    this.rc = rc;
  }
}

/** Quote a path or name for an error message the way every message in the project does. */
export function q(s: string): string {
  return JSON.stringify(s);
}

/** The message of anything thrown, for a log field or a one-line report. */
export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
