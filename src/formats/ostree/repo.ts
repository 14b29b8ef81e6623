// Read-only access to an ostree repository through the injected FsRead: config mode, refs, commits,
// detached metadata, dirtree/dirmeta and content objects in bare, bare-user, bare-user-only and
// archive(-z2) modes, and a recursive tree listing in `ostree ls -R` order. Every object loaded by
// checksum is re-hashed and compared with its name before it is decoded (IntegrityError otherwise); sizes
// are capped before reading, and so is what a tree walk expands to (dirtrees can share subtrees, so a few
// objects can name billions of paths). Pure: no node:*, raw-deflate decompression is injected.

import { FormatError, IntegrityError, NotFoundError, q, UsageError } from "../../base/errors.ts";
import type { FsRead, Stat } from "../../base/fs.ts";
import { sha256 } from "../../base/hash.ts";
import { toHex, utf8 } from "../bytes.ts";
import { asciiStrip, parseKeyFile } from "../keyfile.ts";
import {
  type Commit,
  canonicalXattrs,
  commitmetaSignatures,
  contentChecksum,
  type Dirtree,
  decodeCommit,
  decodeCommitmeta,
  decodeDirmeta,
  decodeDirtree,
  decodeFilemeta,
  decodeZlibFileHeader,
  dirtreeEntryCount,
  type FileMeta,
  isChecksum,
  loosePath,
  type MetadataEntries,
  S_IFLNK,
  S_IFMT,
  splitLenPrefixed,
  validateCommit,
  validateDirmeta,
  validateDirtree,
  validateFileMode,
  type Xattr,
} from "./objects.ts";

export type RepoMode = "bare" | "bare-user" | "bare-user-only" | "archive";
export type InflateRaw = (compressed: Uint8Array, maxOutput: number) => Uint8Array;

export interface RepoLimits {
  /** ostree's OSTREE_MAX_METADATA_SIZE: commit, dirtree, dirmeta, commitmeta, file headers. */
  maxMetadataSize: number;
  /** Largest content object (uncompressed) read into memory. */
  maxContentSize: number;
  /** Deepest directory nesting walked (ostree's OSTREE_MAX_RECURSION is 256). */
  maxTreeDepth: number;
  /** Most paths one tree walk may produce, and one dirtree may list (MAX_TREE_ENTRIES). */
  maxTreeEntries: number;
  /** Most content bytes one tree walk may read into memory, each object once (MAX_TREE_CONTENT_BYTES). */
  maxTreeContentBytes: number;
}

/**
 * Most paths a tree walk (`ls -R`, the composefs tree) expands a commit to. A full desktop OS commit
 * lists a few hundred thousand; dirtrees can share subtrees, so a handful of objects could otherwise name
 * billions of paths. Checked on the measured size of the whole tree before anything is expanded.
 */
export const MAX_TREE_ENTRIES = 1_000_000;

/**
 * Most content-object bytes one tree walk reads into memory (to verify each object, and for the
 * composefs image to compute its fs-verity digest), each object counted once however often the tree
 * names it. An OS commit's content is a few GiB; the largest bootc images are a few tens of GiB.
 */
export const MAX_TREE_CONTENT_BYTES = 64 * 2 ** 30;

/**
 * Largest `.commitmeta` read. Detached metadata is not content-addressed and is read before the
 * signature is checked, so it is capped well below OSTREE_MAX_METADATA_SIZE: what ostree writes there
 * (signatures, 64 bytes each) is a few KiB.
 */
export const MAX_COMMITMETA_SIZE = 1 << 20;

export const DEFAULT_LIMITS: RepoLimits = {
  maxMetadataSize: 128 * 1024 * 1024,
  maxContentSize: 0x7fffffff,
  maxTreeDepth: 256,
  maxTreeEntries: MAX_TREE_ENTRIES,
  maxTreeContentBytes: MAX_TREE_CONTENT_BYTES,
};

