// Test-only binding to Debian's libsodium23 (the ed25519 implementation ostree links) through ffi-rs, the
// ground truth for the differential tests of src/verify/ed25519.ts. It fails loudly when the library is
// missing: the project installs `libsodium23` with apt, and a silent skip would hide a lost proof.
// Never imported by src/.

import { existsSync } from "node:fs";
import { DataType, define, open } from "ffi-rs";

export const LIBSODIUM_PATH = "/usr/lib/x86_64-linux-gnu/libsodium.so.23";
/** The Debian package that provides LIBSODIUM_PATH. */
export const LIBSODIUM_PACKAGE = "libsodium23";

function load() {
  if (!existsSync(LIBSODIUM_PATH)) {
    throw new Error(
      `Cannot load libsodium "${LIBSODIUM_PATH}": file missing, expected Debian package ${LIBSODIUM_PACKAGE} (apt-get install -y ${LIBSODIUM_PACKAGE})`,
    );
  }
  open({ library: "sodium", path: LIBSODIUM_PATH });
  const fns = define({
    // int sodium_init(void);
    sodium_init: { library: "sodium", retType: DataType.I32, paramsType: [] },
    // const char *sodium_version_string(void);
    sodium_version_string: { library: "sodium", retType: DataType.String, paramsType: [] },
    // int crypto_sign_verify_detached(const unsigned char *sig, const unsigned char *m,
    //                                 unsigned long long mlen, const unsigned char *pk);
    crypto_sign_verify_detached: {
      library: "sodium",
      retType: DataType.I32,
      paramsType: [DataType.U8Array, DataType.U8Array, DataType.U64, DataType.U8Array],
    },
    // int crypto_sign_seed_keypair(unsigned char *pk, unsigned char *sk, const unsigned char *seed);
    crypto_sign_seed_keypair: {
      library: "sodium",
      retType: DataType.I32,
      paramsType: [DataType.U8Array, DataType.U8Array, DataType.U8Array],
    },
    // int crypto_sign_detached(unsigned char *sig, unsigned long long *siglen_p, const unsigned char *m,
    //                          unsigned long long mlen, const unsigned char *sk);  (siglen_p may be NULL)
    crypto_sign_detached: {
      library: "sodium",
      retType: DataType.I32,
      paramsType: [DataType.U8Array, DataType.U64, DataType.U8Array, DataType.U64, DataType.U8Array],
    },
  });
  const rc = fns.sodium_init([]) as number;
  // 0 = initialised now, 1 = already initialised; -1 = failure.
  if (rc < 0)
    throw new Error(`Cannot initialise libsodium "${LIBSODIUM_PATH}": sodium_init() returned ${rc}`);
  return fns;
}

let fns: ReturnType<typeof load> | undefined;
function sodium(): ReturnType<typeof load> {
  fns ??= load();
  return fns;
}

function need(b: Uint8Array, n: number, what: string): void {
  if (b.length !== n) throw new Error(`libsodium helper: ${what} is ${b.length} bytes, expected ${n}`);
}

// ffi-rs hands a zero-length U8Array to C as a pointer that libsodium never reads when mlen = 0, but a
// one-byte buffer keeps the pointer non-null regardless of how ffi-rs encodes empty arrays.
function cbuf(m: Uint8Array): Uint8Array {
  return m.length === 0 ? new Uint8Array(1) : m;
}

export function sodiumVersion(): string {
  return sodium().sodium_version_string([]) as string;
}

/** libsodium's verdict: `crypto_sign_verify_detached(sig, m, mlen, pk) == 0`. */
export function sodiumVerify(sig: Uint8Array, msg: Uint8Array, pub: Uint8Array): boolean {
  need(sig, 64, "signature");
  need(pub, 32, "public key");
  const rc = sodium().crypto_sign_verify_detached([sig, cbuf(msg), msg.length, pub]) as number;
  return rc === 0;
}

/** `crypto_sign_seed_keypair`: 32-byte public key and 64-byte secret key (seed ‖ public). */
export function sodiumKeyPair(seed: Uint8Array): { publicKey: Uint8Array; secretKey: Uint8Array } {
  need(seed, 32, "seed");
  const publicKey = new Uint8Array(32);
  const secretKey = new Uint8Array(64);
  const rc = sodium().crypto_sign_seed_keypair([publicKey, secretKey, seed]) as number;
  if (rc !== 0) throw new Error(`crypto_sign_seed_keypair returned ${rc}`);
  return { publicKey, secretKey };
}

/** `crypto_sign_detached` with a 64-byte secret key; siglen_p is passed as NULL. */
export function sodiumSign(msg: Uint8Array, secretKey: Uint8Array): Uint8Array {
  need(secretKey, 64, "secret key");
  const sig = new Uint8Array(64);
  const rc = sodium().crypto_sign_detached([sig, 0, cbuf(msg), msg.length, secretKey]) as number;
  if (rc !== 0) throw new Error(`crypto_sign_detached returned ${rc}`);
  return sig;
}
