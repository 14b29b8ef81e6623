// Every on-disk constant of a composefs image, declared once: the composefs header at offset 0, the EROFS
// superblock at 1024, compact and extended inodes, the xattr body header and entries, dirents, chunk
// indexes, and libcomposefs's layout rules (block size, slots, inline limits). All EROFS fields are
// little-endian. Offsets are relative to the start of their structure. Shared by erofs/write.ts and
// erofs/read.ts (the reader may append exports here; existing ones never change). Pure constants.

// ---- Geometry ----
export const EROFS_BLKSIZ_BITS = 12;
export const EROFS_BLKSIZ = 1 << EROFS_BLKSIZ_BITS; // 4096
export const EROFS_ISLOTBITS = 5;
export const EROFS_SLOTSIZE = 1 << EROFS_ISLOTBITS; // 32: inodes start on slots; nid = offset / 32
/** libcomposefs never inlines a directory or file tail larger than half a block. */
export const EROFS_INLINE_TAIL_MAX = EROFS_BLKSIZ / 2;

// ---- composefs header (struct lcfs_erofs_header_s, 32 bytes at offset 0) ----
export const LCFS_EROFS_MAGIC = 0xd078629a;
/** The header layout version (not the composefs format version). */
export const LCFS_EROFS_VERSION = 1;
export const LCFS_EROFS_FLAGS_HAS_ACL = 1 << 0;
export const CFS_HEADER_SIZE = 32;
export const CFS_HEADER = {
  magic: 0, // u32le
  version: 4, // u32le, LCFS_EROFS_VERSION
  flags: 8, // u32le, LCFS_EROFS_FLAGS_*
  composefsVersion: 12, // u32le, format version 0 or 1
  // 16..32: unused, zero
} as const;
/** composefs format versions libcomposefs 1.0.8 can write (LCFS_VERSION_MAX = 1). */
export const LCFS_VERSION_MAX = 1;

// ---- EROFS superblock (struct erofs_super_block, 128 bytes at 1024) ----
export const EROFS_SUPER_OFFSET = 1024;
export const EROFS_SUPER_SIZE = 128;
export const EROFS_SUPER_MAGIC_V1 = 0xe0f5e1e2;
export const EROFS_FEATURE_COMPAT_SB_CHKSUM = 0x1;
export const EROFS_FEATURE_COMPAT_MTIME = 0x2;
export const EROFS_FEATURE_COMPAT_XATTR_FILTER = 0x4;
export const SUPER = {
  magic: 0, // u32le
  checksum: 4, // u32le crc32c (unused by composefs: 0)
  featureCompat: 8, // u32le
  blkszbits: 12, // u8
  sbExtslots: 13, // u8
  rootNid: 14, // u16le
  inos: 16, // u64le
  buildTime: 24, // u64le: mtime of every compact inode (seconds)
  buildTimeNsec: 32, // u32le
  blocks: 36, // u32le
  metaBlkaddr: 40, // u32le: block of nid 0
  xattrBlkaddr: 44, // u32le: block the shared xattr ids count from
  uuid: 48, // 16 bytes
  volumeName: 64, // 16 bytes
  featureIncompat: 80, // u32le
  availableComprAlgs: 84, // u16le
  extraDevices: 86, // u16le
  devtSlotoff: 88, // u16le
  dirblkbits: 90, // u8
  xattrPrefixCount: 91, // u8
  xattrPrefixStart: 92, // u32le
  packedNid: 96, // u64le
  xattrFilterReserved: 104, // u8
  // 105..128 reserved
} as const;

// ---- inodes ----
export const EROFS_I_VERSION_BIT = 0;
export const EROFS_I_VERSION_MASK = 0x1;
export const EROFS_I_DATALAYOUT_BIT = 1;
export const EROFS_I_DATALAYOUT_MASK = 0x7;
export const EROFS_INODE_LAYOUT_COMPACT = 0;
export const EROFS_INODE_LAYOUT_EXTENDED = 1;
export const EROFS_INODE_FLAT_PLAIN = 0;
export const EROFS_INODE_COMPRESSED_FULL = 1;
export const EROFS_INODE_FLAT_INLINE = 2;
export const EROFS_INODE_COMPRESSED_COMPACT = 3;
export const EROFS_INODE_CHUNK_BASED = 4;

/** struct erofs_inode_compact (32 bytes). */
export const INODE_COMPACT_SIZE = 32;
export const INODE_COMPACT = {
  format: 0, // u16le
  xattrIcount: 2, // u16le
  mode: 4, // u16le
  nlink: 6, // u16le
  size: 8, // u32le
  reserved: 12, // u32le
  u: 16, // u32le: raw_blkaddr | rdev | chunk info (u16 format + u16 reserved)
  ino: 20, // u32le
  uid: 24, // u16le
  gid: 26, // u16le
  reserved2: 28, // u32le
} as const;

/** struct erofs_inode_extended (64 bytes). */
export const INODE_EXTENDED_SIZE = 64;
export const INODE_EXTENDED = {
  format: 0, // u16le
  xattrIcount: 2, // u16le
  mode: 4, // u16le
  reserved: 6, // u16le
  size: 8, // u64le
  u: 16, // u32le
  ino: 20, // u32le
  uid: 24, // u32le
  gid: 28, // u32le
  mtime: 32, // u64le
  mtimeNsec: 40, // u32le
  nlink: 44, // u32le
  // 48..64 reserved
} as const;

