// Builds the boot matrix's test OS and its disks: two versions of a tiny busybox OS in ostree's layout
// (qemu/test-os/), committed with Debian's ostree CLI, sealed and signed by `sealroot seal` with a key made
// for that build alone (the secret is deleted after signing), deployed with `ostree admin deploy` plus
// `sealroot deploy-image` into one sysroot, written to ext4 verity disks (the good one and one per tamper
// variant) and provisioned in ONE QEMU boot that enables fs-verity and measures it with `sealroot measure`.
// Everything lands in .cache/test-os/<key>/ (key = hash of every input) and is reused on the next call.
//
// CLI: node_modules/.bin/bun qemu/build-test-os.ts   (prints the cache directory; manifest.json inside)

import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  truncateSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { dirname, join, relative } from "node:path";
import { buildInitramfs, CACHE, REPO, SEALROOT_BIN } from "../initrd/build.ts";
import { listBootEntries } from "../src/core/boot-entries.ts";
import {
  decodeCommitmeta,
  ed25519Signatures,
  type LooseObjectExt,
  loosePath,
} from "../src/formats/ostree/objects.ts";
import { realFs } from "../src/sys/fs.ts";
import { ffiRsAddon } from "./lib/bun.ts";
import { makeExt4Disk } from "./lib/disk.ts";
import { initScript } from "./lib/init.ts";
import { fetchKernel } from "./lib/kernel.ts";
import { bootVm, formatTimings } from "./lib/qemu.ts";

/** Bump when the recipe changes in a way the hashed inputs do not show. */
const RECIPE = "test-os v1";
export const OSNAME = "sealroot-test";
export const REF = "sealroot-test/x86_64/stable";
export const BAD_DIGEST_REF = "sealroot-test/x86_64/wrong-digest";
/** ext4 label of every disk (root=LABEL=root); the UUID is makeExt4Disk's fixed one. */
export const LABEL = "root";
export const DISK_UUID = "5ea1f00d-0000-4000-8000-000000000001";
export const SIGNED_CONF = "[composefs]\nenabled = signed\n";
const TEST_OS_SRC = join(REPO, "qemu/test-os");
const BUSYBOX = "/bin/busybox";
const DISK_MIB = 64;
/** Commit timestamps: 2026-01-01 and -02 00:00 UTC. */
const TIMESTAMPS = [0, 1767225600, 1767312000];
/** The file only the newer build has (its object is what object-swapped replaces, its digest what
 * cfs-flipped changes in the image). */
export const RELEASE_FILE = "/usr/share/sealroot-test/release.txt";

export interface TestOsFile {
  path: string;
  sha256: string;
  size: number;
}

export interface TestOsBuild {
  version: number;
  /** The sealed, signed commit deployed on the disks. */
  commit: string;
  /** The commit `ostree commit` made before `sealroot seal` amended it. */
  unsealedCommit: string;
  /** `ostree.composefs.digest.v0` (hex), = the fs-verity digest of the deployment's `.ostree.cfs`. */
  digest: string;
  /** This build's public key file (base64, one line): what its initramfs trusts. */
  keyPub: string;
  keyHex: string;
  /** Value of `ostree=` in its boot entry on the good disk. */
  ostree: string;
  /** Deployment directory relative to the sysroot. */
  deployment: string;
  /** Every regular file of the committed tree (what the booted root serves), by path in byte order. */
  files: TestOsFile[];
  /** sha256 of the "HASH  PATH" lines of `files`: the OS init's `content=` on a fully readable boot. */
  content: string;
}

export interface TestOsDeployment {
  /** Index as `ostree admin status` lists them (0 = default boot entry). */
  index: number;
  commit: string;
  /** Build version of the commit's tree (0 when the commit is none of the builds'). */
  version: number;
  ostree: string;
  path: string;
  /** Kernel fs-verity digest of `.ostree.cfs` after provisioning: `sha256:<hex>`, `noverity` or `absent`. */
  image: string;
}

export type Expectation = "boot" | "refuse" | "boot-unreadable";

export interface TestOsVariant {
  name: string;
  description: string;
  /** The provisioned raw disk image (attach with snapshot=on to keep it pristine). */
  disk: string;
  /** The host tree the disk was made from (before provisioning: no fs-verity, no immutable flags). */
  tree: string;
  deployments: TestOsDeployment[];
  /** What a signed boot of the default entry (deployment 0) with its build's key should do. */
  expect: Expectation;
  /** Refusal stage, as `sealroot verify` and prepare-root name it, where known. */
  stage?: "signature" | "image";
  /** Paths of the booted root that must fail to read (EIO), for boot-unreadable. */
  unreadable?: string[];
  /** Repo objects (`*.file`, regular) with fs-verity after provisioning / in total. */
  objects: { verity: number; total: number };
  /** What was changed, as facts (paths relative to the sysroot, offsets, digests). */
  tamper: Record<string, string>;
}

