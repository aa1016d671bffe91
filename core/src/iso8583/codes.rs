//! The typed meaning of the fields the engine decides on: processing code (DE 3), POS entry
//! mode (DE 22), transmission time (DE 7) and original data elements (DE 90), with the
//! conventions cardcore uses to map them to its own types (written down in docs/iso8583.md).

use chrono::{Datelike, NaiveDate, Timelike};

use super::ascii::{digits_value, write_padded};
use crate::card::Channel;
use crate::time::Timestamp;
use crate::txn::TransactionType;

fn two_digits(digits: &[u8], at: usize) -> u8 {
    (digits[at] - b'0') * 10 + (digits[at + 1] - b'0')
}

fn all_digits(digits: &[u8]) -> bool {
    digits.iter().all(u8::is_ascii_digit)
}

/// DE 3: transaction type (2 digits), from-account type, to-account type.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ProcessingCode {
    pub transaction: u8,
    pub from_account: u8,
    pub to_account: u8,
}

impl ProcessingCode {
    /// Goods and services.
    pub const PURCHASE: u8 = 0;
    /// Cash withdrawal (ATM).
    pub const CASH_WITHDRAWAL: u8 = 1;
    /// Goods and services with cash back.
    pub const PURCHASE_WITH_CASHBACK: u8 = 9;
    /// Account funding (sending money to another card or wallet).
    pub const ACCOUNT_FUNDING: u8 = 10;
    /// Cash disbursement at a counter (Mastercard's code; Visa sends 01 with MCC 6010).
    pub const CASH_ADVANCE: u8 = 17;
    /// Returns: refund of an earlier purchase.
    pub const REFUND: u8 = 20;
    /// Deposit: money received on the card other than OCT/MoneySend.
    pub const ACCOUNT_CREDIT: u8 = 21;
    /// Visa original credit transaction (OCT).
    pub const ORIGINAL_CREDIT: u8 = 26;
    /// Mastercard payment transaction (MoneySend).
    pub const PAYMENT: u8 = 28;

    /// A code with default (00) account types.
    pub fn new(transaction: u8) -> ProcessingCode {
        ProcessingCode {
            transaction,
            from_account: 0,
            to_account: 0,
        }
    }

    /// Six digits, or `None`.
    pub fn from_digits(digits: &[u8]) -> Option<ProcessingCode> {
        if digits.len() != 6 || !all_digits(digits) {
            return None;
        }
        Some(ProcessingCode {
            transaction: two_digits(digits, 0),
            from_account: two_digits(digits, 2),
            to_account: two_digits(digits, 4),
        })
    }

    /// The six wire digits. Values above 99 are written modulo 100.
    pub fn to_digits(self) -> [u8; 6] {
        let mut out = [0u8; 6];
        for (i, v) in [self.transaction, self.from_account, self.to_account]
            .into_iter()
            .enumerate()
        {
            write_padded(u64::from(v % 100), &mut out[2 * i..2 * i + 2]);
        }
        out
    }

    /// cardcore's transaction type for this code. A purchase is an `ECOM_PURCHASE` when the
    /// card was not present (channel `ECOM`, manual entry included) and a `POS_PURCHASE`
    /// otherwise (a mobile wallet pays in store). `None`: a code cardcore does not handle
    /// (balance inquiry, transfers ...).
    pub fn transaction_type(self, channel: Channel) -> Option<TransactionType> {
        let t = match self.transaction {
            Self::PURCHASE | Self::PURCHASE_WITH_CASHBACK if channel == Channel::Ecom => {
                TransactionType::EcomPurchase
            }
            Self::PURCHASE | Self::PURCHASE_WITH_CASHBACK => TransactionType::PosPurchase,
            Self::CASH_WITHDRAWAL => TransactionType::CashWithdrawal,
            Self::ACCOUNT_FUNDING => TransactionType::AccountFunding,
            Self::CASH_ADVANCE => TransactionType::CashAdvance,
            Self::REFUND => TransactionType::Refund,
            Self::ACCOUNT_CREDIT => TransactionType::AccountCredit,
            Self::ORIGINAL_CREDIT | Self::PAYMENT => TransactionType::CreditTransaction,
            _ => return None,
        };
        Some(t)
    }

