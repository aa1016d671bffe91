//! Identifiers as newtypes, so a profile id can never be passed where a card id is expected.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! numeric_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub u64);

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
    };
}

numeric_id!(
    /// A profile (the customer): owns balances and cards.
    ProfileId
);
numeric_id!(
    /// A STANDARD balance of one profile in one currency.
    BalanceId
);
numeric_id!(
    /// A card transaction (`id` in the reference's `CardTransaction`).
    TxnId
);
numeric_id!(
    /// A spend-control rule.
    RuleId
);
numeric_id!(
    /// A card order.
    CardOrderId
);

/// The public identifier of a card (`cardToken` in the reference): a UUID.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CardToken(pub u128);

/// Why a card token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("card token {0:?} is not a UUID")]
pub struct CardTokenError(pub String);

impl CardToken {
    /// Parses the hyphenated UUID form (`ca0c8154-1e14-4464-a1ce-dcea7dc3de52`).
    pub fn parse(text: &str) -> Result<CardToken, CardTokenError> {
        let err = || CardTokenError(text.to_owned());
        let groups: Vec<&str> = text.split('-').collect();
        let lengths = [8, 4, 4, 4, 12];
        if groups.len() != lengths.len() || groups.iter().zip(lengths).any(|(g, n)| g.len() != n) {
            return Err(err());
        }
        let mut value: u128 = 0;
        for group in groups {
            for c in group.chars() {
                let digit = c.to_digit(16).ok_or_else(err)?;
                value = (value << 4) | u128::from(digit);
            }
        }
        Ok(CardToken(value))
    }
}

impl fmt::Display for CardToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0;
        write!(
            f,
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            (v >> 96) as u32,
            (v >> 80) as u16,
            (v >> 64) as u16,
            (v >> 48) as u16,
            v & 0xffff_ffff_ffff
        )
    }
}

impl fmt::Debug for CardToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CardToken({self})")
    }
}

/// JSON and other human-readable formats carry the UUID text; binary formats (the journal)
/// carry the 16 bytes as a number, which encodes without allocating.
impl Serialize for CardToken {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            s.serialize_u128(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for CardToken {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if !d.is_human_readable() {
            return u128::deserialize(d).map(CardToken);
        }
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        CardToken::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_token_round_trips_as_uuid() {
        let text = "ca0c8154-1e14-4464-a1ce-dcea7dc3de52";
        let token = CardToken::parse(text).unwrap();
        assert_eq!(token.to_string(), text);
        assert_eq!(
            serde_json::to_string(&token).unwrap(),
            format!("\"{text}\"")
        );
        for bad in [
            "",
            "ca0c8154",
            "ca0c8154-1e14-4464-a1ce-dcea7dc3de5z",
            "x-y-z-w-v",
        ] {
            assert!(CardToken::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ids_serialize_as_numbers() {
        assert_eq!(serde_json::to_string(&ProfileId(7)).unwrap(), "7");
        assert_eq!(format!("{:?}", TxnId(3)), "TxnId(3)");
    }
}
