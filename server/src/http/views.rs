//! What the API answers with: the reference's resources (`Card`, `CardOrder`,
//! `CardTransaction`, `Balance`, limits, rules) built from the engine's records. Field names
//! are the reference's; amounts are exact JSON numbers.

use cardcore_authz::funds::{BalanceView, TxnMoney, UsageReport};
use cardcore_authz::{Card, TxnRecord};
use cardcore_core::{
    CardStatus, CardToken, CardType, Channel, Currency, Expiry, Granularity, LimitType, Mcc, Money,
    Permissions, ProfileId, Rule, RuleOperation, RuleType, Timestamp, TransactionState,
    TransactionType, TxnId,
};
use chrono::{Datelike, NaiveDate};
use serde::Serialize;

use super::json::{AmountOut, Number, ValueOut};

/// `clientId` of the cards this service issues: the issuer itself.
pub const ISSUER_CLIENT_ID: &str = "cardcore";
/// The card scheme of every card program offered.
pub const SCHEME: &str = "VISA";

/// A card program: what a card order asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Program {
    pub name: &'static str,
    pub card_type: CardType,
    pub default_currency: Currency,
}

/// The programs offered: a virtual and a physical debit card, as the reference names them.
pub const PROGRAMS: [Program; 2] = [
    Program {
        name: "VISA_DEBIT_BUSINESS_UK_1_CARDS_API",
        card_type: CardType::Virtual,
        default_currency: Currency::GBP,
    },
    Program {
        name: "VISA_DEBIT_BUSINESS_UK_1_PHYSICAL_CARDS_API",
        card_type: CardType::Physical,
        default_currency: Currency::GBP,
    },
];

pub fn program_named(name: &str) -> Option<Program> {
    PROGRAMS.into_iter().find(|p| p.name == name)
}

/// The program a card belongs to, from its type.
pub fn program_of(card_type: CardType) -> Program {
    match card_type {
        CardType::Virtual => PROGRAMS[0],
        CardType::Physical => PROGRAMS[1],
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProgramJson {
    pub name: &'static str,
    pub scheme: &'static str,
    pub default_currency: Currency,
    pub card_type: &'static str,
}

impl ProgramJson {
    pub fn of(program: Program, currency: Currency) -> ProgramJson {
        ProgramJson {
            name: program.name,
            scheme: SCHEME,
            default_currency: currency,
            card_type: match program.card_type {
                CardType::Virtual => "VIRTUAL_NON_UPGRADEABLE",
                CardType::Physical => "PHYSICAL",
            },
        }
    }
}

#[derive(Debug, Serialize)]
pub struct StatusValue {
    pub value: CardStatus,
}

/// Details a card order adds to a card, which the engine does not keep.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HolderDetails {
    pub card_holder_name: Option<String>,
    pub phone_number: Option<String>,
}

/// The reference's `Card`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CardJson {
    pub token: CardToken,
    pub profile_id: ProfileId,
    pub client_id: &'static str,
    pub status: StatusValue,
    pub card_holder_name: Option<String>,
    pub expiry_date: String,
    pub last_four_digits: String,
    pub bank_identification_number: String,
    /// First six and last four digits; the PAN itself is never shown.
    pub masked_pan: String,
    pub phone_number: Option<String>,
    pub card_program: ProgramJson,
    pub creation_time: String,
    pub modification_time: String,
}

impl CardJson {
    pub fn of(card: &Card, details: HolderDetails) -> CardJson {
        let masked = &card.masked_pan;
        CardJson {
            token: card.token,
            profile_id: card.profile,
            client_id: ISSUER_CLIENT_ID,
            status: StatusValue { value: card.status },
            card_holder_name: details.card_holder_name,
            expiry_date: expiry_date(card.expiry),
            last_four_digits: masked.last4().to_owned(),
            bank_identification_number: masked.first6().to_owned(),
            masked_pan: masked.to_string(),
            phone_number: details.phone_number,
            card_program: ProgramJson::of(program_of(card.card_type), card.currency),
            creation_time: card.issued.to_rfc3339(),
            modification_time: card.modified.to_rfc3339(),
        }
    }
}

