//! Recognising what a user hands to import: tarball (and its compression), qcow2, or a raw
//! disk; reading MBR and GPT partition tables; and recognising the Linux filesystems a root
//! may live on (ext2/3/4, xfs, btrfs) from their superblocks, including whether the file is
//! too short to hold the whole filesystem (truncated). Pure byte parsing plus positioned reads.

use std::fs::File;
use std::os::unix::fs::FileExt;

/// Compression of a tarball, as recognised from its magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
    Xz,
    Bzip2,
}

/// What a file to import is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    /// A tar archive, possibly compressed (whether a compressed stream really holds a tar is
    /// only known once it is read).
    Tar(Compression),
    /// A qcow2 disk image.
    Qcow2,
    /// A raw disk: an MBR or GPT partition table, or a bare filesystem.
    Raw,
    /// None of the above.
    Unknown,
}

/// How many bytes [`detect_format`] wants to see: enough for a btrfs superblock at 64 KiB.
pub const DETECT_BYTES: usize = 0x10000 + 0x1000;

/// Recognises a file from its first bytes (`head`, up to [`DETECT_BYTES`]) and its length.
pub fn detect_format(head: &[u8], len: u64) -> ImageFormat {
    let starts = |magic: &[u8]| head.starts_with(magic);
    if starts(b"QFI\xfb") {
        return ImageFormat::Qcow2;
    }
    if starts(&[0x1f, 0x8b]) {
        return ImageFormat::Tar(Compression::Gzip);
    }
    if starts(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return ImageFormat::Tar(Compression::Zstd);
    }
    if starts(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        return ImageFormat::Tar(Compression::Xz);
    }
    if starts(b"BZh") && head.get(3).is_some_and(|b| (b'1'..=b'9').contains(b)) {
        return ImageFormat::Tar(Compression::Bzip2);
    }
    if head.get(257..262) == Some(b"ustar") {
        return ImageFormat::Tar(Compression::None);
    }
    if parse_mbr(head).is_some() || head.get(512..520) == Some(b"EFI PART") {
        return ImageFormat::Raw;
    }
    if filesystem(head).is_some() {
        return ImageFormat::Raw;
    }
    // An empty tar archive is nothing but zero blocks (GNU tar writes 10 KiB of them). A
    // bare ext4 image also starts with a zero sector but was recognised above.
    if len >= 1024 && len & 511 == 0 && len <= 1 << 20 && head.iter().all(|&b| b == 0) {
        return ImageFormat::Tar(Compression::None);
    }
    ImageFormat::Unknown
}

/// A partition: where it is in the disk, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    /// 1-based, as `sda1`, `sda2`, … (logical MBR partitions start at 5).
    pub number: u32,
    pub start: u64,
    pub size: u64,
}

const SECTOR: u64 = 512;

fn u16le(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn u32le(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap_or([0; 4]))
}
fn u64le(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap_or([0; 8]))
}
fn u32be(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap_or([0; 4]))
}
fn u64be(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().unwrap_or([0; 8]))
}

/// One MBR entry: (type, start LBA, sectors).
type MbrEntry = (u8, u64, u64);

/// The four primary entries of an MBR, if `sector0` holds a plausible one (boot signature and
/// only 0x00/0x80 status bytes, so random data is rarely mistaken for a partition table).
fn parse_mbr(sector0: &[u8]) -> Option<[MbrEntry; 4]> {
    if sector0.len() < 512 || sector0[510] != 0x55 || sector0[511] != 0xaa {
        return None;
    }
    let mut entries = [(0u8, 0u64, 0u64); 4];
    let mut any = false;
    for (i, e) in entries.iter_mut().enumerate() {
        let at = 446 + 16 * i;
        let status = sector0[at];
        if status != 0x00 && status != 0x80 {
            return None;
        }
        let kind = sector0[at + 4];
        *e = (
            kind,
            u64::from(u32le(sector0, at + 8)),
            u64::from(u32le(sector0, at + 12)),
        );
        any |= kind != 0;
    }
    // A bare FAT filesystem also ends its first sector with 55 aa; a partition table has at
    // least one entry.
    any.then_some(entries)
}