export interface TestOsManifest {
  key: string;
  dir: string;
  cached: boolean;
  kernelRelease: string;
  osname: string;
  ref: string;
  label: string;
  uuid: string;
  signedConf: string;
  /** The build repo (bare-user): both sealed commits, their unsealed originals, the wrong-digest commit. */
  repo: string;
  /** Host tree of the good disk (= variants good's tree). */
  sysroot: string;
  strangerPub: string;
  builds: TestOsBuild[];
  variants: TestOsVariant[];
  provision: { log: string; markers: Record<string, string>; timings: string };
  timings: Record<string, number>;
}

const BIN = SEALROOT_BIN;
const sha256 = (b: Uint8Array | string) => createHash("sha256").update(b).digest("hex");

function run(cmd: string, args: string[], opts: { env?: Record<string, string>; cwd?: string } = {}): string {
  try {
    return execFileSync(cmd, args, {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, ...opts.env },
      ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
    });
  } catch (e) {
    const err = e as { stderr?: string; stdout?: string; status?: number };
    throw new Error(
      `Cannot run ${cmd} ${args.join(" ")}: exit ${String(err.status)}, ${(err.stderr ?? "").trim() || (err.stdout ?? "").trim()}`,
    );
  }
}
const sealroot = (...args: string[]) => run(BIN, args);

/** The cache key: the recipe, this file, the OS sources, busybox, the kernel, sealroot, ostree, mke2fs. */
function cacheKey(kernelRelease: string): string {
  const h = createHash("sha256").update(`${RECIPE}\n${kernelRelease}\n`);
  h.update(readFileSync(new URL(import.meta.url)));
  for (const name of readdirSync(TEST_OS_SRC).sort())
    h.update(name).update(readFileSync(join(TEST_OS_SRC, name)));
  h.update(readFileSync(BUSYBOX));
  h.update(readFileSync(BIN));
  h.update(run("ostree", ["--version"]));
  h.update(execFileSync("mke2fs", ["-V"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }));
  return h.digest("hex").slice(0, 24);
}

/** Deterministic bytes (SHA-256 in counter mode). */
function patternBytes(label: string, size: number): Buffer {
  const out = Buffer.alloc(size);
  for (let i = 0, off = 0; off < size; i++, off += 32) {
    createHash("sha256").update(`${label}:${i}`).digest().copy(out, off);
  }
  return out;
}

/** The OS tree of build `version` (ostree layout: everything under /usr, /usr/etc, kernel in modules/). */
function makeTree(dir: string, version: number, kver: string): void {
  for (const d of ["boot", "dev", "proc", "sys", "run", "var", "sysroot", "mnt", "tmp"]) {
    mkdirSync(join(dir, d), { recursive: true });
  }
  chmodSync(join(dir, "tmp"), 0o1777);
  for (const [link, target] of [
    ["bin", "usr/bin"],
    ["sbin", "usr/sbin"],
    ["lib", "usr/lib"],
    ["ostree", "sysroot/ostree"],
  ] as const)
    symlinkSync(target, join(dir, link));
  const put = (rel: string, data: string | Uint8Array, mode = 0o644) => {
    mkdirSync(dirname(join(dir, rel)), { recursive: true });
    writeFileSync(join(dir, rel), data);
    chmodSync(join(dir, rel), mode);
  };
  put("usr/bin/busybox", readFileSync(BUSYBOX), 0o755);
  mkdirSync(join(dir, "usr/sbin"), { recursive: true });
  const applets = run(BUSYBOX, ["--list-full"]).split("\n").filter(Boolean);
  for (const a of applets) {
    const name = a.slice(a.lastIndexOf("/") + 1);
    if (name === "busybox" || name === "init" || name === "linuxrc") continue;
    const sbin = a.startsWith("sbin/") || a.startsWith("usr/sbin/");
    const path = join(dir, sbin ? "usr/sbin" : "usr/bin", name);
    if (!existsSync(path)) symlinkSync(sbin ? "../bin/busybox" : "busybox", path);
  }
  put("usr/sbin/init", readFileSync(join(TEST_OS_SRC, "init")), 0o755);
  const osRelease = readFileSync(join(TEST_OS_SRC, "os-release.in"), "utf8").replaceAll(
    "@VERSION@",
    String(version),
  );
  put("usr/lib/os-release", osRelease);
  put("usr/etc/hostname", readFileSync(join(TEST_OS_SRC, "hostname")));
  symlinkSync("../lib/os-release", join(dir, "usr/etc/os-release"));
  put("usr/etc/fstab", readFileSync(join(TEST_OS_SRC, "fstab")));
  // Placeholders so `ostree admin deploy` finds a kernel; the VM boots the Debian kernel and its own initramfs.
  put(`usr/lib/modules/${kver}/vmlinuz`, "sealroot test OS: placeholder kernel (the VM boots Debian's)\n");
  put(
    `usr/lib/modules/${kver}/initramfs.img`,
    `sealroot test OS ${version}: placeholder initramfs (each boot test builds its own)\n`,
  );
  put("usr/lib/ostree/prepare-root.conf", SIGNED_CONF);
  put(RELEASE_FILE.slice(1), `sealroot test OS release ${version}\n`);
  put("usr/share/sealroot-test/empty", "");
  // > 128 blocks: a two-level Merkle tree; the same bytes in both builds (one shared object).
  put("usr/share/sealroot-test/two-level.bin", patternBytes("sealroot-test-os", 600_000));
}

