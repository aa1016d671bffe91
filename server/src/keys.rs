//! Key material: the zone PIN key, the PIN verification key, the CVV2 key and the PAN
//! fingerprint key.
//!
//! A key given in the configuration wins. Any other key comes from `DATA_DIR/keys.toml`; a
//! key found in neither is generated from the operating system's random source on first
//! start and written there (mode 0600, written to a temporary file, flushed and renamed, so
//! a crash never leaves half a file), and reused on every later start: the PAN key in
//! particular must never change under existing data, or no card would be found again.
//! Keys are never logged; errors name the key, never its value.
//!
//! A sandbox is different: a key it is not given is one of the published sandbox test keys
//! below, so that simulators and test clients can build PIN blocks for it without being
//! told a secret. They protect nothing and must never be used outside a sandbox.

use std::io::Write;
use std::path::{Path, PathBuf};

use cardcore_authz::pipeline::Keys;
use cardcore_core::iso8583::{decode_hex, encode_hex};
use cardcore_core::pin::{Cvv2Key, PinVerificationKey, ZonePinKey, MAC_KEY_LEN};
use cardcore_core::PanKey;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::config::{KeysConfig, Secret};
use crate::error::ServiceError;

/// The keys file inside the data directory.
pub const KEYS_FILE: &str = "keys.toml";
/// Bytes of a PAN fingerprint key.
pub const PAN_KEY_LEN: usize = 16;
/// The sandbox's zone PIN key: the classic test key of PIN-block examples.
pub const SANDBOX_ZONE_PIN_KEY_HEX: &str = "0123456789ABCDEFFEDCBA9876543210";
/// The sandbox's PIN verification key.
pub const SANDBOX_PIN_VERIFICATION_KEY_HEX: &str =
    "53414E44424F582D50564B2D544553542D4B45592D4E4F542D53454352455421";
/// The sandbox's CVV2 key.
pub const SANDBOX_CVV2_KEY_HEX: &str =
    "53414E44424F582D435656322D544553544B45592D4E4F542D53454352455421";
/// The sandbox's PAN fingerprint key.
pub const SANDBOX_PAN_KEY_HEX: &str = "53414E44424F582D50414E2D4B455921";
/// Attempts at drawing a zone PIN key whose halves differ; one almost always suffices.
const ZONE_PIN_KEY_DRAWS_MAX: usize = 8;

/// The keys the engine runs with.
#[derive(Clone, Debug)]
pub struct KeyMaterial {
    pub keys: Keys,
    pub pan_key: PanKey,
}

/// The keys file: every key as hex. No `Debug`: it would print keys.
#[derive(Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysFile {
    zone_pin_key: Option<String>,
    pin_verification_key: Option<String>,
    cvv2_key: Option<String>,
    pan_key: Option<String>,
}

/// The sandbox's keys: configured ones first, the published sandbox test keys for the rest.
pub fn sandbox_keys(configured: &KeysConfig) -> Result<KeyMaterial, ServiceError> {
    let or =
        |key: &Option<Secret>, fallback: &str| key.clone().unwrap_or_else(|| Secret::new(fallback));
    let keys = KeysConfig {
        zone_pin_key: Some(or(&configured.zone_pin_key, SANDBOX_ZONE_PIN_KEY_HEX)),
        pin_verification_key: Some(or(
            &configured.pin_verification_key,
            SANDBOX_PIN_VERIFICATION_KEY_HEX,
        )),
        cvv2_key: Some(or(&configured.cvv2_key, SANDBOX_CVV2_KEY_HEX)),
        pan_key: Some(or(&configured.pan_key, SANDBOX_PAN_KEY_HEX)),
    };
    parse_keys(&keys, &KeysFile::default(), "configuration")
}

/// Loads the keys: configured ones first, then the keys file, generating what is missing.
pub fn load_or_generate(
    data_dir: &Path,
    configured: &KeysConfig,
) -> Result<KeyMaterial, ServiceError> {
    let path = data_dir.join(KEYS_FILE);
    let mut file = read_keys_file(&path)?;
    let generated = fill_missing(&mut file, configured)?;
    if generated > 0 {
        write_keys_file(&path, &file)?;
        tracing::info!(path = %path.display(), generated, "generated keys into the keys file");
    }
    parse_keys(configured, &file, &path.display().to_string())
}

