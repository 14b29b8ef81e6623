// The xattr limits of mkcomposefs 1.0.8 at their boundaries (test/helpers/xattr-boundary.ts), pinned: each
// case in each format version gives the image whose sha256 the real mkcomposefs 1.0.8 wrote for it, or the
// refusal where mkcomposefs refuses (exit 1), with the message naming what to change. The parser holds an
// inode's own xattrs to 32767 budget bytes; the overlay xattrs the writer adds do not count against them.
// The same cases run live against the reference binary in mkcomposefs-differential.test.ts.

import { describe, expect, it } from "vitest";
import { FormatError } from "../../src/base/errors.ts";
import { sha256 } from "../../src/base/hash.ts";
import { toHex, utf8 } from "../../src/formats/bytes.ts";
import { parseDumpfile } from "../../src/formats/composefs/dumpfile.ts";
import { writeErofs } from "../../src/formats/erofs/write.ts";
import { BOUNDARY_CASES, VERSIONS } from "../helpers/xattr-boundary.ts";

const REFUSED = "refused";
type Pin = Record<(typeof VERSIONS)[number]["name"], string>;

/** sha256 of mkcomposefs 1.0.8's image (`--from-file`, with each version's options), or REFUSED. */
const PINNED: Record<string, Pin> = {
  "at-limit-payload-digest": {
    v0: "981cb700024b64cb3e69252145c30a23af64333250eb9ecc0db0336f3d0895e1",
    v1: "92c965e2cb426980e151ae7a12161f7cf32fd3d12a4e91ec2a4b7c8763875598",
    default: "981cb700024b64cb3e69252145c30a23af64333250eb9ecc0db0336f3d0895e1",
  },
  "at-limit-payload": {
    v0: "b10414067d64353cd1f6c7c04f1603480005e6c99ea2ff4bf40e29ba707a20ce",
    v1: "2da41b476891d10d22bfb386f7109ac471ff83843475b7e5360d334ee40b8510",
    default: "b10414067d64353cd1f6c7c04f1603480005e6c99ea2ff4bf40e29ba707a20ce",
  },
  "at-limit-digest-only": {
    v0: "69d15a786846111f647aff1013de8e18d708838db903a4f918e247cc76a7f4f7",
    v1: "7c7c5156a42da7c38fb7b6a6e1979f58f31a4350be3c6e2ed669ec53384f71b1",
    default: "69d15a786846111f647aff1013de8e18d708838db903a4f918e247cc76a7f4f7",
  },
  "at-limit-no-digest": {
    v0: "ceddd311463e17fe08408dcedb7f6e557bc7e7f123103e0a2ddeb87c418e9da2",
    v1: "8d3c3f8405f1eed33179aa032f86380a94366705958748c01b7d5a12ca0bfcd3",
    default: "ceddd311463e17fe08408dcedb7f6e557bc7e7f123103e0a2ddeb87c418e9da2",
  },
  "at-limit-long-redirect": {
    v0: "1c14472e65b8aab21796474d967bd8126c7bb7e1189b02e3195aff1762957c8f",
    v1: "c2257e08c69f794df33d234d5179cd1db00b26cb88bbc0b21b018fb14d232233",
    default: "1c14472e65b8aab21796474d967bd8126c7bb7e1189b02e3195aff1762957c8f",
  },
  "at-limit-two-xattrs": {
    v0: "9873e28ceba26a2d36b5c0c8256fbffb819c14197d29b8647dd8f104c23384d6",
    v1: "29144aa92092830879efabd986c753f2585d52d46597cc042d2593c277bc2dd0",
    default: "9873e28ceba26a2d36b5c0c8256fbffb819c14197d29b8647dd8f104c23384d6",
  },
  "at-limit-escaped": {
    v0: "c4f17dffbde558e0f644d01e0c81f49573d4959434f0e4df9ba4723533ff375e",
    v1: "2c55f8e3e93d85124acbfbeb8a12b60ee3b6ef89dbcb6070cecf08bd02ac15e3",
    default: "c4f17dffbde558e0f644d01e0c81f49573d4959434f0e4df9ba4723533ff375e",
  },
  "at-limit-escaped-dir": {
    v0: "16693fc0b47e84d153e331396a94ef01e715a6a9986d88a6e1a6cd0a4f0fe3e9",
    v1: "61dc96f658d5ecf0a52c4ace986b4200e2e5e5246d8d29e1c33c2f58293bbdc3",
    default: "16693fc0b47e84d153e331396a94ef01e715a6a9986d88a6e1a6cd0a4f0fe3e9",
  },
  "at-limit-inline": {
    v0: "305f273e18eae161d23f4cb65f0afcb6923dbcac694a7ddc49dca6c8dfa947e3",
    v1: "7334222ef3d772072a9dcec1bea109bc364763aa3d8db18bdb56d2c32728f2c8",
    default: "305f273e18eae161d23f4cb65f0afcb6923dbcac694a7ddc49dca6c8dfa947e3",
  },
  "at-limit-empty-file": {
    v0: "6740e6a8589cdff27db0433ce72a07250ebc8e57b3eeb85ce6061b34ec5c59b9",
    v1: "8e6425d71890babf692dee8fc70a9cdaeb40c40600a2cb98967a0fe6e250f72e",
    default: "6740e6a8589cdff27db0433ce72a07250ebc8e57b3eeb85ce6061b34ec5c59b9",
  },
  "at-limit-whiteout": {
    v0: "c408beca18c30637eff8c2e01d2f3fbe0cf3d0b73bfccb3387b9d8377932c976",
    v1: "171e99222563595a12a4c70e7d87f915a3b0f5e9738d74de53a7d6150dbf7b1f",
    default: "171e99222563595a12a4c70e7d87f915a3b0f5e9738d74de53a7d6150dbf7b1f",
  },
  "at-limit-whiteout-parent": {
    v0: "cc4cad1dc758a26f3a89e4dab1aa46219c466cc27e7b5b9e4a2032ddd663087f",
    v1: "59e79a0c7a8983f7ea8483c745d3d9bf84212816d75f25f8d606a1d48211adb7",
    default: "59e79a0c7a8983f7ea8483c745d3d9bf84212816d75f25f8d606a1d48211adb7",
  },
  "at-limit-root": {
    v0: "21b5c8389e521de7d0707154231dac0d412d5cb61cec6e51eee10c96f5503dd2",
    v1: "4db06f6d37b63fe03af4e5807c4d77a86eca90d05657162bd112740ed2ccae79",
    default: "21b5c8389e521de7d0707154231dac0d412d5cb61cec6e51eee10c96f5503dd2",
  },
  "at-limit-root-whiteout": {
    v0: "11fd2cc264a39b24adb40fe72ea9c3c51903f00c68b8ed13f8ae2b0e3940737e",
    v1: "a0ecf51b4547933bb1b674f420a230a18217a86106776b4bd8392f00ab551fa8",
    default: "a0ecf51b4547933bb1b674f420a230a18217a86106776b4bd8392f00ab551fa8",
  },
  "at-limit-root-selinux": {
    v0: "a5deabec327e40ab762650b7e86170d2625e9aa5b6a164092f8d92ed42da4cb6",
    v1: "a59131a8318c814707e7624115a5502851c97e43ad789a62a8842e77b3eac1d0",
    default: "a5deabec327e40ab762650b7e86170d2625e9aa5b6a164092f8d92ed42da4cb6",
  },
  "at-limit-after-duplicate": {
    v0: "981cb700024b64cb3e69252145c30a23af64333250eb9ecc0db0336f3d0895e1",
    v1: "92c965e2cb426980e151ae7a12161f7cf32fd3d12a4e91ec2a4b7c8763875598",
    default: "981cb700024b64cb3e69252145c30a23af64333250eb9ecc0db0336f3d0895e1",
  },
  "over-limit-payload": { v0: REFUSED, v1: REFUSED, default: REFUSED },
  "over-limit-empty-file": { v0: REFUSED, v1: REFUSED, default: REFUSED },
  "over-limit-before-duplicate": { v0: REFUSED, v1: REFUSED, default: REFUSED },
  "whiteout-own-escaped-whiteout": { v0: REFUSED, v1: REFUSED, default: REFUSED },
  "whiteout-own-escaped-whiteout-empty": {
    v0: "8a5e31a0f53a3f89db28cc4810f1f1f17bf2c7fc5e6d1ba75b8140b02bfa28c0",
    v1: "ed393f7f8bb5dd085df6083a4361bb7d85832edaf370915f4f87cb620ea73b84",
    default: "ed393f7f8bb5dd085df6083a4361bb7d85832edaf370915f4f87cb620ea73b84",
  },
  "whiteout-own-escaped-whiteout-alone": {
    v0: "69ee8f26c7719d457998f9c0cf5f5ead3e828758a8b72d95d05d2b73e6e25110",
    v1: "d1a5f216cab9c1374ff7c4a547bb6f75ffaa76e6fae6d5872de520b2ae5e972b",
    default: "d1a5f216cab9c1374ff7c4a547bb6f75ffaa76e6fae6d5872de520b2ae5e972b",
  },
  "whiteout-own-user-whiteout": {
    v0: "8a5e31a0f53a3f89db28cc4810f1f1f17bf2c7fc5e6d1ba75b8140b02bfa28c0",
    v1: "ed393f7f8bb5dd085df6083a4361bb7d85832edaf370915f4f87cb620ea73b84",
    default: "ed393f7f8bb5dd085df6083a4361bb7d85832edaf370915f4f87cb620ea73b84",
  },
  "whiteout-parent-own-whiteouts": { v0: REFUSED, v1: REFUSED, default: REFUSED },
  "whiteout-parent-own-user-opaque-108": {
    v0: "60096960b86bb88a92f51021414ccfc43cacfec2632e0d7e28d71e8c179570d8",
    v1: "ec5a049e0a85ed0dfa1fec789d0ad22c0939c24735db508bc5b33034a17907fb",
    default: "ec5a049e0a85ed0dfa1fec789d0ad22c0939c24735db508bc5b33034a17907fb",
  },
  "whiteout-parent-own-user-opaque-109": {
    v0: "f06ec1e8f97aa95962ef074e61f418bba7e4b98dcfbebdd67895d33b1092b932",
    v1: REFUSED,
    default: REFUSED,
  },
  "whiteout-parent-own-user-opaque-109-twice": {
    v0: "a8f901fdd099aa06c537fbfbffddc81f2b86cdb8f2be8342bc7927c8e9cd1f62",
    v1: REFUSED,
    default: REFUSED,
  },
  "whiteout-root-own-user-opaque-109": {
    v0: "553ec03f70422bb7a3f920bb1a5c131914c6afff6c7f6d5f609c5ccf48414ca6",
    v1: REFUSED,
    default: REFUSED,
  },
  "root-own-opaque": {
    v0: "3aa08eb742a041303b5d1c60502269c9c1fe670aad6d911d74eae08450972e1f",
    v1: "849d81bd2024ad7bef6a6d0808d2cea74d0906624461a8459f578875838d584a",
    default: "3aa08eb742a041303b5d1c60502269c9c1fe670aad6d911d74eae08450972e1f",
  },
};