/** Every regular file of a tree, by path in byte order, as the OS init lists and hashes them. */
function treeFiles(dir: string): TestOsFile[] {
  const out: TestOsFile[] = [];
  const walk = (rel: string) => {
    for (const e of readdirSync(join(dir, rel), { withFileTypes: true })) {
      const r = `${rel}/${e.name}`;
      if (e.isDirectory()) walk(r);
      else if (e.isFile()) {
        const data = readFileSync(join(dir, r));
        out.push({ path: r, sha256: sha256(data), size: data.length });
      }
    }
  };
  walk("");
  return out.sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
}
export const contentDigest = (files: TestOsFile[]) =>
  sha256(files.map((f) => `${f.sha256}  ${f.path}\n`).join(""));

/**
 * Runs `script` (sh, cwd = the sysroot) on a copy of `tree` on a private tmpfs, then copies the result back.
 * `ostree admin deploy` does an FIFREEZE/FITHAW cycle on the file system holding `boot/` — on the host that
 * would be the machine's root file system; tmpfs answers EOPNOTSUPP and ostree falls back to syncfs. The
 * immutable flags ostree sets stay behind on the tmpfs (cp -a does not carry them).
 */
function inTmpfs(tree: string, script: string, env: Record<string, string>): string {
  const mnt = `${tree}.mnt`;
  mkdirSync(mnt, { recursive: true });
  mkdirSync(tree, { recursive: true });
  const body = `mount -t tmpfs -o size=1g,mode=0755 tmpfs "$MNT"
cp -a "$TREE/." "$MNT/"
cd "$MNT"
${script}
cd /
rm -rf "$TREE"; mkdir "$TREE"; cp -a "$MNT/." "$TREE/"`;
  const out = run("unshare", ["-m", "--propagation", "private", "sh", "-euc", body], {
    env: { ...env, MNT: mnt, TREE: tree },
  });
  rmSync(mnt, { recursive: true, force: true });
  return out;
}

/** Deployments of a host sysroot tree, in `ostree admin status` order. */
function deploymentsOf(sysroot: string, versions: Map<string, number>): Omit<TestOsDeployment, "image">[] {
  return listBootEntries(realFs, sysroot).map((e, index) => {
    const path = relative(sysroot, realpathSync(join(sysroot, e.target)));
    const commit = /([0-9a-f]{64})\.\d+$/.exec(path)?.[1] ?? "";
    return { index, commit, version: versions.get(commit) ?? 0, ostree: e.target, path };
  });
}

const objectPath = (commit: string, ext: LooseObjectExt) => `ostree/repo/objects/${loosePath(commit, ext)}`;

/** The repo object a deployment file is a hard link of. */
function objectOf(sysroot: string, file: string): string {
  const ino = statSync(join(sysroot, file)).ino;
  const objects = join(sysroot, "ostree/repo/objects");
  for (const d of readdirSync(objects)) {
    for (const n of readdirSync(join(objects, d))) {
      if (n.endsWith(".file") && lstatSync(join(objects, d, n)).ino === ino)
        return `ostree/repo/objects/${d}/${n}`;
    }
  }
  throw new Error(
    `Cannot find the object of "${file}" in "${objects}": no .file with inode ${ino}, expected a hard link`,
  );
}

/** Replaces a file by new bytes (a new inode: never writes through hard links). */
function replaceFile(path: string, data: Uint8Array): void {
  rmSync(path);
  writeFileSync(path, data, { mode: 0o644 });
}