/// Parses each key, the configured value first, else the stored one. `source` names where
/// a bad key came from, in the error.
fn parse_keys(
    configured: &KeysConfig,
    file: &KeysFile,
    source: &str,
) -> Result<KeyMaterial, ServiceError> {
    let pick = |configured: &Option<Secret>, stored: &Option<String>| {
        configured
            .as_ref()
            .map(|s| s.expose().to_owned())
            .or_else(|| stored.clone())
            .unwrap_or_default()
    };
    let bad = |name: &str, problem: String| ServiceError::Keys {
        path: source.to_owned(),
        problem: format!("{name}: {problem}"),
    };
    let zpk = pick(&configured.zone_pin_key, &file.zone_pin_key);
    let pvk = pick(&configured.pin_verification_key, &file.pin_verification_key);
    let cvv = pick(&configured.cvv2_key, &file.cvv2_key);
    let pan = pick(&configured.pan_key, &file.pan_key);
    let keys = Keys {
        zone_pin_key: ZonePinKey::from_hex(&zpk).map_err(|e| bad("zone_pin_key", e.to_string()))?,
        pin_verification_key: PinVerificationKey::from_hex(&pvk)
            .map_err(|e| bad("pin_verification_key", e.to_string()))?,
        cvv2_key: Cvv2Key::from_hex(&cvv).map_err(|e| bad("cvv2_key", e.to_string()))?,
    };
    let pan_key = pan_key_from_hex(&pan).map_err(|p| bad("pan_key", p))?;
    Ok(KeyMaterial { keys, pan_key })
}

/// Generates into `file` every key neither configured nor stored; returns how many.
fn fill_missing(file: &mut KeysFile, configured: &KeysConfig) -> Result<usize, ServiceError> {
    let mut generated = 0;
    let mut fill = |configured: bool, slot: &mut Option<String>, make: fn() -> Option<String>| {
        if !configured && slot.is_none() {
            *slot = Some(make().ok_or_else(|| ServiceError::Keys {
                path: KEYS_FILE.to_owned(),
                problem: "the random source gave only weak zone PIN keys".to_owned(),
            })?);
            generated += 1;
        }
        Ok::<(), ServiceError>(())
    };
    fill(
        configured.zone_pin_key.is_some(),
        &mut file.zone_pin_key,
        random_zone_pin_key,
    )?;
    fill(
        configured.pin_verification_key.is_some(),
        &mut file.pin_verification_key,
        || Some(random_hex::<MAC_KEY_LEN>()),
    )?;
    fill(configured.cvv2_key.is_some(), &mut file.cvv2_key, || {
        Some(random_hex::<MAC_KEY_LEN>())
    })?;
    fill(configured.pan_key.is_some(), &mut file.pan_key, || {
        Some(random_hex::<PAN_KEY_LEN>())
    })?;
    Ok(generated)
}

/// Parses a PAN key from 32 hex characters; the error never echoes the text.
pub fn pan_key_from_hex(text: &str) -> Result<PanKey, String> {
    let mut key = [0u8; PAN_KEY_LEN];
    if text.len() != 2 * PAN_KEY_LEN {
        return Err(format!(
            "must be {} hex characters, got {}",
            2 * PAN_KEY_LEN,
            text.len()
        ));
    }
    decode_hex(text.as_bytes(), &mut key)
        .map_err(|_| "must contain only hex characters".to_owned())?;
    Ok(PanKey::new(key))
}

fn random_hex<const N: usize>() -> String {
    let mut bytes = [0u8; N];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    to_hex(&bytes)
}

/// A double-length key whose halves differ (equal halves would be single DES). `None` only
/// if the random source keeps drawing equal halves, that is, if it is broken.
fn random_zone_pin_key() -> Option<String> {
    (0..ZONE_PIN_KEY_DRAWS_MAX)
        .map(|_| random_hex::<{ ZonePinKey::LEN }>())
        .find(|hex| ZonePinKey::from_hex(hex).is_ok())
}

fn to_hex(bytes: &[u8]) -> String {
    let mut out = vec![0u8; bytes.len() * 2];
    match encode_hex(bytes, &mut out) {
        Ok(hex) => String::from_utf8_lossy(hex).into_owned(),
        Err(_) => String::new(),
    }
}

fn read_keys_file(path: &Path) -> Result<KeysFile, ServiceError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(KeysFile::default()),
        Err(e) => return Err(ServiceError::io(format!("read {}", path.display()), e)),
    };
    warn_if_readable_by_others(path);
    // The parser's message may quote the offending line, which may hold a key: keep only
    // the position it names.
    toml::from_str(&text).map_err(|e| ServiceError::Keys {
        path: path.display().to_string(),
        problem: match e.span() {
            Some(span) => format!("not a valid keys file (error at byte {})", span.start),
            None => "not a valid keys file".to_owned(),
        },
    })
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(path = %path.display(), mode = format!("{:o}", mode & 0o777),
                "the keys file is readable by others; it should be mode 0600");
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