/** Longest symlink target ostree reads from a bare-user object (PATH_MAX + 1). */
const MAX_SYMLINK_TARGET = 4097;
const BAREUSER_META_XATTR = "user.ostreemeta";
/** Largest ref file read: a checksum and a newline, with room for stray whitespace. */
const MAX_REF_FILE = 1024;

export interface OpenRepoOptions {
  inflateRaw: InflateRaw;
  limits?: Partial<RepoLimits>;
}

export type ObjectKind = "commit" | "commitmeta" | "dirtree" | "dirmeta" | "file";

export interface ContentObject {
  checksum: string;
  /** Where the object lives (for messages). */
  path: string;
  kind: "file" | "symlink";
  uid: number;
  gid: number;
  /** Full st_mode, type bits included. */
  mode: number;
  /** Canonical (sorted) extended attributes. */
  xattrs: Xattr[];
  /** Content size; 0 for symlinks. */
  size: number;
  symlinkTarget?: string;
  /** The regular file's content (already verified against the checksum). */
  content?: Uint8Array;
}

export interface TreeEntry {
  path: string;
  type: "dir" | "file" | "symlink";
  /** Full st_mode, type bits included. */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Content checksum (files and symlinks). */
  checksum?: string;
  /** Directories: the dirtree and dirmeta checksums. */
  dirtree?: string;
  dirmeta?: string;
  symlinkTarget?: string;
  xattrs: Xattr[];
}

/**
 * The `[core] mode` of a repository `config`, read as ostree reads it (a GKeyFile: formats/keyfile.ts,
 * so a line GLib refuses is a FormatError here too), surrounding whitespace ignored.
 */
export function parseRepoMode(config: Uint8Array | string, path: string): RepoMode {
  const raw = parseKeyFile(config, path).getString("core", "mode");
  const mode = raw === undefined ? undefined : asciiStrip(raw);
  switch (mode) {
    case "bare":
    case "bare-user":
    case "bare-user-only":
    case "archive":
      return mode;
    case "archive-z2":
      return "archive";
    default:
      throw new FormatError(
        `Cannot open repository ${q(path)}: [core] mode is ${mode === undefined ? "missing" : q(mode)}, expected bare, bare-user, bare-user-only, archive or archive-z2`,
        { path, mode },
      );
  }
}

/** ostree's ref grammar ([-._\w\d]+ fragments joined by "/"), minus "." and ".." fragments. */
const REF_RE = /^[-._A-Za-z0-9]+(\/[-._A-Za-z0-9]+)*$/;
const REMOTE_RE = /^[A-Za-z0-9_][-._A-Za-z0-9]*$/;

function validRef(ref: string): boolean {
  return REF_RE.test(ref) && !ref.split("/").some((f) => f === "." || f === "..");
}

/** A repository `config` is a few lines; it is read before anything is verified, so it is capped. */
const MAX_CONFIG_SIZE = 1 << 20;

/**
 * What one tree walk may still read into memory: content bytes in all, charged before each read. The
 * walkers keep what they learnt of an object by checksum, so a shared object is charged once.
 */
export class ContentBudget {
  private used = 0;
  constructor(readonly cap: number) {}

  charge(bytes: number, path: string): void {
    this.used += bytes;
    if (this.used > this.cap) {
      throw new FormatError(
        `Cannot read content object ${q(path)}: ${bytes} bytes brings the walk's content to ${this.used} bytes, expected at most ${this.cap}`,
        { path, cap: this.cap },
      );
    }
  }
}

export class OstreeRepo {
  readonly limits: RepoLimits;
  private readonly dirmetaCache = new Map<string, FileMeta>();
  private readonly treeSizes = new Map<string, number>();

  private constructor(
    readonly fs: FsRead,
    readonly path: string,
    readonly mode: RepoMode,
    private readonly inflateRaw: InflateRaw,
    limits: Partial<RepoLimits>,
  ) {
    this.limits = { ...DEFAULT_LIMITS, ...limits };
  }

