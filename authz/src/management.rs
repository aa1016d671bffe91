//! Management operations on a partition: profiles, balances, cards, permissions, limits and
//! PIN counters. Each validates everything first and only then emits its events, so a refused
//! call changes nothing.

use cardcore_core::pin::{Cvv2Value, Pin, PinVerificationValue};
use cardcore_core::{
    CardLimits, CardStatus, CardToken, CardType, Channel, Currency, Expiry, Granularity, LimitType,
    Money, Pan, Permissions, ProfileId, ProfileLimit, ProfileStatus, TimeZone, Timestamp,
};

use crate::error::EngineError;
use crate::events::EngineEvent;
use crate::partition::Partition;
use crate::state::{Card, Profile};

/// A card to issue, as the issuer's systems know it.
#[derive(Clone, Debug)]
pub struct IssueCard {
    pub profile: ProfileId,
    pub pan: Pan,
    pub pin: Option<Pin>,
    pub cvv2: Option<String>,
    pub expiry: Expiry,
    pub status: CardStatus,
    pub currency: Currency,
    pub card_type: CardType,
    pub smart_conversion: bool,
    pub locked: Vec<Channel>,
}

/// Limits of a profile if none were ever set: the maxima a `PATCH` may go up to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProfileLimitMax {
    pub daily_minor: i64,
    pub monthly_minor: i64,
}

/// One change of a card limit: set a value, or remove it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitChange {
    Set(i64),
    Remove,
}

impl Partition {
    pub fn create_profile(
        &mut self,
        id: ProfileId,
        status: ProfileStatus,
        time_zone: TimeZone,
        now: Timestamp,
    ) -> Result<(), EngineError> {
        if self.profiles.contains_key(&id) {
            return Err(EngineError::Conflict(format!(
                "profile {id} already exists"
            )));
        }
        self.pending_profile = id;
        let profile = Profile {
            id,
            status,
            time_zone,
            limits: [None, None],
            created: now,
        };
        self.emit(EngineEvent::ProfileCreated(profile));
        Ok(())
    }

    pub fn update_profile(
        &mut self,
        id: ProfileId,
        status: Option<ProfileStatus>,
        time_zone: Option<TimeZone>,
    ) -> Result<(), EngineError> {
        let profile = self.profile_or_404(id)?;
        let status = status.unwrap_or(profile.status);
        let old_zone = profile.time_zone;
        let time_zone = time_zone.unwrap_or(old_zone);
        self.pending_profile = id;
        if time_zone != old_zone && self.book.has_profile(id) {
            let planned = self.book.change_time_zone(id, time_zone);
            self.emit_ledger(planned, "time zone change");
        }
        self.emit(EngineEvent::ProfileChanged {
            profile: id,
            status,
            time_zone,
        });
        Ok(())
    }

    fn profile_or_404(&self, id: ProfileId) -> Result<&Profile, EngineError> {
        self.profiles
            .get(&id)
            .ok_or_else(|| EngineError::not_found("profile", id))
    }

    /// The card, if it belongs to `profile` (another profile's card is "not found").
    pub fn card_of(&self, profile: ProfileId, token: CardToken) -> Result<&Card, EngineError> {
        self.cards
            .get(&token)
            .filter(|c| c.profile == profile)
            .ok_or_else(|| EngineError::not_found("card", token))
    }

    pub fn issue_card(&mut self, issue: IssueCard, now: Timestamp) -> Result<Card, EngineError> {
        self.profile_or_404(issue.profile)?;
        let fingerprint = issue.pan.fingerprint(&self.config.pan_key);
        if self.cards.by_fingerprint(&fingerprint).is_some() {
            return Err(EngineError::Conflict(
                "a card with this PAN already exists".into(),
            ));
        }
        let keys = &self.config.keys;
        let cvv2 = match &issue.cvv2 {
            None => None,
            Some(c) => Some(
                Cvv2Value::compute(&keys.cvv2_key, &issue.pan, issue.expiry, c.as_bytes())
                    .map_err(|_| EngineError::invalid("cvv2", "must be 3 or 4 digits"))?,
            ),
        };
        let pvv = issue
            .pin
            .as_ref()
            .map(|pin| PinVerificationValue::compute(&keys.pin_verification_key, &issue.pan, pin));
        let token = self.new_card_token(fingerprint.0);
        let card = Card {
            token,
            profile: issue.profile,
            fingerprint,
            masked_pan: issue.pan.masked(),
            status: issue.status,
            expiry: issue.expiry,
            currency: issue.currency,
            card_type: issue.card_type,
            smart_conversion: issue.smart_conversion,
            permissions: Permissions::with_locked(&issue.locked),
            limits: None,
            pin_tries: 0,
            pvv,
            cvv2,
            issued: now,
            modified: now,
            last_txn: None,
            expired_from: None,
        };
        self.pending_profile = issue.profile;
        self.emit(EngineEvent::CardIssued(Box::new(card.clone())));
        self.open_card_usage(token, issue.profile, issue.currency);
        Ok(card)
    }