interface Ctx {
  tree: string;
  work: string;
  repo: string;
  builds: TestOsBuild[];
  /** .commitmeta of the newer commit signed by the stranger key only. */
  strangerCommitmeta: string;
  wrongDigestCommit: string;
}
interface VariantSpec {
  name: string;
  description: string;
  expect: Expectation;
  stage?: "signature" | "image";
  unreadable?: string[];
  verity: { objects: boolean; newerImage: boolean };
  tamper?: (c: Ctx) => Record<string, string>;
}

const newer = (c: Ctx) => c.builds[1] as TestOsBuild;
const VARIANTS: VariantSpec[] = [
  {
    name: "good",
    description: "both deployments as built; fs-verity on every repo object and both .ostree.cfs",
    expect: "boot",
    verity: { objects: true, newerImage: true },
  },
  {
    name: "cfs-flipped",
    description:
      "newer .ostree.cfs with one byte changed (the last byte of release.txt's fs-verity digest in its metacopy xattr), fs-verity enabled on the changed file: its digest differs from the signed one",
    expect: "refuse",
    stage: "image",
    verity: { objects: true, newerImage: true },
    tamper: (c) => {
      const b = newer(c);
      const image = join(c.tree, b.deployment, ".ostree.cfs");
      const object = objectOf(c.tree, join(b.deployment, RELEASE_FILE));
      const digest =
        sealroot("fsverity-digest", join(c.tree, object)).split(" ")[0]?.replace("sha256:", "") ?? "";
      const bytes = readFileSync(image);
      const at = bytes.indexOf(Buffer.from(digest, "hex"));
      if (at < 0 || bytes.indexOf(Buffer.from(digest, "hex"), at + 1) >= 0)
        throw new Error(
          `Cannot flip the digest of ${object} in "${image}": found ${at < 0 ? 0 : "2+"} times, expected once`,
        );
      bytes[at + 31] = (bytes[at + 31] as number) ^ 0xff;
      replaceFile(image, bytes);
      return {
        file: join(b.deployment, ".ostree.cfs"),
        offset: String(at + 31),
        xor: "0xff",
        digestOf: RELEASE_FILE,
      };
    },
  },
  {
    name: "sig-corrupt",
    description:
      "newer commit's .commitmeta with one bit of its ed25519 signature flipped (byte 10 XOR 0x01)",
    expect: "refuse",
    stage: "signature",
    verity: { objects: true, newerImage: true },
    tamper: (c) => {
      const file = objectPath(newer(c).commit, "commitmeta");
      const bytes = readFileSync(join(c.tree, file));
      const sig = ed25519Signatures(decodeCommitmeta(bytes))[0];
      const at = sig ? bytes.indexOf(Buffer.from(sig)) : -1;
      if (at < 0) throw new Error(`Cannot find the signature in "${file}": none, expected one`);
      bytes[at + 10] = (bytes[at + 10] as number) ^ 0x01;
      replaceFile(join(c.tree, file), bytes);
      return { file, offset: String(at + 10), xor: "0x01" };
    },
  },
  {
    name: "sig-other",
    description:
      "newer commit's .commitmeta replaced by one holding only a signature by a third key (neither build's)",
    expect: "refuse",
    stage: "signature",
    verity: { objects: true, newerImage: true },
    tamper: (c) => {
      const file = objectPath(newer(c).commit, "commitmeta");
      replaceFile(join(c.tree, file), readFileSync(c.strangerCommitmeta));
      return { file, signedBy: "stranger" };
    },
  },
  {
    name: "sig-truncated",
    description:
      "newer commit's .commitmeta cut to half its size (ostree reads it as an empty a{sv}: no signatures)",
    expect: "refuse",
    stage: "signature",
    verity: { objects: true, newerImage: true },
    tamper: (c) => {
      const file = objectPath(newer(c).commit, "commitmeta");
      const size = statSync(join(c.tree, file)).size;
      truncateSync(join(c.tree, file), Math.floor(size / 2));
      return { file, from: String(size), to: String(Math.floor(size / 2)) };
    },
  },
  {
    name: "digest-wrong",
    description:
      "a third deployment (the default) of a commit with the newer tree, validly signed by the newer key, whose ostree.composefs.digest.v0 is wrong (last byte XOR 0xff); its .ostree.cfs is the true image",
    expect: "refuse",
    stage: "image",
    verity: { objects: true, newerImage: true },
    tamper: (c) => {
      const b = newer(c);
      const dep = `ostree/deploy/${OSNAME}/deploy/${c.wrongDigestCommit}.0`;
      inTmpfs(
        c.tree,
        `ostree --repo=ostree/repo pull-local "$BUILD_REPO" "$BAD_REF" >/dev/null
ostree admin deploy --sysroot=. --os=${OSNAME} --retain "$BAD_REF" >/dev/null
chattr -i "$DEP"
cp "${b.deployment}/.ostree.cfs" "$DEP/.ostree.cfs"
chattr +i "$DEP"`,
        { BUILD_REPO: c.repo, BAD_REF: BAD_DIGEST_REF, DEP: dep },
      );
      return { commit: c.wrongDigestCommit, deployment: dep, image: `copy of ${b.deployment}/.ostree.cfs` };
    },
  },
  {
    name: "cfs-missing",
    description: "newer deployment without .ostree.cfs",
    expect: "refuse",
    stage: "image",
    verity: { objects: true, newerImage: true },
    tamper: (c) => {
      const file = join(newer(c).deployment, ".ostree.cfs");
      rmSync(join(c.tree, file));
      return { removed: file };
    },
  },
  {
    name: "cfs-noverity",
    description: "newer .ostree.cfs left without fs-verity (the older one and every object have it)",
    expect: "refuse",
    stage: "image",
    verity: { objects: true, newerImage: false },
  },
  {
    name: "objects-noverity",
    description:
      "fs-verity on both .ostree.cfs but on no repo object (ostree-prepare-root boots it and every non-empty file then fails with EIO; sealroot's read probe refuses it)",
    expect: "refuse",
    stage: "image",
    verity: { objects: false, newerImage: true },
  },
  {
    name: "object-swapped",
    description:
      "the repo object of the newer build's release.txt rewritten in place with other bytes of the same size, fs-verity enabled on them: the root mounts, reading that file fails with EIO",
    expect: "boot-unreadable",
    unreadable: [RELEASE_FILE],
    verity: { objects: true, newerImage: true },
    tamper: (c) => {
      const object = objectOf(c.tree, join(newer(c).deployment, RELEASE_FILE));
      const bytes = readFileSync(join(c.tree, object));
      Buffer.from("TAMPERED").copy(bytes, 0);
      writeFileSync(join(c.tree, object), bytes); // in place: the deployment's hard link changes too
      return { object, sha256: sha256(bytes) };
    },
  },
];

