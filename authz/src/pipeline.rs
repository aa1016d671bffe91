//! The decision pipeline: the checks of DESIGN.md in their fixed precedence. The first
//! failing check decides. Nothing here mutates state or does I/O: a check reads the card, the
//! profile, the request, the application data and the usage counters, and says pass or
//! decline; the one side effect a decision may carry (the PIN try counter) is returned as a
//! value for the caller to record.

use cardcore_core::decline::{Decline, DeclineReason, DetailedDeclineReason};
use cardcore_core::pin::{decrypt_pin_block, Cvv2Key, PinVerificationKey, ZonePinKey};
use cardcore_core::{CardStatus, Channel, Granularity, LimitType, Money, ProfileStatus, Timestamp};
use cardcore_ledger::book::Book;

use crate::app::AppData;
use crate::explain::{Check, Explanation, Seen};
use crate::request::Request;
use crate::state::{Card, Profile};

/// The keys the pipeline verifies PINs and CVV2s with.
#[derive(Debug, Clone)]
pub struct Keys {
    pub zone_pin_key: ZonePinKey,
    pub pin_verification_key: PinVerificationKey,
    pub cvv2_key: Cvv2Key,
}

/// How many wrong PINs in a row block PIN transactions until the count is reset.
pub const PIN_TRIES_MAX: u8 = 3;

/// What a PIN check did to the try counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PinEffect {
    /// No PIN was checked, or the counter is unchanged.
    None,
    /// A right PIN: the counter goes back to 0.
    Reset,
    /// A wrong PIN: the counter goes up by one.
    Wrong,
}

/// Usage counters as the limit checks need them: current usage in the window, in the
/// counter's own currency.
pub trait UsageView {
    fn card_usage(&self, card: &Card, window: Granularity, now: Timestamp) -> Option<Money>;
    fn profile_usage(
        &self,
        profile: &Profile,
        limit_type: LimitType,
        window: Granularity,
        now: Timestamp,
    ) -> Option<Money>;
}

/// Everything a decision reads.
#[derive(Debug)]
pub struct Inputs<'a> {
    pub request: &'a Request,
    pub card: &'a Card,
    pub profile: &'a Profile,
    pub app: &'a AppData,
    pub keys: &'a Keys,
    pub now: Timestamp,
    /// The ledger, for the profile's balances (is the currency supported?), read only when
    /// the card's own currency does not settle it.
    pub book: &'a Book,
}

/// The checks before the money: card and profile status, card data, channel permission,
/// PIN, currency and spend controls. Returns the PIN effect in every case.
pub fn check_access(
    inputs: &Inputs<'_>,
    explain: &mut Explanation,
) -> (Result<(), Decline>, PinEffect) {
    if let Err(d) = check_card_status(inputs, explain)
        .and_then(|_| check_profile_status(inputs, explain))
        .and_then(|_| check_card_data(inputs, explain))
        .and_then(|_| check_permission(inputs, explain))
    {
        return (Err(d), PinEffect::None);
    }
    let (pin, effect) = check_pin(inputs, explain);
    if let Err(d) = pin {
        return (Err(d), effect);
    }
    let rest = check_currency(inputs, explain).and_then(|_| check_spend_controls(inputs, explain));
    (rest, effect)
}

fn decline(reason: DeclineReason) -> Decline {
    Decline {
        reason,
        detailed: None,
    }
}

fn decline_detailed(reason: DeclineReason, detailed: DetailedDeclineReason) -> Decline {
    Decline {
        reason,
        detailed: Some(detailed),
    }
}