    /// The code cardcore sends for a transaction type (the simulator's side of the mapping).
    pub fn for_transaction_type(t: TransactionType) -> Option<ProcessingCode> {
        let code = match t {
            TransactionType::PosPurchase | TransactionType::EcomPurchase => Self::PURCHASE,
            TransactionType::CashWithdrawal => Self::CASH_WITHDRAWAL,
            TransactionType::AccountFunding => Self::ACCOUNT_FUNDING,
            TransactionType::CashAdvance => Self::CASH_ADVANCE,
            TransactionType::Refund => Self::REFUND,
            TransactionType::AccountCredit => Self::ACCOUNT_CREDIT,
            TransactionType::CreditTransaction => Self::ORIGINAL_CREDIT,
            TransactionType::Chargeback => return None,
        };
        Some(ProcessingCode::new(code))
    }
}

/// How the card was read, as the simulator and scenarios name it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum EntryMode {
    Chip,
    Contactless,
    Magstripe,
    Ecom,
    /// A mobile wallet token (Apple Pay, Google Pay) presented in store.
    Wallet,
    /// The PAN keyed in by hand; it counts as `ECOM`.
    Manual,
}

impl EntryMode {
    pub const ALL: [EntryMode; 6] = [
        EntryMode::Chip,
        EntryMode::Contactless,
        EntryMode::Magstripe,
        EntryMode::Ecom,
        EntryMode::Wallet,
        EntryMode::Manual,
    ];

    /// The spending permission this entry mode needs (cash withdrawals aside, which always
    /// need `ATM_WITHDRAWAL`: that is the engine's call, from the processing code).
    pub fn channel(self) -> Channel {
        match self {
            EntryMode::Chip => Channel::PosChip,
            EntryMode::Contactless => Channel::PosContactless,
            EntryMode::Magstripe => Channel::PosMagstripe,
            EntryMode::Ecom | EntryMode::Manual => Channel::Ecom,
            EntryMode::Wallet => Channel::MobileWallets,
        }
    }

    /// The DE 22 value cardcore sends for this entry mode.
    pub fn pos_entry_mode(self) -> PosEntryMode {
        let (pan_entry, pin_capability) = match self {
            EntryMode::Chip => (PosEntryMode::CHIP, PosEntryMode::PIN_CAPABLE),
            EntryMode::Contactless => (PosEntryMode::CONTACTLESS_CHIP, PosEntryMode::PIN_CAPABLE),
            EntryMode::Magstripe => (PosEntryMode::MAGSTRIPE_FULL, PosEntryMode::PIN_CAPABLE),
            EntryMode::Ecom => (PosEntryMode::ECOMMERCE, PosEntryMode::NO_PIN),
            EntryMode::Wallet => (PosEntryMode::WALLET_TOKEN, PosEntryMode::PIN_CAPABLE),
            EntryMode::Manual => (PosEntryMode::MANUAL, PosEntryMode::NO_PIN),
        };
        PosEntryMode {
            pan_entry,
            pin_capability,
        }
    }

    /// The scenario-file name (`CHIP`, `CONTACTLESS`, `MAGSTRIPE`, `ECOM`, `WALLET`, `MANUAL`).
    pub fn as_str(self) -> &'static str {
        match self {
            EntryMode::Chip => "CHIP",
            EntryMode::Contactless => "CONTACTLESS",
            EntryMode::Magstripe => "MAGSTRIPE",
            EntryMode::Ecom => "ECOM",
            EntryMode::Wallet => "WALLET",
            EntryMode::Manual => "MANUAL",
        }
    }

    pub fn parse(text: &str) -> Option<EntryMode> {
        EntryMode::ALL.into_iter().find(|m| m.as_str() == text)
    }
}

/// DE 22: PAN entry mode (2 digits) and PIN entry capability (1 digit).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct PosEntryMode {
    pub pan_entry: u8,
    pub pin_capability: u8,
}

