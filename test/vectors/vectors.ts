// Loaders for the public ed25519 vectors stored beside this file (provenance in README.md), shared by
// test/unit/ed25519-vectors.test.ts and test/unit/ed25519-libsodium.test.ts. Test-only.

import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { readJson } from "../helpers/fixtures.ts";

const HERE = dirname(fileURLToPath(import.meta.url));

export interface RfcVector {
  name: string;
  /** The 32-byte seed, hex. */
  secretKey: string;
  publicKey: string;
  message: string;
  signature: string;
}
export const rfc8032 = (): RfcVector[] =>
  readJson<{ tests: RfcVector[] }>(join(HERE, "rfc8032-ed25519.json")).tests;

export interface WycheproofTest {
  tcId: number;
  comment: string;
  flags: string[];
  msg: string;
  sig: string;
  result: "valid" | "invalid" | "acceptable";
  /** The group's public key, hex. */
  pk: string;
  label: string;
}
interface WycheproofFile {
  numberOfTests: number;
  testGroups: { publicKey: { pk: string }; tests: Omit<WycheproofTest, "pk" | "label">[] }[];
}
export function wycheproof(): { numberOfTests: number; tests: WycheproofTest[] } {
  const f = readJson<WycheproofFile>(join(HERE, "wycheproof-ed25519_test.json"));
  const tests = f.testGroups.flatMap((g) =>
    g.tests.map((t) => ({
      ...t,
      pk: g.publicKey.pk,
      label: `tcId ${t.tcId} ${t.comment || t.flags.join(",")}`,
    })),
  );
  return { numberOfTests: f.numberOfTests, tests };
}

export interface SpeccheckCase {
  message: string;
  pub_key: string;
  signature: string;
}
export const speccheck = (): SpeccheckCase[] => readJson<SpeccheckCase[]>(join(HERE, "speccheck-cases.json"));

/** libsodium 1.0.18's verdicts on the 12 speccheck vectors, index 0–11 (V accept, X reject). */
export const SPECCHECK_LIBSODIUM = "XXXVXXXXXXXX";