/// Reads `len` bytes at `offset`, or fewer at the end of the file.
pub(crate) fn read_at(file: &File, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let mut done = 0;
    while done < len {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(done);
    Ok(buf)
}

/// The partitions of a raw disk, or `None` if it has no partition table (a bare filesystem).
/// Handles GPT (including a protective MBR) and MBR with extended/logical partitions.
pub(crate) fn partitions(file: &File) -> std::io::Result<Option<Vec<Partition>>> {
    let head = read_at(file, 0, 2 * SECTOR as usize)?;
    if head.get(512..520) == Some(b"EFI PART") {
        return gpt(file, &head[512..]).map(Some);
    }
    let Some(entries) = parse_mbr(&head) else {
        return Ok(None);
    };
    if entries.iter().any(|e| e.0 == 0xee) {
        // Protective MBR without a readable GPT header: nothing usable.
        return Ok(Some(Vec::new()));
    }
    let mut parts = Vec::new();
    for (i, &(kind, start, sectors)) in entries.iter().enumerate() {
        match kind {
            0 => {}
            0x05 | 0x0f | 0x85 => logical(file, start, &mut parts)?,
            _ => parts.push(Partition {
                number: i as u32 + 1,
                start: start * SECTOR,
                size: sectors * SECTOR,
            }),
        }
    }
    Ok(Some(parts))
}

/// Walks the chain of extended boot records of an extended partition starting at `ext_lba`.
fn logical(file: &File, ext_lba: u64, parts: &mut Vec<Partition>) -> std::io::Result<()> {
    let mut ebr_lba = ext_lba;
    let mut number = 5;
    // A malicious chain could loop; real disks have far fewer logical partitions.
    for _ in 0..128 {
        let sector = read_at(file, ebr_lba * SECTOR, SECTOR as usize)?;
        let Some(entries) = parse_mbr(&sector) else {
            break;
        };
        let (kind, rel_start, sectors) = entries[0];
        if kind != 0 && sectors != 0 {
            parts.push(Partition {
                number,
                start: (ebr_lba + rel_start) * SECTOR,
                size: sectors * SECTOR,
            });
            number += 1;
        }
        let (next_kind, next_rel, _) = entries[1];
        if next_kind == 0 || next_rel == 0 {
            break;
        }
        ebr_lba = ext_lba + next_rel;
    }
    Ok(())
}

fn gpt(file: &File, header: &[u8]) -> std::io::Result<Vec<Partition>> {
    if header.len() < 92 {
        return Ok(Vec::new());
    }
    let entries_lba = u64le(header, 72);
    let count = u32le(header, 80).min(1024) as usize;
    let entry_size = u32le(header, 84) as usize;
    if !(128..=4096).contains(&entry_size) {
        return Ok(Vec::new());
    }
    let table = read_at(file, entries_lba * SECTOR, count * entry_size)?;
    let mut parts = Vec::new();
    for (i, e) in table.chunks_exact(entry_size).enumerate() {
        if e[..16].iter().all(|&b| b == 0) {
            continue;
        }
        let (first, last) = (u64le(e, 32), u64le(e, 40));
        if last < first {
            continue;
        }
        parts.push(Partition {
            number: i as u32 + 1,
            start: first * SECTOR,
            size: (last - first + 1) * SECTOR,
        });
    }
    Ok(parts)
}

/// A filesystem gureum can take a root from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filesystem {
    /// ext2/3/4 and its size in bytes according to the superblock.
    Ext {
        size: u64,
    },
    Xfs {
        size: u64,
    },
    Btrfs,
}

impl Filesystem {
    /// The `mount -t` type and the read-only options that also keep the kernel from replaying
    /// a journal (which would write to the user's file).
    pub(crate) fn mount_args(self) -> (&'static str, &'static str) {
        match self {
            Filesystem::Ext { .. } => ("ext4", "ro,noload"),
            Filesystem::Xfs { .. } => ("xfs", "ro,norecovery"),
            Filesystem::Btrfs => ("btrfs", "ro"),
        }
    }

    /// The size the superblock claims, when it records one for this device.
    pub(crate) fn size(self) -> Option<u64> {
        match self {
            Filesystem::Ext { size } | Filesystem::Xfs { size } => Some(size),
            Filesystem::Btrfs => None,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Filesystem::Ext { .. } => "ext4",
            Filesystem::Xfs { .. } => "xfs",
            Filesystem::Btrfs => "btrfs",
        }
    }
}