    /// A card token: a version-4-shaped UUID derived from the partition, a counter and the
    /// card's fingerprint, so it is unique and reveals nothing of the PAN.
    fn new_card_token(&self, fingerprint: u128) -> CardToken {
        let counter = (u128::from(self.config.index) << 64) | u128::from(self.next_card);
        let mixed = fingerprint.rotate_left(17)
            ^ counter.wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835);
        let version = (mixed & !(0xF << 76)) | (0x4 << 76);
        let variant = (version & !(0x3 << 62)) | (0x2 << 62);
        CardToken(variant)
    }

    /// The status API: only `ACTIVE`, `FROZEN` and `BLOCKED` may be set, and `BLOCKED` is
    /// final.
    pub fn change_card_status(
        &mut self,
        profile: ProfileId,
        token: CardToken,
        status: CardStatus,
        now: Timestamp,
    ) -> Result<Card, EngineError> {
        let card = self.card_of(profile, token)?;
        card.status
            .may_change_to(status)
            .map_err(|e| EngineError::Conflict(e.to_string()))?;
        self.pending_profile = profile;
        self.emit(EngineEvent::CardStatusChanged {
            card: token,
            status,
            at: now,
        });
        Ok(self.cards[&token].clone())
    }

    /// Sets any status, as the issuer's own systems may (expiry, partner suspension,
    /// purging). Not reachable from the public API.
    pub fn force_card_status(
        &mut self,
        token: CardToken,
        status: CardStatus,
        now: Timestamp,
    ) -> Result<(), EngineError> {
        let profile = self
            .cards
            .get(&token)
            .ok_or_else(|| EngineError::not_found("card", token))?
            .profile;
        self.pending_profile = profile;
        self.emit(EngineEvent::CardStatusChanged {
            card: token,
            status,
            at: now,
        });
        Ok(())
    }

    /// Bulk update, all or nothing: enabling a locked permission refuses the whole update.
    pub fn update_permissions(
        &mut self,
        profile: ProfileId,
        token: CardToken,
        changes: &[(Channel, bool)],
        now: Timestamp,
    ) -> Result<Permissions, EngineError> {
        let card = self.card_of(profile, token)?;
        let mut permissions = card.permissions;
        permissions
            .apply(changes)
            .map_err(|e| EngineError::Conflict(e.to_string()))?;
        self.pending_profile = profile;
        self.emit(EngineEvent::PermissionsChanged {
            card: token,
            permissions,
            at: now,
        });
        Ok(permissions)
    }

    pub fn reset_pin_count(
        &mut self,
        profile: ProfileId,
        token: CardToken,
    ) -> Result<(), EngineError> {
        self.card_of(profile, token)?;
        self.pending_profile = profile;
        self.emit(EngineEvent::PinTriesSet {
            card: token,
            count: 0,
        });
        Ok(())
    }

    /// Creates or updates card limits in one currency. Changing the currency of existing
    /// limits is refused unless every granularity is given anew, so no limit is silently
    /// reinterpreted in another currency.
    pub fn update_card_limits(
        &mut self,
        profile: ProfileId,
        token: CardToken,
        currency: Currency,
        changes: &[(Granularity, LimitChange)],
        now: Timestamp,
    ) -> Result<Option<CardLimits>, EngineError> {
        let card = self.card_of(profile, token)?;
        let mut limits = card
            .limits
            .as_deref()
            .copied()
            .unwrap_or_else(|| CardLimits::none(currency));
        if limits.currency != currency {
            let kept = Granularity::ALL
                .iter()
                .any(|g| limits.get(*g).is_some() && !changes.iter().any(|(c, _)| c == g));
            if kept {
                return Err(EngineError::invalid(
                    "currency",
                    format!(
                        "existing limits are in {}; give every limit in {currency}",
                        limits.currency
                    ),
                ));
            }
            limits = CardLimits::none(currency);
        }
        for &(g, change) in changes {
            match change {
                LimitChange::Set(v) if v < 0 => {
                    return Err(EngineError::invalid(
                        granularity_field(g),
                        "must not be negative",
                    ))
                }
                LimitChange::Set(v) => limits.set(g, Some(v)),
                LimitChange::Remove => limits.set(g, None),
            }
        }
        let limits = (!limits.is_empty()).then_some(limits);
        self.pending_profile = profile;
        self.emit(EngineEvent::CardLimitsSet {
            card: token,
            limits,
            at: now,
        });
        Ok(limits)
    }

    /// Sets a profile limit; both values must stay within their maxima. Each maximum is the
    /// one given, else the previous limit's (in the same currency), else the engine's default.
    #[allow(clippy::too_many_arguments)]
    pub fn update_profile_limit(
        &mut self,
        profile: ProfileId,
        limit_type: LimitType,
        daily: Money,
        monthly: Money,
        max_daily_minor: Option<i64>,
        max_monthly_minor: Option<i64>,
        defaults: ProfileLimitMax,
    ) -> Result<ProfileLimit, EngineError> {
        let p = self.profile_or_404(profile)?;
        if daily.currency != monthly.currency {
            return Err(EngineError::invalid(
                "monthly.currency",
                "daily and monthly must share a currency",
            ));
        }
        let previous = p.limit(limit_type).filter(|l| l.currency == daily.currency);
        let max_daily_minor = max_daily_minor
            .or(previous.map(|l| l.max_daily_minor))
            .unwrap_or(defaults.daily_minor);
        let max_monthly_minor = max_monthly_minor
            .or(previous.map(|l| l.max_monthly_minor))
            .unwrap_or(defaults.monthly_minor);
        let limit = ProfileLimit {
            currency: daily.currency,
            daily_minor: daily.amount_minor,
            monthly_minor: monthly.amount_minor,
            max_daily_minor,
            max_monthly_minor,
        };
        limit.validate().map_err(|e| match e {
            cardcore_core::limits::LimitError::Negative { field } => {
                EngineError::invalid(field, "must not be negative")
            }
            other => EngineError::invalid(
                if other.to_string().starts_with("daily") {
                    "daily"
                } else {
                    "monthly"
                },
                other.to_string(),
            ),
        })?;
        self.pending_profile = profile;
        self.ensure_book_profile(profile, limit.currency);
        self.emit(EngineEvent::ProfileLimitSet {
            profile,
            limit_type,
            limit: Some(limit),
        });
        Ok(limit)
    }

    /// Opens the STANDARD balance in `currency` if the profile has none.
    pub fn open_balance(
        &mut self,
        profile: ProfileId,
        currency: Currency,
    ) -> Result<cardcore_core::BalanceId, EngineError> {
        self.profile_or_404(profile)?;
        self.pending_profile = profile;
        if let Some(id) = self.book.balance_id(profile, currency) {
            return Ok(id);
        }
        self.ensure_book_profile(profile, currency);
        let event = self
            .book
            .open_balance(profile, currency)
            .map_err(|e| EngineError::Conflict(e.to_string()))?;
        self.emit(EngineEvent::Ledger(event));
        self.book
            .balance_id(profile, currency)
            .ok_or_else(|| EngineError::not_found("balance", currency))
    }

    /// A simulation top-up: credits `amount` to the profile's balance in its currency,
    /// opening the balance if needed.
    pub fn top_up(
        &mut self,
        profile: ProfileId,
        amount: Money,
    ) -> Result<cardcore_core::BalanceId, EngineError> {
        if amount.amount_minor <= 0 {
            return Err(EngineError::invalid("amount", "must be positive"));
        }
        let id = self.open_balance(profile, amount.currency)?;
        let event = self
            .book
            .top_up(id, amount)
            .map_err(|e| EngineError::invalid("amount", e.to_string()))?;
        self.emit(EngineEvent::Ledger(event));
        Ok(id)
    }
}

fn granularity_field(g: Granularity) -> &'static str {
    match g {
        Granularity::Transaction => "transaction",
        Granularity::Daily => "daily",
        Granularity::Monthly => "monthly",
        Granularity::Lifetime => "lifetime",
    }
}