  /** Opens the repository at `path` (reads `config`). NotFoundError when there is no repository. */
  static open(fs: FsRead, path: string, opts: OpenRepoOptions): OstreeRepo {
    const configPath = `${path}/config`;
    const config = fs.readFileIfExists(configPath, MAX_CONFIG_SIZE, "repository config");
    if (!config)
      throw new NotFoundError(
        `Cannot open repository ${q(path)}: no ${q(configPath)}, expected an ostree repository`,
        { path },
      );
    return new OstreeRepo(fs, path, parseRepoMode(config, configPath), opts.inflateRaw, opts.limits ?? {});
  }

  objectPath(checksum: string, kind: ObjectKind): string {
    if (!isChecksum(checksum)) {
      throw new FormatError(
        `Cannot name an object in ${q(this.path)}: checksum ${q(checksum)}, expected 64 lowercase hex digits`,
      );
    }
    const ext = kind === "file" ? (this.mode === "archive" ? "filez" : "file") : kind;
    return `${this.path}/objects/${loosePath(checksum, ext)}`;
  }

  // --- refs ---------------------------------------------------------------------------------------------

  /** A checksum, `ref` (refs/heads, then refs/remotes, then refs/mirrors) or `remote:ref` → commit checksum. */
  resolveRev(rev: string): string {
    if (isChecksum(rev)) return rev;
    const colon = rev.indexOf(":");
    const remote = colon >= 0 ? rev.slice(0, colon) : undefined;
    const ref = colon >= 0 ? rev.slice(colon + 1) : rev;
    if (!validRef(ref) || (remote !== undefined && !REMOTE_RE.test(remote))) {
      throw new UsageError(
        `Cannot resolve ${q(rev)} in ${q(this.path)}: not a checksum or ref name, expected [REMOTE:]REF or 64 hex digits`,
      );
    }
    const candidates =
      remote !== undefined
        ? [`refs/remotes/${remote}/${ref}`]
        : [`refs/heads/${ref}`, `refs/remotes/${ref}`, `refs/mirrors/${ref}`];
    for (const c of candidates) {
      const p = `${this.path}/${c}`;
      const st = this.fs.lstatIfExists(p);
      if (st?.kind !== "file") continue;
      return this.resolveRefFile(p);
    }
    throw new NotFoundError(
      `Cannot resolve ${q(rev)} in ${q(this.path)}: no such ref, expected one of ${candidates.join(", ")}`,
      { rev },
    );
  }

  /** All refs: `ref` for refs/heads, `remote:ref` for refs/remotes, sorted. */
  listRefs(): Array<{ name: string; checksum: string }> {
    const out: Array<{ name: string; checksum: string }> = [];
    const walk = (dir: string, prefix: string, depth: number) => {
      if (depth > 64) return;
      const st = this.fs.lstatIfExists(dir);
      if (st?.kind !== "dir") return;
      for (const name of this.fs.readdir(dir).sort()) {
        const p = `${dir}/${name}`;
        const s = this.fs.lstat(p);
        if (s.kind === "dir") walk(p, `${prefix}${name}/`, depth + 1);
        else if (s.kind === "file") out.push({ name: `${prefix}${name}`, checksum: this.resolveRefFile(p) });
      }
    };
    walk(`${this.path}/refs/heads`, "", 0);
    const remotesDir = `${this.path}/refs/remotes`;
    const rs = this.fs.lstatIfExists(remotesDir);
    if (rs?.kind === "dir") {
      for (const remote of this.fs.readdir(remotesDir).sort())
        walk(`${remotesDir}/${remote}`, `${remote}:`, 0);
    }
    return out;
  }

  /** A ref file's checksum. */
  private resolveRefFile(p: string): string {
    const text = utf8.decode(this.fs.readFile(p, MAX_REF_FILE, "ref")).trim();
    if (!isChecksum(text))
      throw new FormatError(
        `Cannot read ref ${q(p)}: content ${q(text.slice(0, 80))}, expected a 64-digit checksum`,
        { path: p },
      );
    return text;
  }

