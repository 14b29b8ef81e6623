// The subset of GLib's GKeyFile that ostree's configuration files use (prepare-root.conf, the repo
// `config`): groups, keys, comments, and GLib's value rules — raw values (g_key_file_get_value),
// escape-decoded strings (g_key_file_get_string) and strict booleans (g_key_file_get_boolean: only
// `true`, `false`, `1`, `0`, case-sensitive). Pure: text in, values out; malformed input is a FormatError.

import { FormatError, q } from "../base/errors.ts";

/** Size cap: a configuration file larger than this is not a configuration file. */
export const MAX_KEYFILE_BYTES = 1 << 20;

/** GLib's g_ascii_isspace set: space, \t, \n, \v, \f, \r. */
export function isAsciiSpace(c: string | undefined): boolean {
  return c === " " || c === "\t" || c === "\n" || c === "\v" || c === "\f" || c === "\r";
}

/** Strips GLib ASCII whitespace from both ends (g_strstrip). */
export function asciiStrip(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && isAsciiSpace(s[a])) a++;
  while (b > a && isAsciiSpace(s[b - 1])) b--;
  return s.slice(a, b);
}

interface Entry {
  value: string;
  line: number;
}

const fatalUtf8 = new TextDecoder("utf-8", { fatal: true });

export class KeyFile {
  /** Groups in first-seen order; a group named twice is reopened and its keys merge (GLib). */
  private readonly groupMap = new Map<string, Map<string, Entry>>();

  constructor(readonly name: string) {}

  groups(): string[] {
    return [...this.groupMap.keys()];
  }

  hasGroup(group: string): boolean {
    return this.groupMap.has(group);
  }

  keys(group: string): string[] {
    return [...(this.groupMap.get(group)?.keys() ?? [])];
  }

  /** 1-based line of the key's (last) definition, for messages. */
  lineOf(group: string, key: string): number | undefined {
    return this.groupMap.get(group)?.get(key)?.line;
  }

  /**
   * The raw value as GLib stores it (g_key_file_get_value): leading whitespace removed by the parser,
   * trailing whitespace kept, no escape decoding. `undefined` when the group or the key is absent.
   */
  getValue(group: string, key: string): string | undefined {
    return this.groupMap.get(group)?.get(key)?.value;
  }

  /** The value with GLib's escapes decoded (g_key_file_get_string): \s \n \t \r \\. */
  getString(group: string, key: string): string | undefined {
    const raw = this.getValue(group, key);
    if (raw === undefined) return undefined;
    let out = "";
    for (let i = 0; i < raw.length; i++) {
      const c = raw[i];
      if (c !== "\\") {
        out += c;
        continue;
      }
      const e = raw[++i];
      if (e === undefined) {
        throw this.valueError(group, key, raw, "ends with an escape character", "a complete escape sequence");
      }
      const decoded = ESCAPES[e];
      if (decoded === undefined) {
        throw this.valueError(
          group,
          key,
          raw,
          `contains the invalid escape sequence "\\${e}"`,
          "\\s, \\n, \\t, \\r or \\\\",
        );
      }
      out += decoded;
    }
    return out;
  }

  /**
   * g_key_file_get_boolean: `true`/`1` and `false`/`0` only (case-sensitive), trailing whitespace
   * ignored. `undefined` when absent; anything else (`yes`, `TRUE`, empty) is a FormatError.
   */
  getBoolean(group: string, key: string): boolean | undefined {
    const raw = this.getValue(group, key);
    if (raw === undefined) return undefined;
    const v = asciiStrip(raw);
    if (v === "true" || v === "1") return true;
    if (v === "false" || v === "0") return false;
    throw this.valueError(group, key, raw, "is not a boolean", "true, false, 1 or 0");
  }

  /** For the parser only. */
  set(group: string, key: string, value: string, line: number): void {
    let g = this.groupMap.get(group);
    if (!g) {
      g = new Map();
      this.groupMap.set(group, g);
    }
    g.set(key, { value, line });
  }

  /** For the parser only: opens (or reopens) a group. */
  openGroup(group: string): void {
    if (!this.groupMap.has(group)) this.groupMap.set(group, new Map());
  }

  private valueError(group: string, key: string, raw: string, observed: string, expected: string) {
    const line = this.lineOf(group, key);
    return new FormatError(
      `Cannot parse ${q(this.name)}: [${group}] ${key} = ${q(raw)} (line ${line}) ${observed}, expected ${expected}`,
      { path: this.name, group, key, value: raw, line },
    );
  }
}

