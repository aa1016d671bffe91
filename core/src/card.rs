//! Cards: status, type, expiry and spending permissions, as in the reference's `Card` and
//! `Permission` schemas.

use std::fmt;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

/// The seven card statuses of the reference.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CardStatus {
    Active,
    Inactive,
    Frozen,
    Blocked,
    Purged,
    Expired,
    PartnerSuspended,
}

impl CardStatus {
    pub const ALL: [CardStatus; 7] = [
        CardStatus::Active,
        CardStatus::Inactive,
        CardStatus::Frozen,
        CardStatus::Blocked,
        CardStatus::Purged,
        CardStatus::Expired,
        CardStatus::PartnerSuspended,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CardStatus::Active => "ACTIVE",
            CardStatus::Inactive => "INACTIVE",
            CardStatus::Frozen => "FROZEN",
            CardStatus::Blocked => "BLOCKED",
            CardStatus::Purged => "PURGED",
            CardStatus::Expired => "EXPIRED",
            CardStatus::PartnerSuspended => "PARTNER_SUSPENDED",
        }
    }

    pub fn parse(text: &str) -> Option<CardStatus> {
        CardStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Whether the card status API may move a card from `self` to `to`.
    ///
    /// The API sets only `ACTIVE`, `FROZEN` and `BLOCKED`. `BLOCKED` and `PURGED` are final;
    /// an `EXPIRED` card cannot be revived, only blocked; a `PARTNER_SUSPENDED` card is in the
    /// hands of the issuer's compliance team and is not changed through this API.
    pub fn may_change_to(self, to: CardStatus) -> Result<(), StatusChangeError> {
        use CardStatus::*;
        if !matches!(to, Active | Frozen | Blocked) {
            return Err(StatusChangeError::NotSettable(to));
        }
        match self {
            Blocked | Purged => Err(StatusChangeError::Final(self)),
            PartnerSuspended => Err(StatusChangeError::Final(self)),
            Expired if to != Blocked => Err(StatusChangeError::Final(self)),
            _ => Ok(()),
        }
    }
}

impl fmt::Display for CardStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a status change was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StatusChangeError {
    #[error("status {0} cannot be set through the card status API (only ACTIVE, FROZEN, BLOCKED)")]
    NotSettable(CardStatus),
    #[error("card is {0}, which is final")]
    Final(CardStatus),
}

/// `VIRTUAL` or `PHYSICAL`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CardType {
    Virtual,
    Physical,
}

/// The six spending permissions: one for every channel a card can be used through.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Channel {
    Ecom,
    PosChip,
    PosMagstripe,
    PosContactless,
    AtmWithdrawal,
    MobileWallets,
}

impl Channel {
    pub const ALL: [Channel; 6] = [
        Channel::Ecom,
        Channel::PosChip,
        Channel::PosMagstripe,
        Channel::PosContactless,
        Channel::AtmWithdrawal,
        Channel::MobileWallets,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Ecom => "ECOM",
            Channel::PosChip => "POS_CHIP",
            Channel::PosMagstripe => "POS_MAGSTRIPE",
            Channel::PosContactless => "POS_CONTACTLESS",
            Channel::AtmWithdrawal => "ATM_WITHDRAWAL",
            Channel::MobileWallets => "MOBILE_WALLETS",
        }
    }

    pub fn parse(text: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.as_str() == text)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A card's six permissions: each enabled or not, and locked or not. A locked permission is
/// disabled and cannot be enabled.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Permissions {
    enabled: u8,
    locked: u8,
}

/// Why a permission change was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("permission {0} is locked and cannot be enabled")]
pub struct PermissionLocked(pub Channel);

impl Permissions {
    /// All six enabled, none locked.
    pub fn all_enabled() -> Permissions {
        Permissions {
            enabled: 0b11_1111,
            locked: 0,
        }
    }

    /// All enabled except the locked ones, which are disabled.
    pub fn with_locked(locked: &[Channel]) -> Permissions {
        let locked = locked.iter().fold(0, |acc, c| acc | c.bit());
        Permissions {
            enabled: 0b11_1111 & !locked,
            locked,
        }
    }

    pub fn is_enabled(self, channel: Channel) -> bool {
        self.enabled & channel.bit() != 0
    }

    pub fn is_locked(self, channel: Channel) -> bool {
        self.locked & channel.bit() != 0
    }

    /// Applies a bulk update all or nothing: if any change enables a locked permission,
    /// nothing changes.
    pub fn apply(&mut self, changes: &[(Channel, bool)]) -> Result<(), PermissionLocked> {
        if let Some(&(channel, _)) = changes
            .iter()
            .find(|&&(channel, on)| on && self.is_locked(channel))
        {
            return Err(PermissionLocked(channel));
        }
        for &(channel, on) in changes {
            if on {
                self.enabled |= channel.bit();
            } else {
                self.enabled &= !channel.bit();
            }
        }
        Ok(())
    }

    /// The permissions in the reference's order, as `(type, isEnabled, isLocked)`.
    pub fn iter(self) -> impl Iterator<Item = (Channel, bool, bool)> {
        Channel::ALL
            .into_iter()
            .map(move |c| (c, self.is_enabled(c), self.is_locked(c)))
    }
}