// ---- chunk-based files ----
export const EROFS_CHUNK_FORMAT_BLKBITS_MASK = 0x001f;
export const EROFS_CHUNK_FORMAT_INDEXES = 0x0020;
/** A chunk map entry (u32le block address) without EROFS_CHUNK_FORMAT_INDEXES. */
export const EROFS_BLOCK_MAP_ENTRY_SIZE = 4;
/** EROFS_NULL_ADDR as u32: a hole; composefs payload files are all holes. */
export const EROFS_NULL_ADDR = 0xffffffff;
/** libcomposefs caps a payload file at 1024 chunks (LCFS_MAX_NONINLINE_CHUNKS): one block of map. */
export const LCFS_MAX_NONINLINE_CHUNKS = 1024;
/** In a chunk-based inode, the low 16 bits of i_u hold the chunk format (struct erofs_inode_chunk_info). */
export const EROFS_CHUNK_INFO_FORMAT_MASK = 0xffff;

// ---- xattrs ----
/** struct erofs_xattr_ibody_header (12 bytes), followed by u32le shared xattr ids. */
export const XATTR_IBODY_HEADER_SIZE = 12;
export const XATTR_IBODY_HEADER = {
  nameFilter: 0, // u32le: bit set = name absent
  sharedCount: 4, // u8
  // 5..12 reserved
} as const;
export const XATTR_SHARED_ID_SIZE = 4;
/** A shared xattr id counts 4-byte units from the start of block xattr_blkaddr. */
export const XATTR_SHARED_ID_UNIT = 4;
/** struct erofs_xattr_entry (4 bytes) + name suffix + value, padded to 4. */
export const XATTR_ENTRY_SIZE = 4;
export const XATTR_ENTRY = {
  nameLen: 0, // u8
  nameIndex: 1, // u8
  valueSize: 2, // u16le
} as const;
export const XATTR_ALIGN = 4;
export const EROFS_XATTR_INDEX_USER = 1;
export const EROFS_XATTR_INDEX_POSIX_ACL_ACCESS = 2;
export const EROFS_XATTR_INDEX_POSIX_ACL_DEFAULT = 3;
export const EROFS_XATTR_INDEX_TRUSTED = 4;
export const EROFS_XATTR_INDEX_LUSTRE = 5;
export const EROFS_XATTR_INDEX_SECURITY = 6;
/** Name prefixes by index, as the reader expands them. */
export const EROFS_XATTR_PREFIXES: readonly string[] = [
  "",
  "user.",
  "system.posix_acl_access",
  "system.posix_acl_default",
  "trusted.",
  "lustre.",
  "security.",
];
/** Prefixes the writer abbreviates, in the order libcomposefs tries them (first match wins). */
export const WRITER_XATTR_PREFIXES: readonly (readonly [string, number])[] = [
  ["user.", EROFS_XATTR_INDEX_USER],
  ["system.posix_acl_access", EROFS_XATTR_INDEX_POSIX_ACL_ACCESS],
  ["system.posix_acl_default", EROFS_XATTR_INDEX_POSIX_ACL_DEFAULT],
  ["trusted.", EROFS_XATTR_INDEX_TRUSTED],
  ["security.", EROFS_XATTR_INDEX_SECURITY],
];
/** An inode may reference at most this many shared xattrs (h_shared_count; 0x80 = long-prefix flag). */
export const EROFS_XATTR_LONG_PREFIX = 0x80;
export const EROFS_XATTR_FILTER_BITS = 32;
export const EROFS_XATTR_FILTER_SEED = 0x25bbe08f;
export const EROFS_XATTR_FILTER_DEFAULT = 0xffffffff;

/**
 * overlayfs's trusted.overlay.metacopy value (struct ovl_metacopy): a 4-byte header, then the digest.
 * libcomposefs writes an empty value for a file without a digest.
 */
export const OVL_METACOPY_HEADER_SIZE = 4;
export const OVL_METACOPY = {
  version: 0, // u8, 0
  len: 1, // u8: header + digest
  flags: 2, // u8, 0
  digestAlgo: 3, // u8: FS_VERITY_HASH_ALG_*
  // 4..: digest
} as const;
/** fs-verity hash algorithm number for SHA-256 (linux/fsverity.h). */
export const FS_VERITY_HASH_ALG_SHA256 = 1;

// ---- directories ----
/** struct erofs_dirent (12 bytes); names follow all dirents of a block, unterminated. */
export const DIRENT_SIZE = 12;
export const DIRENT = {
  nid: 0, // u64le
  nameoff: 8, // u16le
  fileType: 10, // u8
  reserved: 11, // u8
} as const;
export const EROFS_FT_UNKNOWN = 0;
export const EROFS_FT_REG_FILE = 1;
export const EROFS_FT_DIR = 2;
export const EROFS_FT_CHRDEV = 3;
export const EROFS_FT_BLKDEV = 4;
export const EROFS_FT_FIFO = 5;
export const EROFS_FT_SOCK = 6;
export const EROFS_FT_SYMLINK = 7;
export const EROFS_NAME_LEN = 255;
