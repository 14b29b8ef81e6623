// Prints a composefs tree as `composefs-info dump` (libcomposefs 1.0.8 tools/composefs-info.c) does, byte
// for byte: one line per path in depth-first, bytewise-sorted order; hardlinks after their first path as
// `@` entries naming that path; C-locale escaping with per-field rules. Pure: takes a composefs tree
// (normally readErofs(image).root, i.e. the image as libcomposefs reads it back) and returns text.

import type { Inode } from "./tree.ts";

/** Escaping variants of composefs-info's print_escaped(). */
export const STANDARD = 0;
export const ESCAPE_EQUAL = 1;
export const ESCAPE_LONE_DASH = 2;

const HEX = "0123456789abcdef";

/**
 * `\\`, `\n`, `\r`, `\t` as themselves escaped; bytes outside isgraph() in the C locale (0x21..0x7e) as
 * `\xNN`; `=` too with ESCAPE_EQUAL; a field that is exactly `-` as `\x2d` with ESCAPE_LONE_DASH.
 */
export function escapeDumpField(b: Uint8Array, flags = STANDARD): string {
  if (flags & ESCAPE_LONE_DASH && b.length === 1 && b[0] === 0x2d) return "\\x2d";
  let s = "";
  for (const c of b) {
    if (c === 0x5c) s += "\\\\";
    else if (c === 0x0a) s += "\\n";
    else if (c === 0x0d) s += "\\r";
    else if (c === 0x09) s += "\\t";
    else if ((c === 0x3d && flags & ESCAPE_EQUAL) || c < 0x21 || c > 0x7e)
      s += `\\x${HEX[c >> 4]}${HEX[c & 15]}`;
    else s += String.fromCharCode(c);
  }
  return s;
}

function hexDigest(d: Uint8Array): string {
  let s = "";
  for (const c of d) s += HEX[c >> 4]! + HEX[c & 15]!;
  return s;
}

/** `path` is already escaped (escaping is per byte, and a path never is a lone "-"). */
function line(inode: Inode, path: string, hardlinkOf: string | undefined): string {
  const link = hardlinkOf !== undefined ? "@" : "";
  const payload =
    hardlinkOf ?? (inode.payload === undefined ? "-" : escapeDumpField(inode.payload, ESCAPE_LONE_DASH));
  let s =
    `${path === "" ? "/" : path} ${inode.size} ${link}${inode.mode.toString(8)} ${inode.nlink} ` +
    `${inode.uid} ${inode.gid} ${inode.rdev} ${inode.mtime.sec}.${inode.mtime.nsec} ${payload} ` +
    `${inode.content === undefined ? "-" : escapeDumpField(inode.content, ESCAPE_LONE_DASH)} ` +
    `${inode.digest === undefined ? "-" : hexDigest(inode.digest)}`;
  for (const x of inode.xattrs) {
    s += ` ${escapeDumpField(x.key, ESCAPE_EQUAL)}=${escapeDumpField(x.value, ESCAPE_EQUAL)}`;
  }
  return `${s}\n`;
}

/**
 * The `composefs-info dump` text of a tree. Entries print in their (sorted) order, depth-first; the
 * first path reached of an inode prints in full, every later one as `@MODE` naming that first path —
 * which is how libcomposefs treats hardlinks on read-back, whatever the `hardlink` flags say.
 */
export function dumpTree(root: Inode): string {
  const out: string[] = [];
  const firstPath = new Map<Inode, string>();
  // Explicit stack (children pushed in reverse) so deep trees cannot overflow the call stack; paths are
  // kept escaped, so each name is escaped once.
  const stack: { inode: Inode; path: string }[] = [{ inode: root, path: "" }];
  while (stack.length > 0) {
    const { inode, path } = stack.pop()!;
    const first = firstPath.get(inode);
    if (first !== undefined) {
      out.push(line(inode, path, first));
      continue;
    }
    firstPath.set(inode, path);
    out.push(line(inode, path, undefined));
    const children = inode.children;
    for (let i = children.length - 1; i >= 0; i--) {
      const e = children[i]!;
      stack.push({ inode: e.inode, path: `${path}/${escapeDumpField(e.name)}` });
    }
  }
  return out.join("");
}
