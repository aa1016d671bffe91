//! Card-order idempotency keys that outlive the process.
//!
//! The reference asks a client to retry a failed card order with the same
//! `X-idempotence-uuid`, and the retry must answer with the first order instead of issuing a
//! second card. A retry can come after a restart, and two retries can race. So each key is
//! written, with the fingerprint of the PAN drawn for its order, to a small append-only file
//! beside the engine's journal, and flushed, *before* the card is issued:
//!
//! ```text
//! STATE_DIR/card-order-keys    one line per order: v1 PROFILE KEY FINGERPRINT (hex)
//! ```
//!
//! A retry whose key is there looks for the profile's card with that fingerprint. Found, it
//! answers with that card; not found (the first attempt stopped between writing the key and
//! issuing the card), it issues as a first attempt would. So a crash can never leave two cards
//! for one key. Only the fingerprint is kept (the keyed hash the journal already stores),
//! never the PAN.
//!
//! An order runs with [`OrderKeys`] locked from the lookup to the issue (see
//! `AppState::run_order`), so two requests with one key cannot both miss and both issue.
//! Card orders are rare: the lock and one flush per order cost nothing that matters.
//!
//! The file belongs to one engine generation: a sandbox reset starts an empty state
//! directory, and with it no keys. At most [`ORDER_KEYS_MAX`] keys are kept; once the file
//! holds twice as many lines it is rewritten with the newest.

use std::collections::{HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use cardcore_core::{PanFingerprint, ProfileId};

/// The file, inside the engine's state directory.
pub const ORDER_KEYS_FILE: &str = "card-order-keys";
/// Keys remembered; past this many the oldest are forgotten.
pub const ORDER_KEYS_MAX: usize = 10_000;
/// Lines the file may grow to before it is rewritten with the kept keys only.
pub const ORDER_KEYS_LINES_MAX: usize = 2 * ORDER_KEYS_MAX;
const _: () = assert!(ORDER_KEYS_LINES_MAX > ORDER_KEYS_MAX);
/// The first word of every line: the format's version.
const LINE_TAG: &str = "v1";

type Key = (ProfileId, u128);

/// The card-order keys of the current engine generation.
#[derive(Debug, Default)]
pub struct OrderKeys {
    /// The generation whose keys are loaded (`None` before the first order).
    generation: Option<u64>,
    path: PathBuf,
    file: Option<File>,
    cards: HashMap<Key, PanFingerprint>,
    /// Keys oldest first, for forgetting the oldest.
    order: VecDeque<Key>,
    lines: usize,
}

impl OrderKeys {
    /// Makes the keys of `generation`, kept in `state_dir`, the current ones (loading them
    /// on the first order after a start or a reset).
    pub fn use_generation(&mut self, generation: u64, state_dir: &Path) -> io::Result<()> {
        if self.generation == Some(generation) {
            return Ok(());
        }
        *self = OrderKeys {
            path: state_dir.join(ORDER_KEYS_FILE),
            ..OrderKeys::default()
        };
        let clean = self.load()?;
        if clean {
            self.file = Some(open_append(&self.path)?);
        } else {
            // A torn or damaged line: start the file again from what was read, so that
            // the next line is not glued to a partial one.
            self.rewrite()?;
        }
        self.generation = Some(generation);
        Ok(())
    }

    /// The fingerprint of the card ordered with `key` by `profile`, if one was recorded.
    pub fn get(&self, profile: ProfileId, key: u128) -> Option<PanFingerprint> {
        self.cards.get(&(profile, key)).copied()
    }

    /// Records, durably, that `profile`'s order with `key` issues the card `fingerprint`.
    pub fn record(
        &mut self,
        profile: ProfileId,
        key: u128,
        fingerprint: PanFingerprint,
    ) -> io::Result<()> {
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("no generation in use"))?;
        file.write_all(line(profile, key, fingerprint).as_bytes())?;
        file.sync_data()?;
        self.lines += 1;
        self.remember((profile, key), fingerprint);
        if self.lines > ORDER_KEYS_LINES_MAX {
            self.rewrite()?;
        }
        Ok(())
    }

    fn remember(&mut self, key: Key, fingerprint: PanFingerprint) {
        if self.cards.insert(key, fingerprint).is_none() {
            self.order.push_back(key);
        }
        while self.order.len() > ORDER_KEYS_MAX {
            if let Some(old) = self.order.pop_front() {
                self.cards.remove(&old);
            }
        }
    }

    /// Reads the file if there is one; `false` if a line was damaged or the last one torn.
    fn load(&mut self) -> io::Result<bool> {
        let text = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(true),
            Err(e) => return Err(e),
        };
        let mut clean = text.is_empty() || text.ends_with(b"\n");
        for raw in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            match parse_line(raw) {
                Some((key, fingerprint)) => self.remember(key, fingerprint),
                None => clean = false,
            }
            self.lines += 1;
        }
        if !clean {
            tracing::warn!(path = %self.path.display(), "card-order keys: a damaged or torn line was skipped");
        }
        Ok(clean)
    }

    /// Writes the kept keys to a new file and puts it in place of the old one.
    fn rewrite(&mut self) -> io::Result<()> {
        let tmp = self.path.with_extension("tmp");
        let mut out = File::create(&tmp)?;
        let mut text = String::with_capacity(self.order.len() * 100);
        for key in &self.order {
            if let Some(fingerprint) = self.cards.get(key) {
                text.push_str(&line(key.0, key.1, *fingerprint));
            }
        }
        out.write_all(text.as_bytes())?;
        out.sync_all()?;
        drop(out);
        std::fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            File::open(dir)?.sync_all()?;
        }
        self.lines = self.order.len();
        self.file = Some(open_append(&self.path)?);
        Ok(())
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

