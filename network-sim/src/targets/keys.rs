//! The keys a simulator shares with the engine it drives: the zone PIN key it encrypts PIN
//! blocks under, and (in process) the engine's own keys. Derived from a seed so that a run
//! can be repeated; they are test keys for the simulator's own engines and never those of a
//! real issuer.

use cardcore_authz::pipeline::Keys;
use cardcore_core::pin::{Cvv2Key, KeyError, PinVerificationKey, ZonePinKey};
use cardcore_core::PanKey;
use sha2::{Digest, Sha256};

/// Keys derived from a seed.
#[derive(Clone)]
pub struct SimKeys {
    seed: [u8; 32],
    /// A zone PIN key given outright (a server's), instead of derived from the seed.
    zone_pin_key: Option<[u8; 16]>,
}

impl std::fmt::Debug for SimKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SimKeys(..)")
    }
}

impl SimKeys {
    pub fn from_seed(seed: &[u8]) -> SimKeys {
        SimKeys {
            seed: Sha256::digest(seed).into(),
            zone_pin_key: None,
        }
    }

    /// Keys whose zone PIN key is the given one (32 hex characters): what a simulator
    /// shares with a server it drives. Refused if it is not a usable DES-EDE2 key.
    pub fn with_zone_pin_key_hex(hex: &str) -> Result<SimKeys, KeyError> {
        // Validates length, characters and key strength, naming what is wrong.
        ZonePinKey::from_hex(hex)?;
        let bytes = decode_hex16(hex).ok_or(KeyError::NotHex)?;
        Ok(SimKeys {
            seed: Sha256::digest(hex.as_bytes()).into(),
            zone_pin_key: Some(bytes),
        })
    }

    fn derive(&self, purpose: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.seed);
        h.update(purpose.as_bytes());
        h.finalize().into()
    }

    pub fn zone_pin_key(&self) -> ZonePinKey {
        ZonePinKey::new(self.zone_pin_key_bytes()).expect("zone_pin_key_bytes returns a usable key")
    }

    /// The zone PIN key's bytes, for a server started with the same key: the given key, or
    /// the first derived key that is a usable DES-EDE2 key (some byte patterns are weak).
    pub fn zone_pin_key_bytes(&self) -> [u8; 16] {
        if let Some(given) = self.zone_pin_key {
            return given;
        }
        let usable = |purpose: &str| {
            let mut key = [0u8; 16];
            key.copy_from_slice(&self.derive(purpose)[..16]);
            ZonePinKey::new(key).is_ok().then_some(key)
        };
        usable("zpk")
            .or_else(|| usable("zpk-alt"))
            .expect("two derived keys are not both weak")
    }

    pub fn pan_key(&self) -> PanKey {
        let bytes = self.derive("pan");
        let mut key = [0u8; 16];
        key.copy_from_slice(&bytes[..16]);
        PanKey::new(key)
    }

    pub fn engine_keys(&self) -> Keys {
        Keys {
            zone_pin_key: self.zone_pin_key(),
            pin_verification_key: PinVerificationKey::new(self.derive("pvk")),
            cvv2_key: Cvv2Key::new(self.derive("cvv")),
        }
    }
}

fn decode_hex16(hex: &str) -> Option<[u8; 16]> {
    let digits = hex.as_bytes();
    if digits.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (slot, pair) in out.iter_mut().zip(digits.chunks(2)) {
        let nibble = |c: u8| (c as char).to_digit(16);
        *slot = (nibble(pair[0])? * 16 + nibble(pair[1])?) as u8;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_given_zone_pin_key_is_used_as_is() {
        let hex = "0123456789ABCDEFFEDCBA9876543210";
        let keys = SimKeys::with_zone_pin_key_hex(hex).unwrap();
        assert_eq!(keys.zone_pin_key_bytes()[..2], [0x01, 0x23]);
        let expected = ZonePinKey::from_hex(hex).unwrap().check_value();
        assert_eq!(keys.zone_pin_key().check_value(), expected);
        assert!(SimKeys::with_zone_pin_key_hex("0123").is_err());
        assert!(SimKeys::with_zone_pin_key_hex("zz23456789ABCDEFFEDCBA9876543210").is_err());
    }
}
