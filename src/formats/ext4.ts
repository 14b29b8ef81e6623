// The part of an ext2/3/4 superblock (struct ext4_super_block, fs/ext4/ext4.h) the PID-1 init reads to
// find `root=LABEL=…` / `root=UUID=…` without udev: the magic, the UUID and the volume label, declared
// once with their offsets, and their decoder. Little-endian, like every ext4 field. Pure: bytes in,
// values out.

import { Reader, toHex, utf8 } from "./bytes.ts";

/** The superblock is 1024 bytes at byte 1024 of the device, whatever the block size. */
export const EXT4_SUPER_OFFSET = 1024;
export const EXT4_SUPER_SIZE = 1024;
/** EXT4_SUPER_MAGIC, in s_magic. */
export const EXT4_SUPER_MAGIC = 0xef53;
/** Field offsets within the superblock. */
export const EXT4_SUPER = {
  magic: 0x38, // s_magic, u16le
  uuid: 0x68, // s_uuid, 16 bytes
  volumeName: 0x78, // s_volume_name, 16 bytes, NUL-padded (no NUL when all 16 are used)
} as const;
export const EXT4_UUID_SIZE = 16;
export const EXT4_LABEL_SIZE = 16;

/**
 * The label and UUID (8-4-4-4-12, lowercase) of an ext2/3/4 superblock (`bytes` = the EXT4_SUPER_SIZE
 * bytes at EXT4_SUPER_OFFSET); `undefined` for anything else (another file system, a short read).
 */
export function parseExt4Superblock(bytes: Uint8Array): { label: string; uuid: string } | undefined {
  if (bytes.length < EXT4_SUPER_SIZE) return undefined;
  const r = new Reader(bytes);
  if (r.seek(EXT4_SUPER.magic, "s_magic").u16le("s_magic") !== EXT4_SUPER_MAGIC) return undefined;
  const u = toHex(bytes.subarray(EXT4_SUPER.uuid, EXT4_SUPER.uuid + EXT4_UUID_SIZE));
  const uuid = `${u.slice(0, 8)}-${u.slice(8, 12)}-${u.slice(12, 16)}-${u.slice(16, 20)}-${u.slice(20)}`;
  const raw = bytes.subarray(EXT4_SUPER.volumeName, EXT4_SUPER.volumeName + EXT4_LABEL_SIZE);
  const nul = raw.indexOf(0);
  return { label: utf8.decode(nul < 0 ? raw : raw.subarray(0, nul)), uuid };
}