  // --- metadata objects ------------------------------------------------------------------------------------

  private verify(path: string, expected: string, actual: Uint8Array): void {
    const hex = toHex(actual);
    if (hex !== expected) {
      throw new IntegrityError(
        `Cannot verify object ${q(path)}: content hashes to ${hex}, expected ${expected}`,
        { path, expected, actual: hex },
      );
    }
  }

  /** Reads a metadata object's bytes (at most `cap`) and checks they hash to `checksum`. */
  readMetadataObject(
    checksum: string,
    kind: "commit" | "dirtree" | "dirmeta",
    cap = this.limits.maxMetadataSize,
  ): Uint8Array {
    const path = this.objectPath(checksum, kind);
    const bytes = this.fs.readFileIfExists(path, Math.min(cap, this.limits.maxMetadataSize), kind);
    if (!bytes)
      throw new NotFoundError(
        `Cannot read ${kind} ${q(path)}: no such object, expected it in the repository`,
        { path, checksum },
      );
    this.verify(path, checksum, sha256(bytes));
    return bytes;
  }

  /** The verified commit: its exact bytes (what signatures cover) and decoded fields. */
  readCommit(checksum: string): { bytes: Uint8Array; commit: Commit; path: string } {
    const bytes = this.readMetadataObject(checksum, "commit");
    const path = this.objectPath(checksum, "commit");
    const commit = decodeCommit(bytes);
    validateCommit(commit, `commit ${q(path)}`);
    return { bytes, commit, path };
  }

  /**
   * Detached metadata (`.commitmeta`, at most MAX_COMMITMETA_SIZE), every entry decoded, or undefined
   * when the commit has none. Not content-addressed: for the tools that show or rewrite all of it; a
   * signature check wants readCommitmetaSignatures.
   */
  readCommitmeta(
    checksum: string,
  ): { bytes: Uint8Array; entries: MetadataEntries; path: string } | undefined {
    const path = this.objectPath(checksum, "commitmeta");
    const bytes = this.fs.readFileIfExists(path, MAX_COMMITMETA_SIZE, "detached metadata");
    return bytes ? { bytes, entries: decodeCommitmeta(bytes), path } : undefined;
  }

  /**
   * The `ostree.sign.ed25519` signatures of the detached metadata (at most MAX_COMMITMETA_SIZE), found
   * as g_variant_lookup_value() finds them without decoding any other entry; [] when the key is absent
   * or of another type, undefined when the commit has no `.commitmeta`.
   */
  readCommitmetaSignatures(
    checksum: string,
  ): { bytes: Uint8Array; signatures: Uint8Array[]; path: string } | undefined {
    const path = this.objectPath(checksum, "commitmeta");
    const bytes = this.fs.readFileIfExists(path, MAX_COMMITMETA_SIZE, "detached metadata");
    return bytes ? { bytes, signatures: commitmetaSignatures(bytes), path } : undefined;
  }

  /** A verified dirtree; one whose framing lists more than maxTreeEntries is refused before decoding. */
  readDirtree(checksum: string): Dirtree {
    const bytes = this.readMetadataObject(checksum, "dirtree");
    const path = this.objectPath(checksum, "dirtree");
    const n = dirtreeEntryCount(bytes);
    if (n > this.limits.maxTreeEntries) {
      throw new FormatError(
        `Cannot read dirtree ${q(path)}: ${n} entries, expected at most ${this.limits.maxTreeEntries}`,
        { path, entries: n, cap: this.limits.maxTreeEntries },
      );
    }
    const t = decodeDirtree(bytes);
    validateDirtree(t, `dirtree ${q(path)}`);
    return t;
  }

  /**
   * How many paths the root dirtree `dirtree` expands to below it, recursively, saturating at
   * maxTreeEntries + 1. Each dirtree is read once per repository however often the tree names it, so a
   * walk measures shared subtrees before it expands them. `action` is the "Cannot <action>" of a message.
   */
  treeEntries(dirtree: string, action = "list tree"): number {
    return this.measure(dirtree, "", 1, action);
  }