impl PosEntryMode {
    pub const UNKNOWN: u8 = 0;
    pub const MANUAL: u8 = 1;
    pub const MAGSTRIPE: u8 = 2;
    pub const CHIP: u8 = 5;
    pub const CONTACTLESS_CHIP: u8 = 7;
    /// Credential on file (Visa).
    pub const CREDENTIAL_ON_FILE: u8 = 10;
    /// Chip card read as magnetic stripe after a chip failure (fallback).
    pub const MAGSTRIPE_FALLBACK: u8 = 80;
    /// Electronic commerce (card not present, credential on file included).
    pub const ECOMMERCE: u8 = 81;
    /// Full magnetic stripe read, track data unaltered.
    pub const MAGSTRIPE_FULL: u8 = 90;
    /// Contactless read of magnetic stripe data.
    pub const CONTACTLESS_MAGSTRIPE: u8 = 91;
    /// Chip read, card verification value possibly unreliable.
    pub const CHIP_UNRELIABLE_CVV: u8 = 95;
    /// cardcore convention, in the private-use range 90-99 of ISO 8583:1987: a mobile wallet
    /// token presented in store. ISO 8583 has no single wallet code (schemes flag tokens in
    /// other fields), so the simulator and the engine agree on this one.
    pub const WALLET_TOKEN: u8 = 96;

    /// PIN entry capability: unknown.
    pub const PIN_UNKNOWN: u8 = 0;
    /// PIN entry capability: the terminal can accept PINs.
    pub const PIN_CAPABLE: u8 = 1;
    /// PIN entry capability: the terminal cannot accept PINs.
    pub const NO_PIN: u8 = 2;

    /// Three digits, or `None`.
    pub fn from_digits(digits: &[u8]) -> Option<PosEntryMode> {
        if digits.len() != 3 || !all_digits(digits) {
            return None;
        }
        Some(PosEntryMode {
            pan_entry: two_digits(digits, 0),
            pin_capability: digits[2] - b'0',
        })
    }

    /// The three wire digits (values out of range are written modulo 100 and 10).
    pub fn to_digits(self) -> [u8; 3] {
        let mut out = [0u8; 3];
        write_padded(u64::from(self.pan_entry % 100), &mut out[..2]);
        out[2] = b'0' + self.pin_capability % 10;
        out
    }

    /// The entry mode this value stands for; `None` for codes cardcore does not accept
    /// (unknown, bar code, OCR ...).
    pub fn entry_mode(self) -> Option<EntryMode> {
        let mode = match self.pan_entry {
            Self::MANUAL => EntryMode::Manual,
            Self::MAGSTRIPE | Self::MAGSTRIPE_FALLBACK | Self::MAGSTRIPE_FULL => {
                EntryMode::Magstripe
            }
            Self::CHIP | Self::CHIP_UNRELIABLE_CVV => EntryMode::Chip,
            Self::CONTACTLESS_CHIP | Self::CONTACTLESS_MAGSTRIPE => EntryMode::Contactless,
            Self::CREDENTIAL_ON_FILE | Self::ECOMMERCE => EntryMode::Ecom,
            Self::WALLET_TOKEN => EntryMode::Wallet,
            _ => return None,
        };
        Some(mode)
    }

    /// The spending permission this entry mode needs (see [`EntryMode::channel`]).
    pub fn channel(self) -> Option<Channel> {
        self.entry_mode().map(EntryMode::channel)
    }
}

/// DE 7 (and the middle of DE 90): `MMDDhhmmss`, UTC. The year is not on the wire.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct TransmissionTime {
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
}

impl TransmissionTime {
    /// Ten digits, not range-checked (DE 90 may carry zeros when the original time is unknown).
    pub fn from_digits(digits: &[u8]) -> Option<TransmissionTime> {
        if digits.len() != 10 || !all_digits(digits) {
            return None;
        }
        Some(TransmissionTime {
            month: two_digits(digits, 0),
            day: two_digits(digits, 2),
            hour: two_digits(digits, 4),
            minute: two_digits(digits, 6),
            second: two_digits(digits, 8),
        })
    }

    /// The ten wire digits (values out of range are written modulo 100).
    pub fn to_digits(self) -> [u8; 10] {
        let mut out = [0u8; 10];
        let parts = [self.month, self.day, self.hour, self.minute, self.second];
        for (i, v) in parts.into_iter().enumerate() {
            write_padded(u64::from(v % 100), &mut out[2 * i..2 * i + 2]);
        }
        out
    }

    /// Month 1-12, day 1-31, hour 0-23, minute and second 0-59.
    pub fn is_valid(self) -> bool {
        (1..=12).contains(&self.month)
            && (1..=31).contains(&self.day)
            && self.hour <= 23
            && self.minute <= 59
            && self.second <= 59
    }

    /// The time of `t` in UTC.
    pub fn from_timestamp(t: Timestamp) -> TransmissionTime {
        let dt = t.to_datetime();
        TransmissionTime {
            month: dt.month() as u8,
            day: dt.day() as u8,
            hour: dt.hour() as u8,
            minute: dt.minute() as u8,
            second: dt.second() as u8,
        }
    }