const ESCAPES: Record<string, string> = { s: " ", n: "\n", t: "\t", r: "\r", "\\": "\\" };

function isCntrl(c: string): boolean {
  const x = c.charCodeAt(0);
  return x < 0x20 || x === 0x7f;
}

/** g_key_file_is_group_name: non-empty, no '[', ']' or ASCII control characters. */
function isGroupName(name: string): boolean {
  if (name.length === 0) return false;
  for (const c of name) if (c === "[" || c === "]" || isCntrl(c)) return false;
  return true;
}

/** g_key_file_is_key_name: no '=', '[' or ']' except one trailing `[locale]` of [\p{L}\p{Nd}-_.@]. */
function isKeyName(key: string): boolean {
  const open = key.search(/[[\]=]/);
  const base = open < 0 ? key : key.slice(0, open);
  if (base.length === 0 || base.startsWith(" ") || base.endsWith(" ")) return false;
  if (open < 0) return true;
  return /^\[[\p{L}\p{Nd}\-_.@]*\]$/u.test(key.slice(open));
}

function lineError(name: string, lineNo: number, line: string, observed: string, expected: string) {
  return new FormatError(
    `Cannot parse ${q(name)}: line ${lineNo} ${q(line)} ${observed}, expected ${expected}`,
    {
      path: name,
      line: lineNo,
      text: line,
    },
  );
}

/**
 * Parses key-file data the way g_key_file_load_from_data (flags NONE) does. `name` is used in
 * messages. Bytes must be UTF-8 without NUL (ostree reads configs with glnx_fd_readall_utf8).
 */
export function parseKeyFile(data: Uint8Array | string, name: string): KeyFile {
  let text: string;
  if (typeof data === "string") {
    text = data;
  } else {
    if (data.length > MAX_KEYFILE_BYTES) {
      throw new FormatError(
        `Cannot parse ${q(name)}: ${data.length} bytes, expected at most ${MAX_KEYFILE_BYTES}`,
      );
    }
    try {
      text = fatalUtf8.decode(data);
    } catch (e) {
      throw new FormatError(
        `Cannot parse ${q(name)}: not valid UTF-8, expected UTF-8 text`,
        { path: name },
        { cause: e },
      );
    }
  }
  if (text.includes("\0")) {
    throw new FormatError(`Cannot parse ${q(name)}: contains a NUL byte, expected text`, { path: name });
  }

  const kf = new KeyFile(name);
  let group: string | undefined;
  let startGroup: string | undefined;
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i] as string;
    const last = i === lines.length - 1;
    if (last && line.length === 0) break;
    // GLib drops one '\r' only when a '\n' follows it (a final unterminated line keeps it).
    if (!last && line.endsWith("\r")) line = line.slice(0, -1);
    const lineNo = i + 1;

    let s = 0;
    while (s < line.length && isAsciiSpace(line[s])) s++;
    const rest = line.slice(s);

    if (rest.length === 0 || rest.startsWith("#")) continue;

    const close = rest.indexOf("]");
    if (rest.startsWith("[") && close > 0 && /^[ \t]*$/.test(rest.slice(close + 1))) {
      const g = rest.slice(1, close);
      if (!isGroupName(g)) {
        throw lineError(
          name,
          lineNo,
          line,
          `names the invalid group ${q(g)}`,
          "[name] without [, ] or control characters",
        );
      }
      kf.openGroup(g);
      group = g;
      startGroup ??= g;
      continue;
    }

    const eq = rest.indexOf("=");
    if (eq > 0) {
      if (group === undefined) {
        throw lineError(name, lineNo, line, "comes before any [group]", "a [group] line first");
      }
      let end = eq;
      while (end > 0 && isAsciiSpace(rest[end - 1])) end--;
      const key = rest.slice(0, end);
      if (!isKeyName(key)) {
        throw lineError(
          name,
          lineNo,
          line,
          `has the invalid key name ${q(key)}`,
          "a key without [, ] or = (or key[locale])",
        );
      }
      let v = eq + 1;
      while (v < rest.length && isAsciiSpace(rest[v])) v++;
      const value = rest.slice(v);
      if (group === startGroup && key === "Encoding" && value.toUpperCase() !== "UTF-8") {
        throw lineError(name, lineNo, line, `declares the encoding ${q(value)}`, "UTF-8");
      }
      kf.set(group, key, value, lineNo);
      continue;
    }

    throw lineError(
      name,
      lineNo,
      line,
      "is not a key-value pair, group, or comment",
      "[group], key=value or # comment",
    );
  }
  return kf;
}