fn line(profile: ProfileId, key: u128, fingerprint: PanFingerprint) -> String {
    format!(
        "{LINE_TAG} {} {key:032x} {:032x}\n",
        profile.0, fingerprint.0
    )
}

fn parse_line(raw: &[u8]) -> Option<(Key, PanFingerprint)> {
    let text = std::str::from_utf8(raw).ok()?;
    let mut words = text.split(' ');
    if words.next()? != LINE_TAG {
        return None;
    }
    let profile = words.next()?.parse::<u64>().ok()?;
    let key = u128::from_str_radix(words.next()?, 16).ok()?;
    let fingerprint = u128::from_str_radix(words.next()?, 16).ok()?;
    if words.next().is_some() {
        return None;
    }
    Some(((ProfileId(profile), key), PanFingerprint(fingerprint)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(n: u128) -> PanFingerprint {
        PanFingerprint(n)
    }

    #[test]
    fn keys_survive_a_reload_and_each_generation_has_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let mut keys = OrderKeys::default();
        keys.use_generation(0, dir.path()).unwrap();
        keys.record(ProfileId(1), 7, fp(70)).unwrap();
        keys.record(ProfileId(2), 7, fp(71)).unwrap();
        keys.record(ProfileId(1), 7, fp(72)).unwrap(); // a retry that drew another PAN

        let mut again = OrderKeys::default();
        again.use_generation(0, dir.path()).unwrap();
        assert_eq!(again.get(ProfileId(1), 7), Some(fp(72)));
        assert_eq!(again.get(ProfileId(2), 7), Some(fp(71)));
        assert_eq!(again.get(ProfileId(3), 7), None);

        let other = tempfile::tempdir().unwrap();
        again.use_generation(1, other.path()).unwrap();
        assert_eq!(again.get(ProfileId(1), 7), None);
    }

    #[test]
    fn a_torn_last_line_is_dropped_and_the_file_stays_usable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(ORDER_KEYS_FILE);
        let good = line(ProfileId(1), 1, fp(10));
        std::fs::write(&path, format!("{good}garbage line\n{}", &good[..20])).unwrap();
        let mut keys = OrderKeys::default();
        keys.use_generation(0, dir.path()).unwrap();
        assert_eq!(keys.get(ProfileId(1), 1), Some(fp(10)));
        keys.record(ProfileId(1), 2, fp(20)).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(
            text.lines().all(|l| parse_line(l.as_bytes()).is_some()),
            "{text}"
        );
    }

    #[test]
    fn the_oldest_keys_are_forgotten_and_the_file_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let mut keys = OrderKeys::default();
        keys.use_generation(0, dir.path()).unwrap();
        let total = ORDER_KEYS_LINES_MAX as u128 + 3;
        for key in 0..total {
            keys.record(ProfileId(1), key, fp(key)).unwrap();
        }
        assert_eq!(keys.cards.len(), ORDER_KEYS_MAX);
        assert_eq!(keys.get(ProfileId(1), 0), None);
        assert_eq!(keys.get(ProfileId(1), total - 1), Some(fp(total - 1)));
        let text = std::fs::read_to_string(dir.path().join(ORDER_KEYS_FILE)).unwrap();
        assert!(text.lines().count() <= ORDER_KEYS_LINES_MAX);
    }

    #[test]
    fn lines_parse_strictly() {
        let good = line(ProfileId(42), 0xabc, fp(0xdef));
        assert!(parse_line(good.trim_end().as_bytes()).is_some());
        for bad in [
            "",
            "v1",
            "v2 42 abc def",
            "v1 x abc def",
            "v1 42 abc def extra",
        ] {
            assert!(parse_line(bad.as_bytes()).is_none(), "{bad}");
        }
    }
}