  private measure(dirtree: string, path: string, depth: number, action: string): number {
    const hit = this.treeSizes.get(dirtree);
    if (hit !== undefined) return hit;
    const max = this.limits.maxTreeDepth;
    if (depth > max) {
      throw new FormatError(
        `Cannot ${action} at ${q(path)}: deeper than ${max} levels, expected at most ${max}`,
      );
    }
    const t = this.readDirtree(dirtree);
    const cap = this.limits.maxTreeEntries + 1;
    let entries = Math.min(cap, t.files.length + t.dirs.length);
    for (const d of t.dirs) {
      entries = Math.min(
        cap,
        entries + this.measure(toHex(d.dirtree), `${path}/${d.name}`, depth + 1, action),
      );
    }
    this.treeSizes.set(dirtree, entries);
    return entries;
  }

  readDirmeta(checksum: string): FileMeta {
    const hit = this.dirmetaCache.get(checksum);
    if (hit) return hit;
    const m = decodeDirmeta(this.readMetadataObject(checksum, "dirmeta"));
    validateDirmeta(m, `dirmeta ${q(this.objectPath(checksum, "dirmeta"))}`);
    this.dirmetaCache.set(checksum, m);
    return m;
  }

  // --- content objects -------------------------------------------------------------------------------------

  /**
   * A content object, decoded for this repository's mode and verified against its checksum. `budget`,
   * when given, is charged the bytes read into memory before they are read.
   */
  readContent(checksum: string, budget?: ContentBudget): ContentObject {
    const path = this.objectPath(checksum, "file");
    const st = this.fs.lstatIfExists(path);
    if (!st)
      throw new NotFoundError(
        `Cannot read content object ${q(path)}: no such object, expected it in the repository`,
        { path, checksum },
      );
    // the file as it is read (an archive object's compressed bytes; its content is charged as inflated)
    if (st.kind === "file") budget?.charge(st.size, path);
    const obj =
      this.mode === "archive"
        ? this.loadArchive(path, st, budget)
        : this.mode === "bare-user"
          ? this.loadBareUser(path, st)
          : this.loadBare(path, st);
    const full: ContentObject = { checksum, path, ...obj };
    const actual = contentChecksum(
      {
        uid: full.uid,
        gid: full.gid,
        mode: full.mode,
        xattrs: full.xattrs,
        symlinkTarget: full.symlinkTarget ?? "",
      },
      full.content ?? new Uint8Array(0),
    );
    this.verify(path, checksum, actual);
    return full;
  }

  private loadBare(path: string, st: Stat): Omit<ContentObject, "checksum" | "path"> {
    const userOnly = this.mode === "bare-user-only";
    const xattrs = userOnly ? [] : this.diskXattrs(path);
    const own = userOnly ? { uid: 0, gid: 0 } : { uid: st.uid, gid: st.gid };
    if (st.kind === "symlink") {
      return {
        kind: "symlink",
        ...own,
        mode: st.mode,
        xattrs,
        size: 0,
        symlinkTarget: this.fs.readlink(path),
      };
    }
    if (st.kind !== "file")
      throw new FormatError(
        `Cannot read content object ${q(path)}: a ${st.kind}, expected a regular file or symlink`,
        { path },
      );
    const content = this.readContentBytes(path);
    return { kind: "file", ...own, mode: st.mode, xattrs, size: content.length, content };
  }

