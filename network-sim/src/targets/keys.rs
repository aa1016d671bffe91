//! The keys a simulator shares with the engine it drives: the zone PIN key it encrypts PIN
//! blocks under, and (in process) the engine's own keys. Derived from a seed so that a run
//! can be repeated; they are test keys for the simulator's own engines and never those of a
//! real issuer.

use cardcore_authz::pipeline::Keys;
use cardcore_core::pin::{Cvv2Key, PinVerificationKey, ZonePinKey};
use cardcore_core::PanKey;
use sha2::{Digest, Sha256};

/// Keys derived from a seed.
#[derive(Clone)]
pub struct SimKeys {
    seed: [u8; 32],
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
        }
    }

    fn derive(&self, purpose: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.seed);
        h.update(purpose.as_bytes());
        h.finalize().into()
    }

    pub fn zone_pin_key(&self) -> ZonePinKey {
        let bytes = self.derive("zpk");
        let mut key = [0u8; 16];
        key.copy_from_slice(&bytes[..16]);
        // Some byte patterns are weak DES keys; the next derivation is then used.
        ZonePinKey::new(key).unwrap_or_else(|_| {
            let alt = self.derive("zpk-alt");
            let mut key = [0u8; 16];
            key.copy_from_slice(&alt[..16]);
            ZonePinKey::new(key).expect("two derived keys are not both weak")
        })
    }

    /// Also given as hex, for a server started with the same zone PIN key.
    pub fn zone_pin_key_bytes(&self) -> [u8; 16] {
        let bytes = self.derive("zpk");
        let mut key = [0u8; 16];
        key.copy_from_slice(&bytes[..16]);
        key
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