fn check_card_status(inputs: &Inputs<'_>, explain: &mut Explanation) -> Result<(), Decline> {
    let card = inputs.card;
    let status = card.status;
    let tz = inputs.profile.time_zone;
    let date_passed = match card.expired_from {
        Some((zone, from)) if zone == tz => inputs.now >= from,
        _ => {
            let local_date = inputs.now.to_datetime().with_timezone(&tz.0).date_naive();
            card.expiry.has_passed(local_date)
        }
    };
    let reason = match status {
        CardStatus::Blocked | CardStatus::Purged => Some(DeclineReason::CardBlocked),
        CardStatus::Expired => Some(DeclineReason::CardExpired),
        _ if date_passed => Some(DeclineReason::CardExpired),
        CardStatus::Frozen => Some(DeclineReason::CardFrozen),
        CardStatus::Inactive => Some(DeclineReason::CardInactive),
        CardStatus::PartnerSuspended => Some(DeclineReason::CardPartnerSuspended),
        CardStatus::Active => None,
    };
    explain.push(
        Check::CardStatus,
        reason.is_none(),
        Seen::CardStatus { status },
    );
    reason.map_or(Ok(()), |r| Err(decline(r)))
}

fn check_profile_status(inputs: &Inputs<'_>, explain: &mut Explanation) -> Result<(), Decline> {
    let status = inputs.profile.status;
    let reason = match status {
        ProfileStatus::Active => None,
        ProfileStatus::Inactive => Some(DeclineReason::AccountInactive),
        ProfileStatus::Suspended => Some(DeclineReason::AccountSuspended),
    };
    explain.push(
        Check::ProfileStatus,
        reason.is_none(),
        Seen::ProfileStatus { status },
    );
    reason.map_or(Ok(()), |r| Err(decline(r)))
}

fn check_card_data(inputs: &Inputs<'_>, explain: &mut Explanation) -> Result<(), Decline> {
    let card = inputs.card;
    let matches = inputs.request.expiry.is_none_or(|e| e == card.expiry);
    let seen = Seen::Expiry {
        card_expired: false,
        message_matches: matches,
    };
    explain.push(Check::ExpiryDate, matches, seen);
    if !matches {
        return Err(decline(DeclineReason::IncorrectExpiryDate));
    }
    let Some(cvv2) = inputs.request.cvv2 else {
        return Ok(());
    };
    // A CVV2 sent for a card issued without one cannot be right.
    let ok = card.cvv2.as_ref().is_some_and(|stored| {
        stored.verify(
            &inputs.keys.cvv2_key,
            &inputs.request.pan,
            card.expiry,
            cvv2.as_bytes(),
        )
    });
    explain.push(Check::Cvv2, ok, Seen::None);
    if ok {
        Ok(())
    } else {
        Err(decline_detailed(
            DeclineReason::IncorrectCvv,
            DetailedDeclineReason::IncorrectCvv2,
        ))
    }
}

/// The permission a transaction needs: cash needs `ATM_WITHDRAWAL` whatever the entry mode;
/// anything else the permission of its channel.
pub fn required_permission(request: &Request) -> Channel {
    if request.txn_type.is_cash() {
        Channel::AtmWithdrawal
    } else {
        request.channel
    }
}

fn check_permission(inputs: &Inputs<'_>, explain: &mut Explanation) -> Result<(), Decline> {
    let channel = required_permission(inputs.request);
    let enabled = inputs.card.permissions.is_enabled(channel);
    explain.push(
        Check::Permission,
        enabled,
        Seen::Channel { channel, enabled },
    );
    if enabled {
        return Ok(());
    }
    let detailed = match channel {
        Channel::Ecom => Some(DetailedDeclineReason::EcomDisabled),
        Channel::PosChip => Some(DetailedDeclineReason::ChipDisabled),
        Channel::PosMagstripe => Some(DetailedDeclineReason::MagstripeDisabled),
        Channel::PosContactless => Some(DetailedDeclineReason::ContactlessDisabled),
        Channel::MobileWallets => Some(DetailedDeclineReason::WalletDisabled),
        Channel::AtmWithdrawal => None,
    };
    Err(Decline {
        reason: DeclineReason::PaymentMethodNotAllowed,
        detailed,
    })
}