  private loadBareUser(path: string, st: Stat): Omit<ContentObject, "checksum" | "path"> {
    if (st.kind !== "file")
      throw new FormatError(
        `Cannot read content object ${q(path)}: a ${st.kind}, expected a regular file (bare-user)`,
        { path },
      );
    const raw = this.fs.lgetxattr(path, BAREUSER_META_XATTR);
    if (!raw)
      throw new FormatError(
        `Cannot read content object ${q(path)}: no ${BAREUSER_META_XATTR} xattr, expected bare-user metadata`,
        { path },
      );
    if (raw.length > this.limits.maxMetadataSize)
      throw new FormatError(
        `Cannot read content object ${q(path)}: ${BAREUSER_META_XATTR} is ${raw.length} bytes, expected at most ${this.limits.maxMetadataSize}`,
      );
    const meta = decodeFilemeta(raw);
    validateFileMode(meta.mode, `content object ${q(path)}`);
    const xattrs = canonicalXattrs(meta.xattrs);
    if ((meta.mode & S_IFMT) === S_IFLNK) {
      const b = this.fs.readFile(path, MAX_SYMLINK_TARGET, "symlink content object");
      const nul = b.indexOf(0);
      const target = utf8.decode(nul >= 0 ? b.subarray(0, nul) : b);
      return {
        kind: "symlink",
        uid: meta.uid,
        gid: meta.gid,
        mode: meta.mode,
        xattrs,
        size: 0,
        symlinkTarget: target,
      };
    }
    const content = this.readContentBytes(path);
    return {
      kind: "file",
      uid: meta.uid,
      gid: meta.gid,
      mode: meta.mode,
      xattrs,
      size: content.length,
      content,
    };
  }

  private loadArchive(
    path: string,
    st: Stat,
    budget?: ContentBudget,
  ): Omit<ContentObject, "checksum" | "path"> {
    const cap = this.limits.maxContentSize + this.limits.maxMetadataSize;
    if (st.kind !== "file")
      throw new FormatError(`Cannot read content object ${q(path)}: a ${st.kind}, expected a regular file`, {
        path,
      });
    const bytes = this.fs.readFile(path, cap, "content object");
    const { header, rest } = splitLenPrefixed(bytes, `archive object ${q(path)}`);
    const h = decodeZlibFileHeader(header);
    if (h.rdev !== 0)
      throw new FormatError(`Cannot read archive object ${q(path)}: rdev ${h.rdev}, expected 0`, { path });
    validateFileMode(h.mode, `archive object ${q(path)}`);
    const xattrs = canonicalXattrs(h.xattrs);
    if ((h.mode & S_IFMT) === S_IFLNK) {
      return {
        kind: "symlink",
        uid: h.uid,
        gid: h.gid,
        mode: h.mode,
        xattrs,
        size: 0,
        symlinkTarget: h.symlinkTarget,
      };
    }
    if (h.size > BigInt(this.limits.maxContentSize)) {
      throw new FormatError(
        `Cannot read archive object ${q(path)}: declared size ${h.size}, expected at most ${this.limits.maxContentSize}`,
        { path },
      );
    }
    const size = Number(h.size);
    budget?.charge(size, path);
    const content = this.inflateRaw(rest, size);
    if (content.length !== size) {
      throw new FormatError(
        `Cannot read archive object ${q(path)}: content inflates to ${content.length} bytes, expected ${size} from its header`,
        { path },
      );
    }
    return { kind: "file", uid: h.uid, gid: h.gid, mode: h.mode, xattrs, size, content };
  }

  private readContentBytes(path: string): Uint8Array {
    return this.fs.readFile(path, this.limits.maxContentSize, "content object");
  }

  /** All xattrs of a bare object, sorted, without zero-length values (libglnx get_xattrs_impl). */
  private diskXattrs(path: string): Xattr[] {
    const out: Xattr[] = [];
    for (const name of this.fs.llistxattr(path)) {
      const value = this.fs.lgetxattr(path, name);
      if (!value || value.length === 0) continue;
      const nb = utf8.encode(name);
      const withNul = new Uint8Array(nb.length + 1);
      withNul.set(nb);
      out.push({ name: withNul, value });
    }
    return canonicalXattrs(out);
  }

  // --- trees -----------------------------------------------------------------------------------------------

