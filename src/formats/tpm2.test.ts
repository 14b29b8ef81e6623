import { describe, expect, it } from "vitest";
import { FormatError, TpmError } from "../base/errors.ts";
import { fromHex, toHex } from "./bytes.ts";
import type { BankDigest } from "./tpm2.ts";
import {
  activeBanks,
  decodeGetCapabilityPcrs,
  decodePcrExtend,
  decodePcrRead,
  encodeGetCapabilityPcrs,
  encodePcrExtend,
  encodePcrRead,
  MAX_TPM_RESPONSE,
  tpmRcName,
} from "./tpm2.ts";

const ctx = { path: "/dev/tpmrm0" };
const h = (s: string) => fromHex(s.replace(/\s+/g, ""));
const digest = (n: number, byte: number) => new Uint8Array(n).fill(byte);

function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error("did not throw");
}

describe("TPM 2.0 commands, byte for byte (Part 3 command tables; every field hand-checked)", () => {
  it("encodes TPM2_GetCapability(TPM_CAP_PCRS, 0, 1)", () => {
    expect(toHex(encodeGetCapabilityPcrs())).toBe(
      [
        "8001", //     tag TPM_ST_NO_SESSIONS
        "00000016", // commandSize 22
        "0000017a", // TPM_CC_GetCapability
        "00000005", // capability TPM_CAP_PCRS
        "00000000", // property
        "00000001", // propertyCount
      ].join(""),
    );
  });

  it("encodes TPM2_PCR_Extend(PCR 15, sha256) with an empty-password TPM_RS_PW session", () => {
    const d = digest(32, 0xab);
    expect(toHex(encodePcrExtend(15, [{ bank: "sha256", digest: d }]))).toBe(
      [
        "8002", //     tag TPM_ST_SESSIONS
        "00000041", // commandSize 65 = 10 header + 4 handle + 4 authSize + 9 auth + 4 count + 2 + 32
        "00000182", // TPM_CC_PCR_Extend
        "0000000f", // pcrHandle: PCR 15
        "00000009", // authorizationSize
        "40000009", // sessionHandle TPM_RS_PW
        "0000", //     nonceCaller.size 0
        "00", //       sessionAttributes: none
        "0000", //     hmac.size 0 (the empty password)
        "00000001", // digests.count
        "000b", //     TPM_ALG_SHA256
        "ab".repeat(32),
      ].join(""),
    );
  });

  it("encodes TPM2_PCR_Extend exactly as tpm2-tools 5.4 (tpm2-tss) sent it to swtpm", () => {
    // `tpm2_pcrextend 15:sha256=<d>` over tcti-swtpm; the 65 bytes as `swtpm --log level=20` logged them
    const d = "741961d5e0532bf8e32ee8a75d5efcb594551e28a92f591c0862f32484104372";
    const sent = `80020000004100000182 0000000f 00000009 40000009 0000 00 0000 00000001 000b ${d}`;
    expect(toHex(encodePcrExtend(15, [{ bank: "sha256", digest: fromHex(d) }]))).toBe(sent.replace(/ /g, ""));
    // and tpm2_pcrread sha256:15, tpm2_getcap pcrs
    expect(toHex(encodePcrRead(15, ["sha256"]))).toBe("8001000000140000017e00000001000b03008000");
    expect(toHex(encodeGetCapabilityPcrs())).toBe(
      "800100000016 0000017a 00000005 00000000 00000001".replace(/ /g, ""),
    );
  });

  it("encodes TPM2_PCR_Extend of all four banks in the order given", () => {
    const ds: BankDigest[] = [
      { bank: "sha1", digest: digest(20, 1) },
      { bank: "sha256", digest: digest(32, 2) },
      { bank: "sha384", digest: digest(48, 3) },
      { bank: "sha512", digest: digest(64, 4) },
    ];
    const bytes = encodePcrExtend(0, ds);
    expect(bytes.length).toBe(31 + 22 + 34 + 50 + 66);
    expect(toHex(bytes)).toBe(
      `8002000000cb000001820000000000000009400000090000000000` +
        `00000004` +
        `0004${"01".repeat(20)}000b${"02".repeat(32)}000c${"03".repeat(48)}000d${"04".repeat(64)}`,
    );
  });

  it("encodes TPM2_PCR_Read of PCR 15 and of PCR 0 and 23 (pcrSelect bit n%8 of byte n/8)", () => {
    expect(toHex(encodePcrRead(15, ["sha256"]))).toBe(
      [
        "8001", //     tag TPM_ST_NO_SESSIONS
        "00000014", // commandSize 20
        "0000017e", // TPM_CC_PCR_Read
        "00000001", // pcrSelectionIn.count
        "000b", //     hash TPM_ALG_SHA256
        "03", //       sizeofSelect
        "008000", //   PCR 15: byte 1, bit 7
      ].join(""),
    );
    expect(toHex(encodePcrRead(0, ["sha1", "sha512"]))).toBe(
      "80010000001a0000017e00000002" + "000403010000" + "000d03010000",
    );
    expect(toHex(encodePcrRead(23, ["sha384"]))).toBe("8001000000140000017e00000001000c03000080");
  });

  it.each([
    [
      () => encodePcrExtend(24, [{ bank: "sha1", digest: digest(20, 0) }]),
      "Cannot encode TPM2_PCR_Extend: PCR 24, expected 0…23",
    ],
    [() => encodePcrExtend(15, []), "Cannot encode TPM2_PCR_Extend: 0 digests, expected 1…4"],
    [
      () => encodePcrExtend(15, [{ bank: "sha256", digest: digest(20, 0) }]),
      "Cannot encode TPM2_PCR_Extend: sha256 digest of 20 bytes, expected 32",
    ],
    [() => encodePcrRead(-1, ["sha1"]), "Cannot encode TPM2_PCR_Read: PCR -1, expected 0…23"],
    [() => encodePcrRead(15, []), "Cannot encode TPM2_PCR_Read: 0 banks, expected 1…4"],
  ])("refuses to encode nonsense: %s", (fn, msg) => {
    const e = thrown(fn);
    expect(e).toBeInstanceOf(FormatError);
    expect(e.message).toBe(msg);
  });
});