impl fmt::Debug for Permissions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_map();
        for (c, on, locked) in self.iter() {
            list.entry(
                &c.as_str(),
                &(if locked {
                    "locked"
                } else if on {
                    "on"
                } else {
                    "off"
                }),
            );
        }
        list.finish()
    }
}

/// A card's expiry month. A card is valid through the last day of that month.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Expiry {
    pub year: u16,
    pub month: u8,
}

/// Why an expiry was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid expiry {0:?}: expected YYYY-MM (or YYMM on the wire)")]
pub struct ExpiryError(pub String);

impl Expiry {
    pub fn new(year: u16, month: u8) -> Result<Expiry, ExpiryError> {
        if (1..=12).contains(&month) && (2000..=2099).contains(&year) {
            Ok(Expiry { year, month })
        } else {
            Err(ExpiryError(format!("{year:04}-{month:02}")))
        }
    }

    /// Parses `YYYY-MM` (scenario files and JSON).
    pub fn parse(text: &str) -> Result<Expiry, ExpiryError> {
        let err = || ExpiryError(text.to_owned());
        let (y, m) = text.split_once('-').ok_or_else(err)?;
        if y.len() != 4 || m.len() != 2 {
            return Err(err());
        }
        let year = y.parse().map_err(|_| err())?;
        let month = m.parse().map_err(|_| err())?;
        Expiry::new(year, month).map_err(|_| err())
    }

    /// Parses ISO 8583 DE 14, `YYMM`.
    pub fn from_yymm(digits: &[u8]) -> Result<Expiry, ExpiryError> {
        let err = || ExpiryError(String::from_utf8_lossy(digits).into_owned());
        if digits.len() != 4 || !digits.iter().all(u8::is_ascii_digit) {
            return Err(err());
        }
        let yy = u16::from(digits[0] - b'0') * 10 + u16::from(digits[1] - b'0');
        let mm = (digits[2] - b'0') * 10 + (digits[3] - b'0');
        Expiry::new(2000 + yy, mm).map_err(|_| err())
    }

    /// The DE 14 form, `YYMM`.
    pub fn to_yymm(self) -> [u8; 4] {
        let yy = (self.year % 100) as u8;
        [
            b'0' + yy / 10,
            b'0' + yy % 10,
            b'0' + self.month / 10,
            b'0' + self.month % 10,
        ]
    }

    /// Whether the card is past its expiry on `date` (valid through the month's last day).
    pub fn has_passed(self, date: NaiveDate) -> bool {
        let (y, m) = (date.year(), date.month());
        (y, m) > (i32::from(self.year), u32::from(self.month))
    }
}

impl fmt::Display for Expiry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl fmt::Debug for Expiry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Expiry({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocked_is_final() {
        use CardStatus::*;
        assert!(Active.may_change_to(Frozen).is_ok());
        assert!(Frozen.may_change_to(Active).is_ok());
        assert!(Inactive.may_change_to(Active).is_ok());
        assert!(Active.may_change_to(Blocked).is_ok());
        assert_eq!(
            Blocked.may_change_to(Active),
            Err(StatusChangeError::Final(Blocked))
        );
        assert_eq!(
            Active.may_change_to(Purged),
            Err(StatusChangeError::NotSettable(Purged))
        );
        assert!(Expired.may_change_to(Active).is_err());
        assert!(Expired.may_change_to(Blocked).is_ok());
        for s in CardStatus::ALL {
            assert_eq!(CardStatus::parse(s.as_str()), Some(s));
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.as_str()));
        }
    }

    #[test]
    fn locked_permissions_cannot_be_enabled() {
        let mut p = Permissions::with_locked(&[Channel::AtmWithdrawal]);
        assert!(!p.is_enabled(Channel::AtmWithdrawal));
        assert!(p.is_enabled(Channel::Ecom));
        let before = p;
        let r = p.apply(&[(Channel::Ecom, false), (Channel::AtmWithdrawal, true)]);
        assert_eq!(r, Err(PermissionLocked(Channel::AtmWithdrawal)));
        assert_eq!(p, before, "a refused bulk update changes nothing");
        p.apply(&[(Channel::Ecom, false)]).unwrap();
        assert!(!p.is_enabled(Channel::Ecom));
        p.apply(&[(Channel::Ecom, true), (Channel::AtmWithdrawal, false)])
            .unwrap();
        assert!(p.is_enabled(Channel::Ecom));
        for c in Channel::ALL {
            assert_eq!(Channel::parse(c.as_str()), Some(c));
        }
    }

    #[test]
    fn valid_through_the_last_day_of_the_month() {
        let e = Expiry::parse("2028-02").unwrap();
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
        assert!(!e.has_passed(d(2028, 2, 29)));
        assert!(e.has_passed(d(2028, 3, 1)));
        assert!(!e.has_passed(d(2027, 12, 31)));
        assert_eq!(Expiry::from_yymm(b"2802").unwrap(), e);
        assert_eq!(&e.to_yymm(), b"2802");
        for bad in ["2028-13", "2028-00", "28-02", "2028/02", "abcd-ef"] {
            assert!(Expiry::parse(bad).is_err(), "{bad}");
        }
        assert!(Expiry::from_yymm(b"28a2").is_err());
    }
}