  /**
   * Every path of a commit's tree, verified, in `ostree ls -R` order (per directory: files, then dirs,
   * each directory followed by its contents). `recursive: false` lists the root and its children only.
   * The whole tree is measured first (treeEntries) and refused past maxTreeEntries before any path is
   * listed; each content object is read and verified once, however often the tree names it.
   */
  listTree(commitChecksum: string, opts: { recursive?: boolean } = {}): TreeEntry[] {
    const { commit } = this.readCommit(commitChecksum);
    const rootTree = toHex(commit.rootDirtree);
    const rootMeta = toHex(commit.rootDirmeta);
    const recursive = opts.recursive ?? true;
    if (recursive) refuseLargeTree(this, rootTree, "list tree");
    const out: TreeEntry[] = [this.dirEntry("/", rootTree, rootMeta)];
    const w: ListWalk = {
      out,
      recursive,
      files: new Map(),
      budget: new ContentBudget(this.limits.maxTreeContentBytes),
    };
    this.walk(w, rootTree, "", 1);
    return out;
  }

  private dirEntry(path: string, dirtree: string, dirmeta: string): TreeEntry {
    const m = this.readDirmeta(dirmeta);
    return {
      path,
      type: "dir",
      mode: m.mode,
      uid: m.uid,
      gid: m.gid,
      size: 0,
      dirtree,
      dirmeta,
      xattrs: m.xattrs,
    };
  }

  private fileEntry(w: ListWalk, checksum: string): Omit<TreeEntry, "path"> {
    const hit = w.files.get(checksum);
    if (hit) return hit;
    const c = this.readContent(checksum, w.budget);
    const e: Omit<TreeEntry, "path"> = {
      type: c.kind,
      mode: c.mode,
      uid: c.uid,
      gid: c.gid,
      size: c.size,
      checksum: c.checksum,
      xattrs: c.xattrs,
    };
    if (c.symlinkTarget !== undefined) e.symlinkTarget = c.symlinkTarget;
    w.files.set(checksum, e);
    return e;
  }

  private walk(w: ListWalk, dirtree: string, prefix: string, depth: number): void {
    if (depth > this.limits.maxTreeDepth) {
      throw new FormatError(
        `Cannot list tree at ${q(prefix)}: deeper than ${this.limits.maxTreeDepth} levels, expected at most ${this.limits.maxTreeDepth}`,
      );
    }
    const t = this.readDirtree(dirtree);
    const room = () => {
      if (w.out.length >= this.limits.maxTreeEntries) {
        throw new FormatError(
          `Cannot list tree: more than ${this.limits.maxTreeEntries} entries, expected at most ${this.limits.maxTreeEntries}`,
        );
      }
    };
    for (const f of t.files) {
      room();
      w.out.push({ path: `${prefix}/${f.name}`, ...this.fileEntry(w, toHex(f.checksum)) });
    }
    for (const d of t.dirs) {
      room();
      const path = `${prefix}/${d.name}`;
      const tree = toHex(d.dirtree);
      w.out.push(this.dirEntry(path, tree, toHex(d.dirmeta)));
      if (w.recursive) this.walk(w, tree, path, depth + 1);
    }
  }
}

interface ListWalk {
  out: TreeEntry[];
  recursive: boolean;
  /** Content objects already read, by checksum (an entry without its path). */
  files: Map<string, Omit<TreeEntry, "path">>;
  budget: ContentBudget;
}

/**
 * Refuses, before anything is expanded, a tree whose root dirtree expands to more than maxTreeEntries
 * paths (the root itself counted): `action` is the message's "Cannot <action>".
 */
export function refuseLargeTree(
  repo: Pick<OstreeRepo, "treeEntries" | "limits">,
  rootDirtree: string,
  action: string,
): void {
  const cap = repo.limits.maxTreeEntries;
  if (1 + repo.treeEntries(rootDirtree, action) > cap) {
    throw new FormatError(`Cannot ${action} at "/": more than ${cap} entries, expected at most ${cap}`, {
      cap,
    });
  }
}
