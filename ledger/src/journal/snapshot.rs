//! Snapshot files: the engine's whole state as of one seq, so recovery replays only the
//! journal after it.
//!
//! File `snapshot-<seq:020>.bin` in the data directory:
//! magic `CCSNAP\r\n` (8) | version (1) | seq (u64 BE) | body length (u64 BE) |
//! CRC32C (u32 BE, over version, seq, length and body) | body.
//!
//! Written as: temp file `snapshot-<seq:020>.bin.tmp`, fsync, rename to the final name,
//! fsync the directory. A crash at any point leaves either no new snapshot (a temp file that
//! the next open removes) or a complete one; never a half-written file under a final name.

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::{JournalError, Seq};

/// The snapshot file format this build writes and reads.
pub const SNAPSHOT_VERSION: u8 = 1;
/// How many snapshot files are kept. Two, so that a damaged newest snapshot can be replaced
/// by the one before it plus a longer replay (the journal is only truncated up to the older
/// kept snapshot, so that replay is always possible).
pub const SNAPSHOTS_KEPT: usize = 2;

const MAGIC: [u8; 8] = *b"CCSNAP\r\n";
const HEADER_BYTES: usize = 8 + 1 + 8 + 8 + 4;
const FILE_PREFIX: &str = "snapshot-";
const FILE_SUFFIX: &str = ".bin";
const TEMP_SUFFIX: &str = ".bin.tmp";

/// A snapshot read back at recovery.
#[derive(Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The last event whose effects the snapshot contains.
    pub seq: Seq,
    /// The engine's encoded state, opaque to the journal.
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("seq", &self.seq)
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// The final file name of the snapshot at `seq`.
pub fn snapshot_file_name(seq: Seq) -> String {
    format!("{FILE_PREFIX}{seq:020}{FILE_SUFFIX}")
}

/// Writes a snapshot durably and returns its path.
pub fn write_snapshot_file(dir: &Path, seq: Seq, body: &[u8]) -> Result<PathBuf, JournalError> {
    let final_path = dir.join(snapshot_file_name(seq));
    let temp_path = dir.join(format!("{FILE_PREFIX}{seq:020}{TEMP_SUFFIX}"));
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&temp_path)
        .map_err(|e| JournalError::io("create snapshot", &temp_path, e))?;
    let header = encode_header(seq, body);
    file.write_all(&header)
        .map_err(|e| JournalError::io("write snapshot", &temp_path, e))?;
    file.write_all(body)
        .map_err(|e| JournalError::io("write snapshot", &temp_path, e))?;
    file.sync_all()
        .map_err(|e| JournalError::io("fsync snapshot", &temp_path, e))?;
    drop(file);
    fs::rename(&temp_path, &final_path)
        .map_err(|e| JournalError::io("rename snapshot", &final_path, e))?;
    fsync_dir(dir)?;
    // Read the header back: a snapshot that cannot be read is worse than none, because the
    // journal prefix is truncated on the strength of it.
    let written = fs::metadata(&final_path)
        .map_err(|e| JournalError::io("stat snapshot", &final_path, e))?
        .len();
    assert_eq!(written, (HEADER_BYTES + body.len()) as u64);
    Ok(final_path)
}

/// Reads and checks the snapshot at `path`, which the directory listing named `seq`.
pub fn read_snapshot_file(path: &Path, seq: Seq) -> Result<Snapshot, JournalError> {
    let data = fs::read(path).map_err(|e| JournalError::io("read snapshot", path, e))?;
    let corrupt = |problem: String| JournalError::SnapshotCorrupt {
        path: path.into(),
        problem,
    };
    if data.len() < HEADER_BYTES {
        return Err(corrupt(format!(
            "file is {} bytes, shorter than its header",
            data.len()
        )));
    }
    if data[..8] != MAGIC {
        return Err(corrupt("bad magic".into()));
    }
    let version = data[8];
    let header_seq = u64::from_be_bytes(data[9..17].try_into().expect("8-byte slice"));
    let len_bytes = u64::from_be_bytes(data[17..25].try_into().expect("8-byte slice"));
    let stored = u32::from_be_bytes(data[25..29].try_into().expect("4-byte slice"));
    let body = &data[HEADER_BYTES..];
    if len_bytes != body.len() as u64 {
        return Err(corrupt(format!(
            "header says {len_bytes} body bytes, file has {}",
            body.len()
        )));
    }
    let computed = checksum(version, header_seq, len_bytes, body);
    if stored != computed {
        return Err(corrupt(format!(
            "CRC32C stored {stored:#010x}, computed {computed:#010x}"
        )));
    }
    if version != SNAPSHOT_VERSION {
        return Err(corrupt(format!(
            "format version {version}, this build reads {SNAPSHOT_VERSION}"
        )));
    }
    if header_seq != seq {
        return Err(corrupt(format!(
            "file name says seq {seq}, header says {header_seq}"
        )));
    }
    Ok(Snapshot {
        seq,
        bytes: body.to_vec(),
    })
}

/// The snapshot files in `dir`, oldest first.
pub fn list_snapshots(dir: &Path) -> Result<Vec<(Seq, PathBuf)>, JournalError> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| JournalError::io("list", dir, e))? {
        let entry = entry.map_err(|e| JournalError::io("list", dir, e))?;
        let name = entry.file_name();
        let Some(seq) = name.to_str().and_then(parse_snapshot_name) else {
            continue;
        };
        found.push((seq, entry.path()));
    }
    found.sort();
    Ok(found)
}