fn write_keys_file(path: &Path, file: &KeysFile) -> Result<(), ServiceError> {
    let text = toml::to_string(file).map_err(|e| ServiceError::Keys {
        path: path.display().to_string(),
        problem: format!("cannot encode: {e}"),
    })?;
    let dir = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    std::fs::create_dir_all(&dir)
        .map_err(|e| ServiceError::io(format!("create {}", dir.display()), e))?;
    let tmp = path.with_extension("toml.tmp");
    let io = |what: &str, e| ServiceError::io(format!("{what} {}", tmp.display()), e);
    let mut out = open_private(&tmp).map_err(|e| io("create", e))?;
    out.write_all(text.as_bytes()).map_err(|e| io("write", e))?;
    out.sync_all().map_err(|e| io("flush", e))?;
    drop(out);
    std::fs::rename(&tmp, path).map_err(|e| io("rename", e))?;
    // The rename is durable only once the directory is flushed.
    std::fs::File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| ServiceError::io(format!("flush {}", dir.display()), e))
}

#[cfg(unix)]
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::File::create(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cardcore_core::Pan;

    #[test]
    fn keys_are_generated_once_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_generate(dir.path(), &KeysConfig::default()).unwrap();
        let path = dir.path().join(KEYS_FILE);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let text_before = std::fs::read_to_string(&path).unwrap();
        let second = load_or_generate(dir.path(), &KeysConfig::default()).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text_before);
        let pan = Pan::parse("4111111111111111").unwrap();
        assert_eq!(
            pan.fingerprint(&first.pan_key),
            pan.fingerprint(&second.pan_key)
        );
        assert_eq!(
            first.keys.zone_pin_key.check_value(),
            second.keys.zone_pin_key.check_value()
        );
    }

    #[test]
    fn configured_keys_win_and_are_not_written() {
        let dir = tempfile::tempdir().unwrap();
        let configured = KeysConfig {
            zone_pin_key: Some(Secret::new("0123456789ABCDEFFEDCBA9876543210")),
            pan_key: Some(Secret::new("00112233445566778899AABBCCDDEEFF")),
            ..KeysConfig::default()
        };
        let loaded = load_or_generate(dir.path(), &configured).unwrap();
        let text = std::fs::read_to_string(dir.path().join(KEYS_FILE)).unwrap();
        assert!(
            !text.contains("0123456789ABCDEF"),
            "a configured key must not be copied"
        );
        assert!(!text.contains("zone_pin_key"));
        assert!(text.contains("pin_verification_key"));
        let expected = ZonePinKey::from_hex("0123456789ABCDEFFEDCBA9876543210").unwrap();
        assert_eq!(
            loaded.keys.zone_pin_key.check_value(),
            expected.check_value()
        );
        let pan = Pan::parse("4111111111111111").unwrap();
        let expected_pan_key = pan_key_from_hex("00112233445566778899AABBCCDDEEFF").unwrap();
        assert_eq!(
            pan.fingerprint(&loaded.pan_key),
            pan.fingerprint(&expected_pan_key)
        );
    }

    #[test]
    fn bad_keys_are_named_without_their_value() {
        let cases = [
            ("zone_pin_key", "0123456789ABCDEF0123456789ABCDEF"), // equal halves
            ("zone_pin_key", "XYZ"),
            ("pan_key", "00112233445566778899AABBCCDDEEFG"),
            ("cvv2_key", "00"),
        ];
        for (name, value) in cases {
            let dir = tempfile::tempdir().unwrap();
            let mut configured = KeysConfig::default();
            let slot = match name {
                "zone_pin_key" => &mut configured.zone_pin_key,
                "pan_key" => &mut configured.pan_key,
                _ => &mut configured.cvv2_key,
            };
            *slot = Some(Secret::new(value));
            let error = load_or_generate(dir.path(), &configured)
                .unwrap_err()
                .to_string();
            assert!(error.contains(name), "{error}");
            assert!(!error.contains(value), "{error}");
        }
    }

    #[test]
    fn sandbox_keys_are_the_published_ones_unless_configured() {
        let keys = sandbox_keys(&KeysConfig::default()).unwrap();
        let published = ZonePinKey::from_hex(SANDBOX_ZONE_PIN_KEY_HEX).unwrap();
        assert_eq!(
            keys.keys.zone_pin_key.check_value(),
            published.check_value()
        );
        let pan = Pan::parse("4111111111111111").unwrap();
        let published_pan = pan_key_from_hex(SANDBOX_PAN_KEY_HEX).unwrap();
        assert_eq!(
            pan.fingerprint(&keys.pan_key),
            pan.fingerprint(&published_pan)
        );
        let own = KeysConfig {
            zone_pin_key: Some(Secret::new("00112233445566778899AABBCCDDEEFF")),
            ..KeysConfig::default()
        };
        let keys = sandbox_keys(&own).unwrap();
        assert_ne!(
            keys.keys.zone_pin_key.check_value(),
            published.check_value()
        );
    }

    #[test]
    fn a_damaged_keys_file_is_refused_without_quoting_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(KEYS_FILE), "pan_key = \"SECRETVALUE").unwrap();
        let error = load_or_generate(dir.path(), &KeysConfig::default())
            .unwrap_err()
            .to_string();
        assert!(error.contains("not a valid keys file"), "{error}");
        assert!(!error.contains("SECRETVALUE"), "{error}");
    }
}