/** Provisioning script: mount every disk, enable fs-verity (one sealroot run for all), measure, report. */
function provisionScript(variants: VariantSpec[], builds: TestOsBuild[]): string {
  const dev = (i: number) => `/dev/vd${String.fromCharCode(97 + i)}`;
  const deploy = `ostree/deploy/${OSNAME}/deploy`;
  const lines = [
    `i=0; while [ ! -b ${dev(variants.length - 1)} ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done`,
    ": >/tmp/paths",
  ];
  for (const [i, v] of variants.entries()) {
    const m = `/mnt/${v.name}`;
    lines.push(`mkdir -p ${m}; mount -t ext4 ${dev(i)} ${m}`);
    const skip = v.verity.newerImage ? "" : ` ! -path '*/${builds[1]?.commit}.0/.ostree.cfs'`;
    lines.push(`find ${m}/${deploy} -mindepth 2 -maxdepth 2 -name .ostree.cfs -type f${skip} >>/tmp/paths`);
    if (v.verity.objects) lines.push(`find ${m}/ostree/repo/objects -name '*.file' -type f >>/tmp/paths`);
  }
  lines.push(
    "xargs sealroot enable-verity </tmp/paths >/dev/null",
    "xargs sealroot measure </tmp/paths >/tmp/measured",
  );
  for (const v of variants) {
    const m = `/mnt/${v.name}`;
    const key = v.name.replace(/-/g, "_");
    lines.push(
      `total=$(find ${m}/ostree/repo/objects -name '*.file' -type f | wc -l)`,
      `n=$(grep -c " ${m}/ostree/repo/objects/" /tmp/measured || true)`,
      `mark objects.${key} "$n/$total"`,
      `for d in ${m}/${deploy}/*.0; do
  c=$(basename "$d" .0)
  if [ ! -e "$d/.ostree.cfs" ]; then s=absent
  else s=$(grep " $d/.ostree.cfs$" /tmp/measured | cut -d' ' -f1); s=\${s:-noverity}; fi
  mark "image.${key}.$c" "$s"
  chattr +i "$d"
done`,
      `sync; umount ${m}`,
    );
  }
  return lines.join("\n");
}

const KEEP_BUILDS = 2;