/// Recognises a filesystem from the first [`DETECT_BYTES`] bytes of a partition.
pub(crate) fn filesystem(head: &[u8]) -> Option<Filesystem> {
    if head.len() >= 1024 + 0x158 && u16le(head, 1024 + 0x38) == 0xef53 {
        let sb = &head[1024..];
        let log_block = u32le(sb, 24);
        if log_block > 6 {
            return None;
        }
        let block = 1024u64 << log_block;
        let mut blocks = u64::from(u32le(sb, 4));
        if u32le(sb, 0x60) & 0x80 != 0 {
            // INCOMPAT_64BIT: the high half of the block count.
            blocks |= u64::from(u32le(sb, 0x150)) << 32;
        }
        return Some(Filesystem::Ext {
            size: blocks.saturating_mul(block),
        });
    }
    if head.starts_with(b"XFSB") && head.len() >= 16 {
        let size = u64::from(u32be(head, 4)).saturating_mul(u64be(head, 8));
        return Some(Filesystem::Xfs { size });
    }
    if head.get(0x10040..0x10048) == Some(b"_BHRfS_M") {
        return Some(Filesystem::Btrfs);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn ext4_head(blocks: u32, log_block: u32) -> Vec<u8> {
        let mut b = vec![0u8; DETECT_BYTES];
        b[1024 + 4..1024 + 8].copy_from_slice(&blocks.to_le_bytes());
        b[1024 + 24..1024 + 28].copy_from_slice(&log_block.to_le_bytes());
        b[1024 + 0x38..1024 + 0x3a].copy_from_slice(&0xef53u16.to_le_bytes());
        b
    }

    #[test]
    fn formats_are_recognised_from_magic_bytes() {
        let mut qcow = b"QFI\xfb\0\0\0\x03".to_vec();
        qcow.resize(4096, 0);
        assert_eq!(detect_format(&qcow, 1 << 20), ImageFormat::Qcow2);
        assert_eq!(
            detect_format(&[0x1f, 0x8b, 8, 0], 100),
            ImageFormat::Tar(Compression::Gzip)
        );
        assert_eq!(
            detect_format(&[0x28, 0xb5, 0x2f, 0xfd, 0], 100),
            ImageFormat::Tar(Compression::Zstd)
        );
        assert_eq!(
            detect_format(b"\xfd7zXZ\0rest", 100),
            ImageFormat::Tar(Compression::Xz)
        );
        assert_eq!(
            detect_format(b"BZh91AY", 100),
            ImageFormat::Tar(Compression::Bzip2)
        );
        let mut tar = vec![0u8; 1024];
        tar[..5].copy_from_slice(b"etc/\0");
        tar[257..263].copy_from_slice(b"ustar\0");
        assert_eq!(
            detect_format(&tar, 10240),
            ImageFormat::Tar(Compression::None)
        );
        // An empty tar: zero blocks only.
        assert_eq!(
            detect_format(&vec![0u8; 10240], 10240),
            ImageFormat::Tar(Compression::None)
        );
        // A bare ext4 image (zero boot sector, superblock at 1024) is a raw disk.
        assert_eq!(
            detect_format(&ext4_head(1000, 2), 4096 * 1000),
            ImageFormat::Raw
        );
        let mut mbr = vec![0u8; 1024];
        mbr[446 + 4] = 0x83;
        mbr[446 + 8..446 + 12].copy_from_slice(&2048u32.to_le_bytes());
        mbr[446 + 12..446 + 16].copy_from_slice(&4096u32.to_le_bytes());
        mbr[510] = 0x55;
        mbr[511] = 0xaa;
        assert_eq!(detect_format(&mbr, 1 << 22), ImageFormat::Raw);
        let mut gpt = vec![0u8; 1024];
        gpt[512..520].copy_from_slice(b"EFI PART");
        assert_eq!(detect_format(&gpt, 1 << 22), ImageFormat::Raw);
    }

    #[test]
    fn random_bytes_and_text_are_unknown() {
        // A fixed pseudo-random buffer (xorshift), with a boot signature to make it harder.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut buf: Vec<u8> = (0..DETECT_BYTES)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        assert_eq!(detect_format(&buf, 1 << 20), ImageFormat::Unknown);
        buf[510] = 0x55;
        buf[511] = 0xaa;
        buf[446] = 0x17; // not a valid status byte
        assert_eq!(detect_format(&buf, 1 << 20), ImageFormat::Unknown);
        assert_eq!(detect_format(b"hello, world\n", 13), ImageFormat::Unknown);
        assert_eq!(detect_format(b"", 0), ImageFormat::Unknown);
        // Zeros, but too big to be an empty tar: an empty disk.
        assert_eq!(
            detect_format(&vec![0u8; 4096], 1 << 30),
            ImageFormat::Unknown
        );
    }

    #[test]
    fn ext4_size_and_other_filesystems() {
        assert_eq!(
            filesystem(&ext4_head(1000, 2)),
            Some(Filesystem::Ext { size: 4096 * 1000 })
        );
        let mut xfs = vec![0u8; 512];
        xfs[..4].copy_from_slice(b"XFSB");
        xfs[4..8].copy_from_slice(&4096u32.to_be_bytes());
        xfs[8..16].copy_from_slice(&10u64.to_be_bytes());
        assert_eq!(filesystem(&xfs), Some(Filesystem::Xfs { size: 40960 }));
        let mut btrfs = vec![0u8; DETECT_BYTES];
        btrfs[0x10040..0x10048].copy_from_slice(b"_BHRfS_M");
        assert_eq!(filesystem(&btrfs), Some(Filesystem::Btrfs));
        assert_eq!(filesystem(&[0u8; 4096]), None);
        assert_eq!(
            Filesystem::Ext { size: 1 }.mount_args(),
            ("ext4", "ro,noload")
        );
    }

    fn write_disk(bytes: &[u8]) -> (tempfile::TempDir, File) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk");
        let mut f = File::create(&path).unwrap();
        f.write_all(bytes).unwrap();
        (dir, File::open(&path).unwrap())
    }

    #[test]
    fn mbr_with_primary_and_logical_partitions() {
        let mut disk = vec![0u8; 64 * 512];
        let entry = |d: &mut Vec<u8>, sector: usize, i: usize, kind: u8, start: u32, len: u32| {
            let at = sector * 512 + 446 + 16 * i;
            d[at + 4] = kind;
            d[at + 8..at + 12].copy_from_slice(&start.to_le_bytes());
            d[at + 12..at + 16].copy_from_slice(&len.to_le_bytes());
            d[sector * 512 + 510] = 0x55;
            d[sector * 512 + 511] = 0xaa;
        };
        entry(&mut disk, 0, 0, 0x83, 2, 8);
        entry(&mut disk, 0, 1, 0x05, 20, 40);
        // First EBR at sector 20: a logical partition at 20+1, next EBR at 20+10.
        entry(&mut disk, 20, 0, 0x83, 1, 5);
        entry(&mut disk, 20, 1, 0x05, 10, 10);
        entry(&mut disk, 30, 0, 0x83, 1, 4);
        let (_d, f) = write_disk(&disk);
        let parts = partitions(&f).unwrap().unwrap();
        assert_eq!(
            parts,
            [
                Partition {
                    number: 1,
                    start: 2 * 512,
                    size: 8 * 512
                },
                Partition {
                    number: 5,
                    start: 21 * 512,
                    size: 5 * 512
                },
                Partition {
                    number: 6,
                    start: 31 * 512,
                    size: 4 * 512
                },
            ]
        );
    }

    #[test]
    fn gpt_entries() {
        let mut disk = vec![0u8; 40 * 512];
        // Protective MBR.
        disk[446 + 4] = 0xee;
        disk[446 + 8] = 1;
        disk[510] = 0x55;
        disk[511] = 0xaa;
        disk[512..520].copy_from_slice(b"EFI PART");
        disk[512 + 72..512 + 80].copy_from_slice(&2u64.to_le_bytes());
        disk[512 + 80..512 + 84].copy_from_slice(&4u32.to_le_bytes());
        disk[512 + 84..512 + 88].copy_from_slice(&128u32.to_le_bytes());
        let entry = |d: &mut Vec<u8>, i: usize, first: u64, last: u64| {
            let at = 2 * 512 + 128 * i;
            d[at] = 0xaf; // any non-zero type GUID
            d[at + 32..at + 40].copy_from_slice(&first.to_le_bytes());
            d[at + 40..at + 48].copy_from_slice(&last.to_le_bytes());
        };
        entry(&mut disk, 0, 10, 19);
        entry(&mut disk, 2, 20, 39);
        let (_d, f) = write_disk(&disk);
        assert_eq!(detect_format(&disk, disk.len() as u64), ImageFormat::Raw);
        let parts = partitions(&f).unwrap().unwrap();
        assert_eq!(
            parts,
            [
                Partition {
                    number: 1,
                    start: 10 * 512,
                    size: 10 * 512
                },
                Partition {
                    number: 3,
                    start: 20 * 512,
                    size: 20 * 512
                },
            ]
        );
    }

    #[test]
    fn a_bare_filesystem_has_no_partition_table() {
        let (_d, f) = write_disk(&ext4_head(16, 0));
        assert_eq!(partitions(&f).unwrap(), None);
    }
}
