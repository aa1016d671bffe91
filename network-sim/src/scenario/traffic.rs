//! Traffic steps: the runner builds every message in full, including the identifiers a
//! network would assign, so every target receives exactly the same messages.
//!
//! Identifiers are deterministic: STANs count up from 1 within a file, the transmission
//! time is the scenario clock, and the RRN is built from both (`YDDDhh` + STAN, the common
//! retrieval reference layout). Follow-ups (incremental, clearing, reversal) copy the card,
//! merchant and channel of the authorisation they refer to and carry its identifiers; a
//! duplicate is the stored message sent again unchanged.

use cardcore_core::{Currency, Money, Timestamp, TxnId};
use chrono::{Datelike, Timelike};
use rust_decimal::Decimal;

use super::expect;
use super::report::StepOutcome;
use super::runner::{money, Runner, StepError, StepResult, TxnRecord};
use super::step::{AuthStep, Name, TrafficExpect, TrafficOp};
use super::target::*;

/// DE 32 of every message the runner builds.
pub const SCENARIO_ACQUIRER_ID: &str = "400001";
/// DE 43 name when a step gives no `merchant`.
pub const DEFAULT_MERCHANT: &str = "CARDCORE SCENARIO";
/// DE 43 country when a step gives no `country`.
pub const DEFAULT_COUNTRY: &str = "GB";
/// The largest STAN (DE 11 has six digits); the count starts again at 1 after it.
pub const STAN_MAX: u32 = 999_999;

/// What one traffic step sent and got back.
struct Sent {
    outcome: TrafficOutcome,
    /// The transaction the message created or acted on, to read for `state` and reasons.
    txn: Option<TxnRef>,
}