/** sealroot's one-line reason for each refused case (the same in every version that refuses it). */
const REFUSALS: Record<string, string> = {
  "over-limit-payload":
    'Cannot parse "over-limit-payload.dump" line 2, field XATTR: "user.a" brings the inode\'s xattrs to 32768 bytes (12 + Σ(7 + key + value)), expected at most 32767',
  "over-limit-empty-file":
    'Cannot parse "over-limit-empty-file.dump" line 2, field XATTR: "user.a" brings the inode\'s xattrs to 32768 bytes (12 + Σ(7 + key + value)), expected at most 32767',
  "over-limit-before-duplicate":
    'Cannot parse "over-limit-before-duplicate.dump" line 2, field XATTR: "user.a" brings the inode\'s xattrs to 32768 bytes (12 + Σ(7 + key + value)), expected at most 32767',
  "whiteout-own-escaped-whiteout":
    'Cannot write composefs image for "/w": replacing its xattr "trusted.overlay.overlay.whiteout" (written as "trusted.overlay.whiteout") of 3 bytes takes the writer\'s xattr budget below 0, which libcomposefs 1.0.8 refuses (ERANGE), expected a value of at most 0 bytes',
  "whiteout-parent-own-whiteouts":
    'Cannot write composefs image for "/d": replacing its xattr "trusted.overlay.overlay.whiteouts" (written as "trusted.overlay.whiteouts") of 3 bytes takes the writer\'s xattr budget below 0, which libcomposefs 1.0.8 refuses (ERANGE), expected a value of at most 0 bytes',
  "whiteout-parent-own-user-opaque-109":
    'Cannot write composefs image for "/d": replacing its xattr "user.overlay.opaque" of 109 bytes takes the writer\'s xattr budget below 0, which libcomposefs 1.0.8 refuses (ERANGE), expected a value of at most 108 bytes',
  "whiteout-parent-own-user-opaque-109-twice":
    'Cannot write composefs image for "/d": replacing its xattr "user.overlay.opaque" of 109 bytes takes the writer\'s xattr budget below 0, which libcomposefs 1.0.8 refuses (ERANGE), expected a value of at most 108 bytes',
  "whiteout-root-own-user-opaque-109":
    'Cannot write composefs image for "/": replacing its xattr "user.overlay.opaque" of 109 bytes takes the writer\'s xattr budget below 0, which libcomposefs 1.0.8 refuses (ERANGE), expected a value of at most 108 bytes',
};

/** The image sha256 or REFUSED, and the refusal message (the input named `<case>.dump`). */
function outcome(name: string, dump: string, version: (typeof VERSIONS)[number]) {
  try {
    const tree = parseDumpfile(utf8.encode(dump), { path: `${name}.dump` });
    const image = writeErofs(tree, { version: version.version, maxVersion: version.maxVersion });
    return { result: toHex(sha256(image)), message: undefined };
  } catch (e) {
    if (!(e instanceof FormatError)) throw e;
    return { result: REFUSED, message: e.message };
  }
}

describe("mkcomposefs xattr limits at the boundary", () => {
  it("pins every boundary case", () => {
    expect(Object.keys(PINNED)).toEqual(BOUNDARY_CASES.map((c) => c.name));
  });

  const rows = BOUNDARY_CASES.flatMap((c) => VERSIONS.map((v) => ({ ...c, v, version: v.name })));
  it.each(rows)("$name ($version): $about", ({ name, dump, v }) => {
    const { result, message } = outcome(name, dump, v);
    expect(result).toBe(PINNED[name]![v.name]);
    if (result === REFUSED) expect(message).toBe(REFUSALS[name]);
  });
});