/// Removes temp files left by a crash in the middle of writing a snapshot.
pub fn remove_temp_files(dir: &Path) -> Result<Vec<PathBuf>, JournalError> {
    let mut removed = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| JournalError::io("list", dir, e))? {
        let entry = entry.map_err(|e| JournalError::io("list", dir, e))?;
        let name = entry.file_name();
        let is_temp = name
            .to_str()
            .is_some_and(|n| n.starts_with(FILE_PREFIX) && n.ends_with(TEMP_SUFFIX));
        if is_temp {
            let path = entry.path();
            fs::remove_file(&path)
                .map_err(|e| JournalError::io("remove temp snapshot", &path, e))?;
            removed.push(path);
        }
    }
    if !removed.is_empty() {
        fsync_dir(dir)?;
    }
    Ok(removed)
}

/// Deletes all but the newest `keep` snapshots and returns the seqs of the kept ones, oldest
/// first.
pub fn prune_snapshots(dir: &Path, keep: usize) -> Result<Vec<Seq>, JournalError> {
    let all = list_snapshots(dir)?;
    let cut = all.len().saturating_sub(keep);
    for (_, path) in &all[..cut] {
        fs::remove_file(path).map_err(|e| JournalError::io("remove old snapshot", path, e))?;
    }
    if cut > 0 {
        fsync_dir(dir)?;
    }
    Ok(all[cut..].iter().map(|(seq, _)| *seq).collect())
}

/// Makes renames and deletions in `dir` durable.
pub fn fsync_dir(dir: &Path) -> Result<(), JournalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| JournalError::io("fsync directory", dir, e))
}

fn parse_snapshot_name(name: &str) -> Option<Seq> {
    let digits = name.strip_prefix(FILE_PREFIX)?.strip_suffix(FILE_SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn encode_header(seq: Seq, body: &[u8]) -> [u8; HEADER_BYTES] {
    let len_bytes = body.len() as u64;
    let mut header = [0_u8; HEADER_BYTES];
    header[..8].copy_from_slice(&MAGIC);
    header[8] = SNAPSHOT_VERSION;
    header[9..17].copy_from_slice(&seq.to_be_bytes());
    header[17..25].copy_from_slice(&len_bytes.to_be_bytes());
    let crc = checksum(SNAPSHOT_VERSION, seq, len_bytes, body);
    header[25..29].copy_from_slice(&crc.to_be_bytes());
    header
}

fn checksum(version: u8, seq: Seq, len_bytes: u64, body: &[u8]) -> u32 {
    let crc = crc32c::crc32c(&[version]);
    let crc = crc32c::crc32c_append(crc, &seq.to_be_bytes());
    let crc = crc32c::crc32c_append(crc, &len_bytes.to_be_bytes());
    crc32c::crc32c_append(crc, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sort_by_seq() {
        assert_eq!(snapshot_file_name(42), "snapshot-00000000000000000042.bin");
        assert_eq!(
            parse_snapshot_name(&snapshot_file_name(u64::MAX)),
            Some(u64::MAX)
        );
        assert_eq!(parse_snapshot_name("snapshot-42.bin"), None);
        assert_eq!(
            parse_snapshot_name("snapshot-0000000000000000004x.bin"),
            None
        );
        assert_eq!(
            parse_snapshot_name("snapshot-00000000000000000042.bin.tmp"),
            None
        );
        assert!(snapshot_file_name(9) < snapshot_file_name(10));
    }

    #[test]
    fn written_snapshot_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_snapshot_file(dir.path(), 7, b"state").unwrap();
        let snapshot = read_snapshot_file(&path, 7).unwrap();
        assert_eq!(
            snapshot,
            Snapshot {
                seq: 7,
                bytes: b"state".to_vec()
            }
        );
        assert_eq!(list_snapshots(dir.path()).unwrap(), vec![(7, path)]);
    }

    #[test]
    fn every_damaged_byte_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_snapshot_file(dir.path(), 3, b"abc").unwrap();
        let good = fs::read(&path).unwrap();
        for index in 0..good.len() {
            let mut bad = good.clone();
            bad[index] ^= 0x10;
            fs::write(&path, &bad).unwrap();
            let error = read_snapshot_file(&path, 3).unwrap_err();
            assert!(
                matches!(error, JournalError::SnapshotCorrupt { .. }),
                "byte {index}"
            );
        }
        for len in 0..good.len() {
            fs::write(&path, &good[..len]).unwrap();
            assert!(
                read_snapshot_file(&path, 3).unwrap_err().is_corruption(),
                "len {len}"
            );
        }
    }

    #[test]
    fn renamed_snapshot_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_snapshot_file(dir.path(), 3, b"abc").unwrap();
        let error = read_snapshot_file(&path, 4).unwrap_err();
        assert!(error.to_string().contains("header says 3"), "{error}");
    }

    #[test]
    fn prune_keeps_the_newest_and_temp_files_go() {
        let dir = tempfile::tempdir().unwrap();
        for seq in [5, 1, 9, 3] {
            write_snapshot_file(dir.path(), seq, b"s").unwrap();
        }
        fs::write(
            dir.path().join("snapshot-00000000000000000011.bin.tmp"),
            b"half",
        )
        .unwrap();
        assert_eq!(prune_snapshots(dir.path(), 2).unwrap(), vec![5, 9]);
        let removed = remove_temp_files(dir.path()).unwrap();
        assert_eq!(removed.len(), 1);
        let left: Vec<Seq> = list_snapshots(dir.path())
            .unwrap()
            .iter()
            .map(|s| s.0)
            .collect();
        assert_eq!(left, vec![5, 9]);
    }
}