impl Runner<'_> {
    /// Sends one traffic step and checks its `expect`.
    pub(super) fn traffic(
        &mut self,
        op: &TrafficOp,
        expect: Option<&TrafficExpect>,
    ) -> StepOutcome {
        let sent = match self.send_step(op) {
            Ok(sent) => sent,
            Err(e) => return e.into_outcome(),
        };
        let Some(expect) = expect else {
            return StepOutcome::Unchecked;
        };
        let view = match sent.txn.filter(|_| expect.needs_transaction()) {
            Some(txn) => match self.target.transaction(txn) {
                Ok(view) => Some(view),
                Err(e) => return StepError::from(e).into_outcome(),
            },
            None => None,
        };
        let problems = expect::check_traffic(expect, &sent.outcome, view.as_ref());
        if problems.is_empty() {
            StepOutcome::Passed
        } else {
            StepOutcome::Failed(problems)
        }
    }

    fn send_step(&mut self, op: &TrafficOp) -> StepResult<Sent> {
        match op {
            TrafficOp::Auth(a) => {
                let kind = if a.single_message {
                    MessageKind::Financial
                } else {
                    MessageKind::Authorization {
                        pre_auth: a.pre_auth,
                    }
                };
                self.authorize(a, kind)
            }
            TrafficOp::Advice(a) => self.authorize(
                a,
                MessageKind::Advice {
                    pre_auth: a.pre_auth,
                },
            ),
            TrafficOp::Incremental {
                txn,
                of,
                amount,
                currency,
            } => {
                if self.state.txns.contains_key(txn) {
                    return Err(txn_taken(txn));
                }
                let root = self.root_of(of)?;
                let message =
                    self.follow_up(MessageKind::Incremental, &root, *amount, *currency)?;
                self.send_named(txn, message, &root)
            }
            TrafficOp::Clear {
                of,
                amount,
                currency,
            } => self.send_follow_up(MessageKind::Clearing, of, *amount, *currency),
            TrafficOp::Reverse {
                of,
                amount,
                currency,
            } => self.send_follow_up(MessageKind::Reversal, of, *amount, *currency),
            TrafficOp::Duplicate { of } => {
                let record = self.txn_record(of)?;
                self.send_card_message(record.message, record.card, record.txn_id)
            }
            TrafficOp::Raw { bytes } => {
                let outcome = self.target.send(&TrafficMessage::Raw(bytes.0.clone()))?;
                let txn = outcome.transaction_id.map(|id| TxnRef { id, card: None });
                Ok(Sent { outcome, txn })
            }
        }
    }

    /// `auth` and `advice`: a new message on a card, recorded under its `txn` name.
    fn authorize(&mut self, a: &AuthStep, kind: MessageKind) -> StepResult<Sent> {
        if self.state.txns.contains_key(&a.txn) {
            return Err(txn_taken(&a.txn));
        }
        let card = self.card_info(&a.card)?;
        let message = CardMessage {
            kind,
            pan: card.pan,
            amount: message_amount(a.amount, a.currency)?,
            processing: a.processing,
            entry: a.entry,
            mcc: a.mcc,
            pin: a.pin.clone(),
            cvv2: a.cvv2.clone(),
            expiry: a.expiry.unwrap_or(card.expiry),
            merchant: a
                .merchant
                .clone()
                .unwrap_or_else(|| DEFAULT_MERCHANT.to_owned()),
            country: a
                .country
                .clone()
                .unwrap_or_else(|| DEFAULT_COUNTRY.to_owned()),
            ids: self.next_ids(),
            original: None,
        };
        let record = TxnRecord {
            card: card.card,
            message,
            approval_code: None,
            txn_id: None,
            root: a.txn.clone(),
        };
        self.send_named(&a.txn, record.message.clone(), &record)
    }

    /// Sends a message that gets a `txn` name, and records it with its root authorisation
    /// (`root` is the record itself for an `auth` or `advice`).
    fn send_named(
        &mut self,
        name: &Name,
        message: CardMessage,
        root: &TxnRecord,
    ) -> StepResult<Sent> {
        let sent = self.send_card_message(message.clone(), root.card, root.txn_id)?;
        let record = TxnRecord {
            card: root.card,
            message,
            approval_code: sent.outcome.approval_code.clone(),
            txn_id: sent.txn.map(|t| t.id),
            root: root.root.clone(),
        };
        self.state.txns.insert(name.clone(), record);
        Ok(sent)
    }

    fn send_follow_up(
        &mut self,
        kind: MessageKind,
        of: &Name,
        amount: Decimal,
        currency: Currency,
    ) -> StepResult<Sent> {
        let root = self.root_of(of)?;
        let message = self.follow_up(kind, &root, amount, currency)?;
        self.send_card_message(message, root.card, root.txn_id)
    }

    /// Sends a card message; the transaction it acted on is the one the target names, or
    /// else `known`, the one the runner already knows for it.
    fn send_card_message(
        &mut self,
        message: CardMessage,
        card: CardRef,
        known: Option<TxnId>,
    ) -> StepResult<Sent> {
        let outcome = self.target.send(&TrafficMessage::Card(Box::new(message)))?;
        let txn = outcome.transaction_id.or(known).map(|id| TxnRef {
            id,
            card: Some(card),
        });
        Ok(Sent { outcome, txn })
    }

    /// The authorisation that `of` is or adds to.
    fn root_of(&self, of: &Name) -> StepResult<TxnRecord> {
        let record = self.txn_record(of)?;
        if record.root == *of {
            Ok(record)
        } else {
            self.txn_record(&record.root)
        }
    }

    /// A follow-up of `root`: same card and merchant, no PIN or CVV2, the original's ids.
    fn follow_up(
        &mut self,
        kind: MessageKind,
        root: &TxnRecord,
        amount: Decimal,
        currency: Currency,
    ) -> StepResult<CardMessage> {
        let o = &root.message;
        Ok(CardMessage {
            kind,
            pan: o.pan,
            amount: message_amount(amount, currency)?,
            processing: o.processing,
            entry: o.entry,
            mcc: o.mcc,
            pin: None,
            cvv2: None,
            expiry: o.expiry,
            merchant: o.merchant.clone(),
            country: o.country.clone(),
            ids: self.next_ids(),
            original: Some(OriginalRef {
                kind: o.kind,
                ids: o.ids.clone(),
                amount: o.amount,
                approval_code: root.approval_code.clone(),
                transaction_id: root.txn_id,
            }),
        })
    }

    /// The next message's identifiers.
    fn next_ids(&mut self) -> MessageIds {
        self.state.stan = if self.state.stan >= STAN_MAX {
            1
        } else {
            self.state.stan + 1
        };
        message_ids(self.state.stan, self.state.clock)
    }
}

/// The identifiers of the message with this STAN sent at `now`.
pub fn message_ids(stan: u32, now: Timestamp) -> MessageIds {
    let t = now.to_datetime();
    let rrn = format!(
        "{}{:03}{:02}{:06}",
        t.year().rem_euclid(10),
        t.ordinal(),
        t.hour(),
        stan % (STAN_MAX + 1)
    );
    MessageIds {
        stan,
        transmission_time: now,
        rrn,
        acquirer_id: SCENARIO_ACQUIRER_ID.to_owned(),
    }
}

/// An amount for a message: exact in its currency and not negative (DE 4 is unsigned).
fn message_amount(amount: Decimal, currency: Currency) -> StepResult<Money> {
    let m = money(amount, currency)?;
    if m.is_negative() {
        return Err(StepError::Scenario(format!(
            "amount {amount} is negative; messages carry amounts of 0 or more"
        )));
    }
    Ok(m)
}

fn txn_taken(name: &Name) -> StepError {
    StepError::Scenario(format!(
        "txn {name} is already used: every auth, advice and incremental needs its own name"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::runner::SCENARIO_START;

    #[test]
    fn rrn_is_twelve_characters_from_clock_and_stan() {
        let ids = message_ids(42, SCENARIO_START);
        assert_eq!(ids.rrn, "601510000042");
        assert_eq!(ids.rrn.len(), 12);
        assert_eq!(ids.transmission_time, SCENARIO_START);
        assert_eq!(message_ids(STAN_MAX, SCENARIO_START).rrn.len(), 12);
    }
}