/** Whether a process exists (a failed build's work directory of a dead process is removed). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Keeps the `keep` most recently used complete builds, and removes work directories of dead processes. */
function pruneBuilds(root: string, keep: number): void {
  for (const n of readdirSync(root)) {
    const pid = /\.tmp(\d+)$/.exec(n)?.[1];
    if (pid !== undefined && !processAlive(Number(pid)))
      rmSync(join(root, n), { recursive: true, force: true });
  }
  const done = readdirSync(root)
    .filter((n) => !n.includes(".tmp") && existsSync(join(root, n, ".complete")))
    .map((n) => ({ n, t: statSync(join(root, n, ".complete")).mtimeMs }))
    .sort((a, b) => b.t - a.t);
  for (const { n } of done.slice(keep)) rmSync(join(root, n), { recursive: true, force: true });
}

let memo: Promise<TestOsManifest> | undefined;

/** Builds everything, or loads it from the cache; concurrent callers in one process share one build. */
export function buildTestOs(log: (s: string) => void = () => {}): Promise<TestOsManifest> {
  memo ??= build(log).catch((e: unknown) => {
    memo = undefined;
    throw e;
  });
  return memo;
}

function loadManifest(dir: string): TestOsManifest {
  const m = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8")) as TestOsManifest;
  const abs = (p: string) => join(dir, p);
  return {
    ...m,
    dir,
    cached: true,
    repo: abs(m.repo),
    sysroot: abs(m.sysroot),
    strangerPub: abs(m.strangerPub),
    builds: m.builds.map((b) => ({ ...b, keyPub: abs(b.keyPub) })),
    variants: m.variants.map((v) => ({ ...v, disk: abs(v.disk), tree: abs(v.tree) })),
    provision: { ...m.provision, log: abs(m.provision.log) },
  };
}