/// The last moment a card is valid: the end of its expiry month, UTC.
pub fn expiry_date(expiry: Expiry) -> String {
    let first = NaiveDate::from_ymd_opt(i32::from(expiry.year), u32::from(expiry.month), 1);
    let last_day = first
        .and_then(|d| d.checked_add_months(chrono::Months::new(1)))
        .and_then(|d| d.pred_opt())
        .map_or(28, |d| d.day());
    format!(
        "{:04}-{:02}-{:02}T23:59:59.999Z",
        expiry.year, expiry.month, last_day
    )
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PermissionJson {
    #[serde(rename = "type")]
    pub channel: Channel,
    pub is_enabled: bool,
    pub is_locked: bool,
}

#[derive(Debug, Serialize)]
pub struct PermissionsJson {
    pub permissions: Vec<PermissionJson>,
}

impl PermissionsJson {
    pub fn of(permissions: Permissions) -> PermissionsJson {
        PermissionsJson {
            permissions: permissions
                .iter()
                .map(|(channel, is_enabled, is_locked)| PermissionJson {
                    channel,
                    is_enabled,
                    is_locked,
                })
                .collect(),
        }
    }
}

/// The reference's `CardTransaction`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TransactionJson {
    pub id: TxnId,
    pub card_token: CardToken,
    #[serde(rename = "type")]
    pub txn_type: TransactionType,
    pub state: TransactionState,
    pub decline_reason: Option<&'static str>,
    pub detailed_decline_reason: Option<&'static str>,
    pub creation_time: String,
    pub modification_time: String,
    pub purge_time: Option<String>,
    pub transaction_amount: AmountOut,
    pub fees: Vec<AmountOut>,
    pub transaction_amount_with_fees: AmountOut,
    /// What is authorised now (the hold, in the transaction currency).
    pub authorised_amount: AmountOut,
    /// What clearing posted, once cleared.
    pub cleared_amount: Option<AmountOut>,
    pub merchant: MerchantJson,
    pub authorisation_method: &'static str,
    pub approval_code: Option<String>,
    pub response_code: String,
    pub retrieval_reference_number: String,
    /// Present only when one transaction is read by id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub debits: Option<Vec<DebitJson>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credits: Option<Vec<CreditJson>>,
    /// Why the decision came out as it did: the checks that ran in precedence order, and
    /// what the deciding one compared. Present only when one transaction is read by id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<Vec<cardcore_authz::explain::CheckLine>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MerchantJson {
    pub name: String,
    pub location: LocationJson,
    pub category: CategoryJson,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LocationJson {
    pub country: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct CategoryJson {
    pub code: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DebitJson {
    pub balance_id: u64,
    pub debited_amount: AmountOut,
    pub for_amount: AmountOut,
    pub rate: Number,
    pub fee: AmountOut,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreditJson {
    pub balance_id: u64,
    pub credited_amount: AmountOut,
}

/// The amount a transaction stands for: cleared, authorised or asked for, by state.
pub fn current_amount(record: &TxnRecord) -> Money {
    match record.state {
        TransactionState::Completed => record.cleared.unwrap_or(record.authorised),
        TransactionState::InProgress => record.authorised,
        _ => record.requested,
    }
}

impl TransactionJson {
    pub fn of(record: &TxnRecord, money: Option<&TxnMoney>) -> TransactionJson {
        let amount = AmountOut::from(current_amount(record));
        let country = record.country.as_str().into_owned();
        TransactionJson {
            id: record.id,
            card_token: record.card,
            txn_type: record.txn_type,
            state: record.state,
            decline_reason: record.decline.map(|d| d.reason.code()),
            detailed_decline_reason: record.decline.and_then(|d| d.detailed).map(|d| d.code()),
            creation_time: record.created.to_rfc3339(),
            modification_time: record.modified.to_rfc3339(),
            purge_time: record.purge_time.map(Timestamp::to_rfc3339),
            transaction_amount: amount,
            fees: Vec::new(),
            transaction_amount_with_fees: amount,
            authorised_amount: record.authorised.into(),
            cleared_amount: record.cleared.map(AmountOut::from),
            merchant: MerchantJson {
                name: record.merchant.as_str().into_owned(),
                location: LocationJson {
                    country: (!country.is_empty()).then_some(country),
                },
                category: CategoryJson {
                    code: mcc_text(record.mcc),
                },
            },
            authorisation_method: authorisation_method(record.channel),
            approval_code: record.approval_code_str().map(str::to_owned),
            response_code: record.response_code.as_str().to_owned(),
            retrieval_reference_number: record.rrn.as_str().into_owned(),
            debits: money.map(debits_of),
            credits: money.map(credits_of),
            explanation: money.map(|_| record.explanation.lines()),
        }
    }
}

fn mcc_text(mcc: Mcc) -> String {
    mcc.to_string()
}

/// How the card was used, in the reference's words.
fn authorisation_method(channel: Channel) -> &'static str {
    match channel {
        Channel::Ecom => "MANUAL_ENTRY",
        Channel::PosChip => "CHIP_AND_PIN",
        Channel::PosMagstripe => "MAG_STRIPE",
        Channel::PosContactless => "CONTACTLESS",
        Channel::AtmWithdrawal => "CHIP_AND_PIN",
        Channel::MobileWallets => "MOBILE_WALLET",
    }
}

fn debits_of(money: &TxnMoney) -> Vec<DebitJson> {
    money
        .debits
        .iter()
        .map(|d| DebitJson {
            balance_id: d.balance.0,
            debited_amount: d.amount.into(),
            for_amount: d.covers.into(),
            rate: Number(d.rate),
            fee: d.fee.into(),
        })
        .collect()
}

fn credits_of(money: &TxnMoney) -> Vec<CreditJson> {
    money
        .credits
        .iter()
        .map(|(balance, amount)| CreditJson {
            balance_id: balance.0,
            credited_amount: (*amount).into(),
        })
        .collect()
}

/// The reference's `Balance` (a STANDARD balance).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BalanceJson {
    pub id: u64,
    pub currency: Currency,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub name: Option<String>,
    /// Available to spend.
    pub amount: ValueOut,
    /// Held by authorisations not yet cleared.
    pub reserved_amount: ValueOut,
    /// Available plus reserved.
    pub cash_amount: ValueOut,
    pub total_worth: ValueOut,
    pub visible: bool,
    /// Below zero through a stand-in or an over-clearing.
    pub overdrawn: bool,
}

impl BalanceJson {
    pub fn of(view: &BalanceView) -> BalanceJson {
        BalanceJson {
            id: view.id.0,
            currency: view.currency,
            kind: "STANDARD",
            name: None,
            amount: view.available.into(),
            reserved_amount: view.reserved.into(),
            cash_amount: view.cash.into(),
            total_worth: view.cash.into(),
            visible: true,
            overdrawn: view.overdrawn,
        }
    }
}

/// One limit window as the reference shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WindowJson {
    pub value: Option<AmountOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<AmountOut>,
    pub usage: AmountOut,
    pub reset_at: Option<String>,
}

impl WindowJson {
    pub fn of(report: &UsageReport) -> WindowJson {
        WindowJson {
            value: report.value.map(AmountOut::from),
            max: report.max.map(AmountOut::from),
            usage: report.usage.into(),
            reset_at: report.reset_at.map(Timestamp::to_rfc3339),
        }
    }
}

/// The reference's `card-limits`: each granularity, or `null` when no limit is set.
#[derive(Debug, Default, Serialize)]
pub struct CardLimitsJson {
    pub transaction: Option<WindowJson>,
    pub daily: Option<WindowJson>,
    pub monthly: Option<WindowJson>,
    pub lifetime: Option<WindowJson>,
}

impl CardLimitsJson {
    pub fn of(reports: &[UsageReport]) -> CardLimitsJson {
        let mut out = CardLimitsJson::default();
        for report in reports.iter().filter(|r| r.value.is_some()) {
            let window = Some(WindowJson::of(report));
            match report.granularity {
                Granularity::Transaction => out.transaction = window,
                Granularity::Daily => out.daily = window,
                Granularity::Monthly => out.monthly = window,
                Granularity::Lifetime => out.lifetime = window,
            }
        }
        out
    }
}

#[derive(Debug, Default, Serialize)]
pub struct AggregateWindowJson {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub daily: Option<WindowJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monthly: Option<WindowJson>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProfileLimitJson {
    #[serde(rename = "type")]
    pub limit_type: LimitType,
    pub aggregate_window: AggregateWindowJson,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProfileLimitsJson {
    pub spend_limits: Vec<ProfileLimitJson>,
}

impl ProfileLimitsJson {
    pub fn of(limits: &[(LimitType, Vec<UsageReport>)]) -> ProfileLimitsJson {
        let spend_limits = limits
            .iter()
            .map(|(limit_type, reports)| {
                let mut window = AggregateWindowJson::default();
                for report in reports {
                    match report.granularity {
                        Granularity::Daily => window.daily = Some(WindowJson::of(report)),
                        Granularity::Monthly => window.monthly = Some(WindowJson::of(report)),
                        _ => {}
                    }
                }
                ProfileLimitJson {
                    limit_type: *limit_type,
                    aggregate_window: window,
                }
            })
            .collect();
        ProfileLimitsJson { spend_limits }
    }
}

/// The reference's `rule`.
#[derive(Debug, Serialize)]
pub struct RuleJson {
    pub id: u64,
    #[serde(rename = "type")]
    pub rule_type: RuleType,
    pub operation: RuleOperation,
    pub description: String,
    pub values: Vec<String>,
}

impl RuleJson {
    pub fn of(rule: &Rule) -> RuleJson {
        RuleJson {
            id: rule.id.0,
            rule_type: rule.rule_type(),
            operation: rule.operation,
            description: rule.description.clone(),
            values: rule.value_strings(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_date_is_the_last_moment_of_the_month() {
        let cases = [
            ((2029, 7), "2029-07-31T23:59:59.999Z"),
            ((2028, 2), "2028-02-29T23:59:59.999Z"),
            ((2027, 2), "2027-02-28T23:59:59.999Z"),
            ((2030, 12), "2030-12-31T23:59:59.999Z"),
        ];
        for ((year, month), expected) in cases {
            assert_eq!(expiry_date(Expiry::new(year, month).unwrap()), expected);
        }
    }

    #[test]
    fn programs_are_found_by_name_and_type() {
        for p in PROGRAMS {
            assert_eq!(program_named(p.name), Some(p));
            assert_eq!(program_of(p.card_type), p);
        }
        assert_eq!(program_named("NO_SUCH_PROGRAM"), None);
    }
}