fn check_pin(inputs: &Inputs<'_>, explain: &mut Explanation) -> (Result<(), Decline>, PinEffect) {
    let card = inputs.card;
    let request = inputs.request;
    let tries_before = card.pin_tries;
    let pin_given = request.pin_block.is_some();
    let seen = |pin_ok| Seen::PinTries {
        tries_before,
        pin_given,
        pin_ok,
    };
    if tries_before >= PIN_TRIES_MAX {
        explain.push(Check::Pin, false, seen(None));
        return (
            Err(decline(DeclineReason::PinEntryTriesExceeded)),
            PinEffect::None,
        );
    }
    let Some(block) = request.pin_block else {
        let required = request.txn_type.is_cash();
        explain.push(Check::Pin, !required, seen(None));
        if required {
            return (
                Err(decline(DeclineReason::SecurityPinEntryRequired)),
                PinEffect::None,
            );
        }
        return (Ok(()), PinEffect::None);
    };
    let ok = verify_pin(inputs, &block);
    explain.push(Check::Pin, ok, seen(Some(ok)));
    if ok {
        (Ok(()), PinEffect::Reset)
    } else {
        (Err(decline(DeclineReason::IncorrectPin)), PinEffect::Wrong)
    }
}

/// A PIN block that does not decrypt to a well-formed block counts as a wrong PIN, as does a
/// card issued without a PIN.
fn verify_pin(inputs: &Inputs<'_>, block: &[u8; 8]) -> bool {
    let Some(pvv) = inputs.card.pvv.as_ref() else {
        return false;
    };
    match decrypt_pin_block(&inputs.keys.zone_pin_key, &inputs.request.pan, block) {
        Ok(pin) => pvv.verify(&inputs.keys.pin_verification_key, &inputs.request.pan, &pin),
        Err(_) => false,
    }
}

/// A currency is supported when the card or a balance of the profile is in it, or when a
/// rate converts it into one of the profile's balances.
fn check_currency(inputs: &Inputs<'_>, explain: &mut Explanation) -> Result<(), Decline> {
    let currency = inputs.request.amount.currency;
    let supported = currency == inputs.card.currency || {
        let balances = inputs.book.balance_list(inputs.profile.id);
        balances.iter().any(|&(b, _)| b == currency)
            || balances
                .iter()
                .any(|&(b, _)| inputs.app.rate(b, currency).is_some())
    };
    explain.push(
        Check::Currency,
        supported,
        Seen::Amount {
            amount: inputs.request.amount,
        },
    );
    if supported {
        Ok(())
    } else {
        Err(decline(DeclineReason::NonSupportedCurrency))
    }
}

fn check_spend_controls(inputs: &Inputs<'_>, explain: &mut Explanation) -> Result<(), Decline> {
    let request = inputs.request;
    match inputs
        .app
        .failing_rule(request.mcc, request.amount.currency)
    {
        None => {
            explain.push(Check::SpendControls, true, Seen::None);
            Ok(())
        }
        Some(rule) => {
            explain.push(Check::SpendControls, false, Seen::Rule { rule });
            Err(decline(DeclineReason::TransactionTypeNotSupported))
        }
    }
}

/// The limit checks, card then profile, on `amount` (the whole amount of an authorisation,
/// or what an incremental authorisation adds).
pub fn check_limits(
    inputs: &Inputs<'_>,
    amount: Money,
    usage: &dyn UsageView,
    explain: &mut Explanation,
) -> Result<(), Decline> {
    check_card_limits(inputs, amount, usage, explain)?;
    check_profile_limits(inputs, amount, usage, explain)
}

fn check_card_limits(
    inputs: &Inputs<'_>,
    amount: Money,
    usage: &dyn UsageView,
    explain: &mut Explanation,
) -> Result<(), Decline> {
    let Some(limits) = inputs.card.limits.as_deref() else {
        return Ok(());
    };
    let windows = [
        (Granularity::Transaction, Check::CardTransactionLimit),
        (Granularity::Daily, Check::CardDailyLimit),
        (Granularity::Monthly, Check::CardMonthlyLimit),
        (Granularity::Lifetime, Check::CardLifetimeLimit),
    ];
    for (window, check) in windows {
        let Some(limit) = limits.get(window) else {
            continue;
        };
        let used = if window == Granularity::Transaction {
            Some(Money::zero(limit.currency))
        } else {
            usage.card_usage(inputs.card, window, inputs.now)
        };
        if let Err(seen) = within_limit(inputs.app, limit, used, amount) {
            explain.push(check, false, seen);
            return Err(card_limit_decline(window));
        }
        explain.push(check, true, Seen::Amount { amount });
    }
    Ok(())
}