async function build(log: (s: string) => void): Promise<TestOsManifest> {
  const t0 = performance.now();
  const kernel = fetchKernel();
  const key = cacheKey(kernel.release);
  const root = join(CACHE, "test-os");
  const dir = join(root, key);
  if (existsSync(join(dir, ".complete"))) {
    const now = new Date();
    utimesSync(join(dir, ".complete"), now, now); // most recently used, for pruneBuilds()
    return loadManifest(dir);
  }
  log(`test OS: building ${dir}`);
  const timings: Record<string, number> = {};
  const lap = (name: string, since: number) => {
    timings[name] = Math.round(performance.now() - since);
    return performance.now();
  };

  const work = `${dir}.tmp${process.pid}`;
  rmSync(work, { recursive: true, force: true });
  mkdirSync(join(work, "keys"), { recursive: true });
  const repo = join(work, "repo");
  run("ostree", ["init", `--repo=${repo}`, "--mode=bare-user"]);

  // Two builds, each with its own key: commit, seal + sign, delete the secret.
  let t = performance.now();
  const builds: TestOsBuild[] = [];
  let wrongDigestCommit = "";
  const strangerCommitmeta = join(work, "stranger.commitmeta");
  for (const version of [1, 2]) {
    const tree = join(work, "trees", `os-${version}`);
    makeTree(tree, version, kernel.release);
    const unsealed = run("ostree", [
      "commit",
      `--repo=${repo}`,
      `--branch=${REF}`,
      `--tree=dir=${tree}`,
      `--timestamp=@${TIMESTAMPS[version]}`,
      `--subject=sealroot test OS ${version}`,
      `--add-metadata-string=version=${version}`,
      "--bootable",
      "--owner-uid=0",
      "--owner-gid=0",
    ]).trim();
    const keyPrefix = join(work, "keys", `build-${version}`);
    sealroot("keygen", "--out", keyPrefix);
    const secret = `${keyPrefix}.secret`;
    const sealed = sealroot("seal", "--repo", repo, "--ref", REF, "--secret-key", secret);
    const digest = /ostree\.composefs\.digest\.v0: ([0-9a-f]{64})/.exec(sealed)?.[1] ?? "";
    const commit = readFileSync(join(repo, "refs/heads", REF), "utf8").trim();
    if (version === 2) {
      // The same tree, validly signed by this build's key, claiming a wrong composefs digest.
      const wrong = Buffer.from(digest, "hex");
      wrong[31] = (wrong[31] as number) ^ 0xff;
      wrongDigestCommit = run("ostree", [
        "commit",
        `--repo=${repo}`,
        `--branch=${BAD_DIGEST_REF}`,
        `--tree=ref=${commit}`,
        `--parent=${commit}`,
        `--timestamp=@${(TIMESTAMPS[2] as number) + 60}`,
        "--subject=sealroot test OS 2 claiming a wrong composefs digest",
        "--add-metadata-string=version=2-wrong-digest",
        "--bootable",
        `--add-metadata=ostree.composefs.digest.v0=[byte ${[...wrong].map((x) => `0x${x.toString(16).padStart(2, "0")}`).join(", ")}]`,
      ]).trim();
      sealroot("sign", "--repo", repo, "--commit", wrongDigestCommit, "--secret-key", secret);
    }
    rmSync(secret);
    const files = treeFiles(tree);
    builds.push({
      version,
      commit,
      unsealedCommit: unsealed,
      digest,
      keyPub: `${keyPrefix}.pub`,
      keyHex: Buffer.from(readFileSync(`${keyPrefix}.pub`, "utf8").trim(), "base64").toString("hex"),
      ostree: "",
      deployment: "",
      files,
      content: contentDigest(files),
    });
  }
  // A third key, for "signed by another key": the newer commit's .commitmeta with its signature only.
  {
    const prefix = join(work, "keys", "stranger");
    sealroot("keygen", "--out", prefix);
    const scratch = join(work, "scratch-repo");
    run("cp", ["-a", repo, scratch]);
    const c2 = (builds[1] as TestOsBuild).commit;
    rmSync(join(scratch, objectPath(c2, "commitmeta").slice("ostree/repo/".length)));
    sealroot("sign", "--repo", scratch, "--commit", c2, "--secret-key", `${prefix}.secret`);
    copyFileSync(
      join(scratch, objectPath(c2, "commitmeta").slice("ostree/repo/".length)),
      strangerCommitmeta,
    );
    rmSync(`${prefix}.secret`);
    rmSync(scratch, { recursive: true, force: true });
  }
  rmSync(join(work, "trees"), { recursive: true, force: true });
  t = lap("commitSealSign", t);

  // The sysroot: init-fs, os-init, deploy 1 then 2 (BLS entries with ostree=), deploy-image for both.
  // Plain init-fs (an installer's) gives the physical root its normal top-level directories (boot dev home
  // proc root run sys tmp): dracut's shell /init gives up on a root without proc, sys and dev.
  const sysroot = join(work, "variants/good");
  const [b1, b2] = builds as [TestOsBuild, TestOsBuild];
  const deployOut = inTmpfs(
    sysroot,
    `ostree admin init-fs .
ostree admin os-init --sysroot=. ${OSNAME}
ostree --repo=ostree/repo config set sysroot.bootloader none
ostree --repo=ostree/repo pull-local "$BUILD_REPO" "$C1" >/dev/null
ostree --repo=ostree/repo refs --create=${REF} "$C1"
ostree admin deploy --sysroot=. --os=${OSNAME} --karg=root=LABEL=${LABEL} --karg=rw ${REF} >/dev/null
ostree --repo=ostree/repo pull-local "$BUILD_REPO" ${REF} >/dev/null
ostree admin deploy --sysroot=. --os=${OSNAME} ${REF} >/dev/null
# deploy-image lifts the immutable flag ostree sets on deployment directories around its write
"$SEALROOT" deploy-image --sysroot . --deployment 0 --keys "$KEY2"
"$SEALROOT" deploy-image --sysroot . --deployment 1 --keys "$KEY1"
ostree admin status --sysroot=.`,
    { BUILD_REPO: repo, C1: b1.commit, SEALROOT: BIN, KEY1: b1.keyPub, KEY2: b2.keyPub },
  );
  writeFileSync(join(work, "deploy.log"), deployOut);
  const versions = new Map<string, number>(builds.map((b) => [b.commit, b.version]));
  for (const d of deploymentsOf(sysroot, versions)) {
    const b = builds.find((x) => x.commit === d.commit);
    if (!b) throw new Error(`Cannot match deployment ${d.path}: commit ${d.commit} is none of the builds'`);
    b.ostree = d.ostree;
    b.deployment = d.path;
  }
  for (const b of builds) {
    if (!b.ostree)
      throw new Error(`Cannot find the deployment of build ${b.version} (${b.commit}) in "${sysroot}"`);
    if (!deployOut.includes(`sha256:${b.digest} = ostree.composefs.digest.v0`))
      throw new Error(
        `Cannot confirm .ostree.cfs of build ${b.version}: deploy-image did not write digest ${b.digest}`,
      );
  }
  t = lap("deploy", t);

  // Variant trees (copies of the good one, tampered on the host) and their disks.
  const ctxBase = { work, repo, builds, strangerCommitmeta, wrongDigestCommit };
  const tamper: Record<string, Record<string, string>> = {};
  for (const v of VARIANTS) {
    const tree = join(work, "variants", v.name);
    if (v.name !== "good") run("cp", ["-a", sysroot, tree]);
    tamper[v.name] = v.tamper?.({ ...ctxBase, tree }) ?? {};
    makeExt4Disk(join(work, "disks", `${v.name}.img`), { tree, sizeMiB: DISK_MIB, label: LABEL });
  }
  t = lap("disks", t);

  // One provisioning boot for every disk.
  const initrd = buildInitramfs({
    init: initScript(provisionScript(VARIANTS, builds)),
    binaries: [
      { src: BIN, dest: "/usr/bin/sealroot" },
      // busybox-static 1.35 has no chattr: e2fsprogs' marks the deployment directories immutable
      { src: "/usr/bin/chattr", dest: "/usr/bin/chattr" },
    ],
    libsOf: [ffiRsAddon()],
    modules: { dir: kernel.modulesDir, names: kernel.modules },
  });
  const provisionLog = join(work, "provision.log");
  const boot = await bootVm({
    kernel: kernel.vmlinuz,
    initrd: initrd.path,
    disks: VARIANTS.map((v) => ({ path: join(work, "disks", `${v.name}.img`) })),
    memMiB: 2048,
    timeoutMs: 600_000,
    serialLog: provisionLog,
  });
  if (boot.status !== 0)
    throw new Error(`Cannot provision the test OS disks: exit ${String(boot.status)}, see "${provisionLog}"`);
  t = lap("provision", t);
  log(`test OS provisioning: ${formatTimings(boot.timings)}`);

  const variants: TestOsVariant[] = VARIANTS.map((v) => {
    const key = v.name.replace(/-/g, "_");
    const tree = join(work, "variants", v.name);
    const [verity, total] = (boot.markers[`objects.${key}`] ?? "0/0").split("/").map(Number) as [
      number,
      number,
    ];
    const out: TestOsVariant = {
      name: v.name,
      description: v.description,
      disk: join(work, "disks", `${v.name}.img`),
      tree,
      deployments: deploymentsOf(tree, versions).map((d) => ({
        ...d,
        version: d.commit === wrongDigestCommit ? 2 : d.version,
        image: boot.markers[`image.${key}.${d.commit}`] ?? "unreported",
      })),
      expect: v.expect,
      objects: { verity, total },
      tamper: tamper[v.name] ?? {},
    };
    if (v.stage) out.stage = v.stage;
    if (v.unreadable) out.unreadable = v.unreadable;
    return out;
  });

  // The good disk must be what the boot matrix assumes: every object and image with fs-verity, each
  // image's kernel-measured digest equal to its commit's signed digest.
  const good = variants.find((v) => v.name === "good") as TestOsVariant;
  if (good.objects.verity === 0 || good.objects.verity !== good.objects.total)
    throw new Error(
      `Cannot use the good disk: fs-verity on ${good.objects.verity}/${good.objects.total} objects, expected all`,
    );
  for (const b of builds) {
    const d = good.deployments.find((x) => x.commit === b.commit);
    if (d?.image !== `sha256:${b.digest}`)
      throw new Error(
        `Cannot use the good disk: build ${b.version}'s image measures ${d?.image}, expected sha256:${b.digest}`,
      );
  }

  const rel = (p: string) => relative(work, p);
  const manifest: TestOsManifest = {
    key,
    dir: ".",
    cached: false,
    kernelRelease: kernel.release,
    osname: OSNAME,
    ref: REF,
    label: LABEL,
    uuid: DISK_UUID,
    signedConf: SIGNED_CONF,
    repo: rel(repo),
    sysroot: rel(sysroot),
    strangerPub: rel(join(work, "keys/stranger.pub")),
    builds: builds.map((b) => ({ ...b, keyPub: rel(b.keyPub) })),
    variants: variants.map((v) => ({ ...v, disk: rel(v.disk), tree: rel(v.tree) })),
    provision: { log: rel(provisionLog), markers: boot.markers, timings: formatTimings(boot.timings) },
    timings: { ...timings, total: Math.round(performance.now() - t0) },
  };
  writeFileSync(join(work, "manifest.json"), `${JSON.stringify(manifest, null, 2)}\n`);
  writeFileSync(join(work, ".complete"), "");
  mkdirSync(root, { recursive: true });
  if (existsSync(join(dir, ".complete"))) {
    rmSync(work, { recursive: true, force: true }); // another process finished first
  } else {
    rmSync(dir, { recursive: true, force: true });
    renameSync(work, dir);
  }
  pruneBuilds(root, KEEP_BUILDS);
  const m = loadManifest(dir);
  return { ...m, cached: false };
}

if ((import.meta as { main?: boolean }).main) {
  const m = await buildTestOs((s) => console.error(s));
  console.error(`test OS ${m.cached ? "reused" : "built"}: ${JSON.stringify(m.timings)}`);
  console.log(m.dir);
}
