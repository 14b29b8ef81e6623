// `sealroot show --repo DIR (--commit SHA | --ref REF) [--json]`: a commit's fields, metadata, detached
// metadata keys and composefs digest, read through the verifying repository reader. Also holds the
// repository/commit option handling that `ls` shares and the GVariant → JSON mapping.

import type { Argv } from "yargs";
import { UsageError } from "../base/errors.ts";
import { toHex } from "../formats/bytes.ts";
import { type GVariantValue, parseType, print, Variant } from "../formats/gvariant.ts";
import { commitContentChecksum, composefsDigest, ed25519Signatures } from "../formats/ostree/objects.ts";
import { OstreeRepo } from "../formats/ostree/repo.ts";
import { inflateRaw } from "../sys/zlib.ts";
import type { CliContext, CommandModule } from "./context.ts";

export interface RepoArgs {
  repo: string;
  commit?: string | undefined;
  ref?: string | undefined;
}

/** Adds `--repo`, `--commit`, `--ref` (exactly one of the last two). */
export function repoOptions<T>(y: Argv<T>) {
  return y
    .option("repo", { type: "string", demandOption: true, describe: "ostree repository directory" })
    .option("commit", { type: "string", describe: "commit checksum" })
    .option("ref", { type: "string", describe: "ref, or REMOTE:REF" })
    .conflicts("commit", "ref")
    .check((a) => {
      if (a.commit === undefined && a.ref === undefined) throw new Error("Give --commit or --ref");
      return true;
    });
}

export function openRepoAndCommit(ctx: CliContext, a: RepoArgs): { repo: OstreeRepo; checksum: string } {
  const repo = OstreeRepo.open(ctx.fs, a.repo, { inflateRaw });
  const rev = a.commit ?? a.ref;
  if (rev === undefined)
    throw new UsageError("Cannot choose a commit: neither --commit nor --ref given, expected one");
  if (a.commit !== undefined && !/^[0-9a-f]{64}$/.test(a.commit)) {
    throw new UsageError(
      `Cannot use --commit ${JSON.stringify(a.commit)}: not a checksum, expected 64 lowercase hex digits`,
    );
  }
  return { repo, checksum: repo.resolveRev(rev) };
}

/** A GVariant value as JSON: bytes → hex, 64-bit → number when exact else string, variants → {type, value}. */
export function jsonValue(v: GVariantValue): unknown {
  if (v instanceof Uint8Array) return toHex(v);
  if (v instanceof Variant) return { type: v.type, value: jsonValue(v.value) };
  if (typeof v === "bigint")
    return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= -BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(v)
      : v.toString();
  if (Array.isArray(v)) return v.map(jsonValue);
  return v;
}

/** ostree's date line: UTC, `YYYY-MM-DD HH:MM:SS +0000`. */
export function formatDate(ts: bigint): string {
  const ms = Number(ts) * 1000;
  if (!Number.isFinite(ms) || Math.abs(ms) > 8.64e15) return `@${ts}`;
  const iso = new Date(ms).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)} +0000`;
}

export function showCommit(repo: OstreeRepo, checksum: string) {
  const { commit, bytes } = repo.readCommit(checksum);
  const detached = repo.readCommitmeta(checksum);
  const digest = composefsDigest(commit);
  // First entry per key wins (g_variant_lookup_value); fromEntries keeps a "__proto__" key an own property.
  const seen = new Set<string>();
  const metadata: Record<string, { type: string; value: unknown; text: string }> = Object.fromEntries(
    commit.metadata
      .filter(([k]) => !seen.has(k) && seen.add(k))
      .map(([k, v]) => [
        k,
        { type: v.type, value: jsonValue(v.value), text: print(parseType(v.type), v.value, true) },
      ]),
  );
  return {
    checksum,
    size: bytes.length,
    parent: commit.parent.length ? toHex(commit.parent) : null,
    subject: commit.subject,
    body: commit.body,
    timestamp: jsonValue(commit.timestamp),
    date: formatDate(commit.timestamp),
    rootDirtree: toHex(commit.rootDirtree),
    rootDirmeta: toHex(commit.rootDirmeta),
    contentChecksum: toHex(commitContentChecksum(commit)),
    metadataKeys: [...new Set(commit.metadata.map(([k]) => k))].sort(),
    metadata,
    detachedMetadataKeys: detached ? [...new Set(detached.entries.map(([k]) => k))].sort() : null,
    ed25519Signatures: detached ? ed25519Signatures(detached.entries).map(toHex) : [],
    composefsDigestV0: digest ? toHex(digest) : null,
  };
}

export const showCommand: CommandModule = (y, ctx, setExit) =>
  y.command(
    "show",
    "Show an ostree commit: fields, metadata, detached metadata keys, composefs digest",
    (b) => repoOptions(b).option("json", { type: "boolean", default: false, describe: "print JSON" }),
    (a) => {
      const { repo, checksum } = openRepoAndCommit(ctx, a);
      const s = showCommit(repo, checksum);
      if (a.json) {
        ctx.out(`${JSON.stringify(s, null, 2)}\n`);
      } else {
        let t = `commit ${s.checksum}\n`;
        if (s.parent) t += `Parent:  ${s.parent}\n`;
        t += `ContentChecksum:  ${s.contentChecksum}\n`;
        t += `Date:  ${s.date}\n`;
        const version = Object.hasOwn(s.metadata, "version") ? s.metadata.version?.value : undefined;
        if (typeof version === "string") t += `Version: ${version}\n`;
        t += `\n    ${s.subject}\n\n`;
        if (s.body) t += `${s.body.replace(/^/gm, "    ")}\n\n`;
        if (s.composefsDigestV0) t += `ComposefsDigest:  ${s.composefsDigestV0}\n`;
        ctx.out(t);
      }
      setExit(0);
    },
  );