// Responses as swtpm 0.7.1 (libtpms) sent them, logged by `swtpm --log level=20`.
const CAP_SWTPM = "80010000002b00000000000000000500000004000403ffffff000b03ffffff000c03ffffff000d03ffffff";
const READ_SWTPM = `80010000003e000000000000001400000001000b030080000000000100 20${"00".repeat(32)}`;
const EXTEND_OK = "80020000001300000000 00000000 0000 01 0000";

describe("TPM 2.0 responses", () => {
  it("decodes the PCR allocation and finds the banks active for a PCR", () => {
    const sel = decodeGetCapabilityPcrs(h(CAP_SWTPM), ctx);
    expect(sel.map((s) => [s.alg, toHex(s.select)])).toEqual([
      [0x0004, "ffffff"],
      [0x000b, "ffffff"],
      [0x000c, "ffffff"],
      [0x000d, "ffffff"],
    ]);
    expect(activeBanks(sel, 15)).toEqual({ banks: ["sha1", "sha256", "sha384", "sha512"], unsupported: [] });
  });

  it("leaves out banks that do not allocate the PCR and names banks it cannot hash", () => {
    // sha1 allocated for PCRs 0-7 only, sha256 for all, SM3_256 for all, sha384 with a 1-byte bitmap.
    const bytes = h(
      "800100000029 00000000 00 00000005 00000004 000403ff0000 000b03ffffff 001203ffffff 000c01ff",
    );
    const sel = decodeGetCapabilityPcrs(bytes, ctx);
    expect(activeBanks(sel, 15)).toEqual({ banks: ["sha256"], unsupported: ["sm3_256"] });
    expect(activeBanks(sel, 3)).toEqual({ banks: ["sha1", "sha256", "sha384"], unsupported: ["sm3_256"] });
  });

  it("decodes a successful TPM2_PCR_Extend response (empty parameters, one auth response)", () => {
    expect(decodePcrExtend(h(EXTEND_OK), 15, ctx)).toBeUndefined();
  });

  it("decodes TPM2_PCR_Read values in selection order", () => {
    expect(decodePcrRead(h(READ_SWTPM), 15, ctx)).toEqual([
      { pcr: 15, bank: "sha256", value: new Uint8Array(32) },
    ]);
    const two = h(
      `80010000005a 00000000 00000007 00000002 000403008000 000b03008000 00000002 0014${"11".repeat(20)} 0020${"22".repeat(32)}`,
    );
    expect(decodePcrRead(two, 15, ctx)).toEqual([
      { pcr: 15, bank: "sha1", value: digest(20, 0x11) },
      { pcr: 15, bank: "sha256", value: digest(32, 0x22) },
    ]);
    // A bank the TPM lacks comes back with an empty bitmap and no digest.
    const none = h(
      `800100000044 00000000 00000007 00000002 000d03000000 000b03008000 00000001 0020${"22".repeat(32)}`,
    );
    expect(decodePcrRead(none, 15, ctx)).toEqual([{ pcr: 15, bank: "sha256", value: digest(32, 0x22) }]);
  });

  it.each([
    ["0x907", 0x907, "TPM_RC_LOCALITY"],
    ["0x100", 0x100, "TPM_RC_INITIALIZE"],
    ["0x101", 0x101, "TPM_RC_FAILURE"],
    ["0x127", 0x127, "TPM_RC_PCR"],
    ["0x143", 0x143, "TPM_RC_COMMAND_CODE"],
    ["0x922", 0x922, "TPM_RC_RETRY"],
    ["0x01e", 0x01e, "TPM_RC_BAD_TAG"],
    ["0x9a2", 0x9a2, "TPM_RC_BAD_AUTH (session 1)"],
    ["0x98e", 0x98e, "TPM_RC_AUTH_FAIL (session 1)"],
    ["0x1c4", 0x1c4, "TPM_RC_VALUE (parameter 1)"],
    ["0x2c3", 0x2c3, "TPM_RC_HASH (parameter 2)"],
    ["0x18b", 0x18b, "TPM_RC_HANDLE (handle 1)"],
    ["0x095", 0x095, "TPM_RC_SIZE"],
    ["0x0d5", 0x0d5, "TPM_RC_SIZE"],
    ["0x0bf", 0x0bf, "TPM_RC_FMT1 error 0x03f"],
    ["0x4bf", 0x4bf, "TPM_RC_FMT1 error 0x03f (handle 4)"],
    ["0x401", 0x401, "vendor code 0x401"],
    ["0x156", 0x156, "TPM_RC 0x156"],
    ["0x000b0101", 0x000b0101, "TSS layer 11 code 0x101"],
  ])("names response code %s as %s", (_, rc, name) => {
    expect(tpmRcName(rc)).toBe(name);
  });

  it("turns an error response into a TpmError naming the code, the command and the device", () => {
    const e = thrown(() => decodePcrExtend(h("80010000000a00000907"), 15, ctx));
    expect(e).toBeInstanceOf(TpmError);
    expect(e.message).toBe(
      'Cannot extend PCR 15 of "/dev/tpmrm0": TPM_RC_LOCALITY (0x907), expected TPM_RC_SUCCESS',
    );
    expect((e as TpmError).rc).toBe(0x907);
    expect((e as TpmError).data).toMatchObject({ rcName: "TPM_RC_LOCALITY", command: "TPM2_PCR_Extend" });
    expect(thrown(() => decodeGetCapabilityPcrs(h("80010000000a00000101"), ctx)).message).toBe(
      'Cannot get the PCR banks of "/dev/tpmrm0": TPM_RC_FAILURE (0x101), expected TPM_RC_SUCCESS',
    );
    expect(thrown(() => decodePcrRead(h("80010000000a000001c4"), 15, ctx)).message).toBe(
      'Cannot read PCR 15 of "/dev/tpmrm0": TPM_RC_VALUE (parameter 1) (0x1c4), expected TPM_RC_SUCCESS',
    );
  });

  const R = 'TPM2_PCR_Read response from "/dev/tpmrm0"';
  const E = 'TPM2_PCR_Extend response from "/dev/tpmrm0"';
  const C = 'TPM2_GetCapability response from "/dev/tpmrm0"';
  it.each([
    [
      "a 6-byte header",
      () => decodePcrExtend(h("800200000013"), 15, ctx),
      `Cannot read ${E}: responseCode needs 4 bytes at offset 6, 0 available`,
    ],
    [
      "an empty response",
      () => decodePcrRead(new Uint8Array(0), 15, ctx),
      `Cannot read ${R}: tag needs 2 bytes at offset 0, 0 available`,
    ],
    [
      "a size field longer than the bytes",
      () => decodePcrExtend(h("80020000001400000000000000000000010000"), 15, ctx),
      `Cannot read ${E}: responseSize says 20 bytes, 19 received`,
    ],
    [
      "a success without the session tag",
      () => decodePcrExtend(h("80010000001300000000000000000000010000"), 15, ctx),
      `Cannot read ${E}: tag 0x8001, expected 0x8002 for a successful response`,
    ],
    [
      "a truncated auth response",
      () => decodePcrExtend(h("800200000012000000000000000000000100"), 15, ctx),
      `Cannot read ${E}: hmac.size needs 2 bytes at offset 17, 1 available`,
    ],
    [
      "bytes after the last field",
      () => decodePcrExtend(h("8002000000140000000000000000000001000000"), 15, ctx),
      `Cannot read ${E}: 1 bytes after the last field, expected none`,
    ],
    [
      "a PCR_Extend with parameters",
      () => decodePcrExtend(h("800200000013 00000000 00000001 0000 01 0000"), 15, ctx),
      `Cannot read ${E}: parameterSize 1, expected 0 (PCR_Extend has none)`,
    ],
    [
      "a truncated PCR value",
      () => decodePcrRead(h(READ_SWTPM).subarray(0, 60), 15, ctx),
      `Cannot read ${R}: responseSize says 62 bytes, 60 received`,
    ],
    [
      "a PCR value cut inside a consistent header",
      () =>
        decodePcrRead(
          h(`80010000003c000000000000001400000001000b030080000000000100 20${"00".repeat(30)}`),
          15,
          ctx,
        ),
      `Cannot read ${R}: pcrValues[0].buffer needs 32 bytes at offset 30, 30 available`,
    ],
    [
      "a digest count that does not match the selection",
      () => decodePcrRead(h("80010000001c 00000000 00000014 00000001 000b03008000 00000000"), 15, ctx),
      `Cannot read ${R}: 0 digests for 1 selected PCRs, expected one each`,
    ],
    [
      "a sha256 value of 20 bytes",
      () =>
        decodePcrRead(
          h(`800100000032 00000000 00000014 00000001 000b03008000 00000001 0014${"00".repeat(20)}`),
          15,
          ctx,
        ),
      `Cannot read ${R}: sha256 PCR 15 of 20 bytes, expected 32`,
    ],
    [
      "another capability",
      () => decodeGetCapabilityPcrs(h("80010000001300000000000000000600000000"), ctx),
      `Cannot read ${C}: capability 6, expected TPM_CAP_PCRS (5)`,
    ],
    [
      "a selection count of 17",
      () => decodeGetCapabilityPcrs(h("80010000001300000000000000000500000011"), ctx),
      `Cannot read ${C}: pcrSelection.count 17, expected at most 16`,
    ],
    [
      "a selection bitmap past the end",
      () => decodeGetCapabilityPcrs(h("800100000017000000000000000005000000010004 03ff"), ctx),
      `Cannot read ${C}: pcrSelection[0].pcrSelect needs 3 bytes at offset 22, 1 available`,
    ],
    [
      "a response over the cap",
      () => decodePcrRead(new Uint8Array(MAX_TPM_RESPONSE + 1), 15, ctx),
      `Cannot read ${R}: 4097 bytes, expected at most 4096`,
    ],
  ])("refuses %s with a FormatError", (_, fn, msg) => {
    const e = thrown(fn);
    expect(e).toBeInstanceOf(FormatError);
    expect(e.message).toBe(msg);
  });
});