fn card_limit_decline(window: Granularity) -> Decline {
    match window {
        Granularity::Transaction => decline(DeclineReason::PaymentMethodTransactionLimitExceeded),
        Granularity::Daily => decline_detailed(
            DeclineReason::PaymentMethodDailyLimitExceeded,
            DetailedDeclineReason::CardGeneralDailyLimitExceededChangeable,
        ),
        Granularity::Monthly => decline_detailed(
            DeclineReason::PaymentMethodMonthlyLimitExceeded,
            DetailedDeclineReason::CardGeneralMonthlyLimitExceededChangeable,
        ),
        Granularity::Lifetime => decline(DeclineReason::PaymentMethodLifetimeLimitExceeded),
    }
}

fn check_profile_limits(
    inputs: &Inputs<'_>,
    amount: Money,
    usage: &dyn UsageView,
    explain: &mut Explanation,
) -> Result<(), Decline> {
    let limit_type = limit_type_of(inputs.request);
    let Some(limit) = inputs.profile.limit(limit_type) else {
        return Ok(());
    };
    let windows = [
        (
            Granularity::Daily,
            limit.daily_minor,
            Check::ProfileDailyLimit,
        ),
        (
            Granularity::Monthly,
            limit.monthly_minor,
            Check::ProfileMonthlyLimit,
        ),
    ];
    for (window, value, check) in windows {
        let limit_money = Money::new(value, limit.currency);
        let used = usage.profile_usage(inputs.profile, limit_type, window, inputs.now);
        if let Err(seen) = within_limit(inputs.app, limit_money, used, amount) {
            explain.push(check, false, seen);
            let (reason, detailed) = match window {
                Granularity::Daily => (
                    DeclineReason::PaymentMethodDailyLimitExceeded,
                    DetailedDeclineReason::ProfileGeneralDailyLimitExceededChangeable,
                ),
                _ => (
                    DeclineReason::PaymentMethodMonthlyLimitExceeded,
                    DetailedDeclineReason::ProfileGeneralMonthlyLimitExceededChangeable,
                ),
            };
            return Err(decline_detailed(reason, detailed));
        }
        explain.push(check, true, Seen::Amount { amount });
    }
    Ok(())
}

/// The profile limit a transaction counts against.
pub fn limit_type_of(request: &Request) -> LimitType {
    limit_type_of_type(request.txn_type)
}

/// `ATM_WITHDRAWAL` for cash, `PURCHASE` for everything else.
pub fn limit_type_of_type(t: cardcore_core::TransactionType) -> LimitType {
    if t.is_cash() {
        LimitType::AtmWithdrawal
    } else {
        LimitType::Purchase
    }
}

/// usage + amount ≤ limit, all converted into the limit's currency. A limit reached exactly
/// is within it. An amount that cannot be converted (no rate) is over the limit: a limit must
/// not be bypassed by paying in an exotic currency.
fn within_limit(
    app: &AppData,
    limit: Money,
    used: Option<Money>,
    amount: Money,
) -> Result<(), Seen> {
    let target = limit.currency;
    let convert = |m: Money| -> Option<Money> {
        if m.currency == target || m.is_zero() {
            return Some(Money::new(m.amount_minor, target));
        }
        app.rate(m.currency, target)
            .and_then(|r| m.convert(target, r.rate).ok())
    };
    let used = used.map_or(Some(Money::zero(target)), convert);
    let amount_in_limit = convert(amount);
    let (Some(used), Some(amount_in_limit)) = (used, amount_in_limit) else {
        return Err(Seen::Limit {
            limit,
            usage: Money::zero(target),
            amount,
        });
    };
    let total = used
        .amount_minor
        .saturating_add(amount_in_limit.amount_minor);
    if total <= limit.amount_minor {
        Ok(())
    } else {
        Err(Seen::Limit {
            limit,
            usage: used,
            amount: amount_in_limit,
        })
    }
}