    /// The instant this time names in the year that puts it closest to `now` (messages
    /// cross New Year's Eve). `None` when no year around `now` has that date (30 February).
    pub fn to_timestamp_near(self, now: Timestamp) -> Option<Timestamp> {
        let year = now.to_datetime().year();
        [year - 1, year, year + 1]
            .into_iter()
            .filter_map(|y| {
                let date = NaiveDate::from_ymd_opt(y, self.month.into(), self.day.into())?;
                let at =
                    date.and_hms_opt(self.hour.into(), self.minute.into(), self.second.into())?;
                Some(Timestamp(at.and_utc().timestamp_millis()))
            })
            .min_by_key(|t| (t.0 - now.0).unsigned_abs())
    }
}

/// DE 90: the original message a reversal or advice refers to.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct OriginalData {
    /// The original MTI as a number (100 for 0100).
    pub mti_code: u16,
    pub stan: u32,
    /// The original DE 7 (zeros when the sender did not know it).
    pub transmission_time: TransmissionTime,
    /// The original DE 32 (right-justified, zero-filled to 11 digits on the wire).
    pub acquirer_id: u64,
    /// The original DE 33 (zero when there was none).
    pub forwarding_id: u64,
}

impl OriginalData {
    /// 42 digits: MTI 4, STAN 6, transmission time 10, acquirer 11, forwarding institution 11.
    pub fn from_digits(digits: &[u8]) -> Option<OriginalData> {
        if digits.len() != 42 || !all_digits(digits) {
            return None;
        }
        Some(OriginalData {
            mti_code: digits_value(&digits[0..4]) as u16,
            stan: digits_value(&digits[4..10]) as u32,
            transmission_time: TransmissionTime::from_digits(&digits[10..20])?,
            acquirer_id: digits_value(&digits[20..31]),
            forwarding_id: digits_value(&digits[31..42]),
        })
    }

    /// The 42 wire digits; `None` when a part has more digits than its slot.
    pub fn to_digits(&self) -> Option<[u8; 42]> {
        let mut out = [0u8; 42];
        let fits = write_padded(u64::from(self.mti_code), &mut out[0..4])
            && write_padded(u64::from(self.stan), &mut out[4..10])
            && write_padded(self.acquirer_id, &mut out[20..31])
            && write_padded(self.forwarding_id, &mut out[31..42]);
        out[10..20].copy_from_slice(&self.transmission_time.to_digits());
        fits.then_some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processing_code_digits() {
        let pc = ProcessingCode::from_digits(b"012000").unwrap();
        assert_eq!(
            pc,
            ProcessingCode {
                transaction: 1,
                from_account: 20,
                to_account: 0
            }
        );
        assert_eq!(&pc.to_digits(), b"012000");
        assert!(ProcessingCode::from_digits(b"01200").is_none());
        assert!(ProcessingCode::from_digits(b"0120a0").is_none());
    }

    #[test]
    fn transmission_time_near_new_year() {
        let t = TransmissionTime::from_digits(b"1231235959").unwrap();
        assert!(t.is_valid());
        let now = Timestamp::parse_rfc3339("2027-01-01T00:00:30Z").unwrap();
        let at = t.to_timestamp_near(now).unwrap();
        assert_eq!(at.to_rfc3339(), "2026-12-31T23:59:59.000Z");
        assert_eq!(TransmissionTime::from_timestamp(at), t);
        let feb30 = TransmissionTime::from_digits(b"0230120000").unwrap();
        assert!(feb30.to_timestamp_near(now).is_none());
        assert!(!TransmissionTime::from_digits(b"1332000000")
            .unwrap()
            .is_valid());
    }

    #[test]
    fn original_data_digits() {
        let text = b"010012345612311200000000000123400000000000";
        let od = OriginalData::from_digits(text).unwrap();
        assert_eq!(od.mti_code, 100);
        assert_eq!(od.stan, 123456);
        assert_eq!(od.transmission_time.month, 12);
        assert_eq!(od.acquirer_id, 1234);
        assert_eq!(od.forwarding_id, 0);
        assert_eq!(&od.to_digits().unwrap(), text);
        let too_big = OriginalData {
            stan: 1_000_000,
            ..od
        };
        assert!(too_big.to_digits().is_none());
    }
}
