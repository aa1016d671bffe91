//! The transaction lifecycle: authorisation (and its incremental and repeat forms), stand-in
//! advice, single-message financial requests, clearing, reversal, refunds and hold expiry.
//! Each handler decides, then emits the events that record what it decided.

use cardcore_core::decline::{Decline, DeclineReason, DetailedDeclineReason, ResponseCode};
use cardcore_core::{CardToken, Money, Timestamp, TransactionState, TxnId};

use cardcore_ledger::book::{Authorised, HoldPlaced, LedgerEvent, UsageEnd};

use crate::app::AppData;
use crate::events::EngineEvent;
use crate::explain::{Check, Explanation, Seen};
use crate::funds::{Funding, FundsShort};
use crate::partition::{approval_code, Partition};
use crate::pipeline::{check_access, check_limits, Inputs, PinEffect};
use crate::request::{MessageKind, Request};
use crate::state::{Answer, Card, TxnFlags, TxnRecord};

/// A request, the card it is for and the application data it is decided under, resolved
/// once per message.
#[derive(Clone, Copy)]
struct Msg<'a> {
    request: &'a Request,
    card: CardToken,
    app: &'a AppData,
}

impl Partition {
    /// Handles one network request at engine time `now` and returns the answer. Every
    /// change it makes is in the pending events (see [`Partition::take_encoded`]).
    pub fn handle(&mut self, request: &Request, now: Timestamp) -> Answer {
        self.expire_due(now, EXPIRIES_PER_MESSAGE);
        if let Some(answer) = self.answers.get(&request.key) {
            // The same message again: the same answer, and nothing changes.
            return *answer;
        }
        // The card is looked up once, and the application data loaded once; everything
        // after addresses the card by token.
        let fingerprint = request.pan.fingerprint(&self.config.pan_key);
        let Some(card) = self.card_by_fingerprint(fingerprint) else {
            return Partition::bare_answer(ResponseCode::UNKNOWN_CARD);
        };
        let (profile, token) = (card.profile, card.token);
        self.pending_profile = profile;
        let app = self.app_data();
        let m = Msg {
            request,
            card: token,
            app: &app,
        };
        match request.kind {
            MessageKind::Authorization if request.original.is_some() => self.incremental(m, now),
            MessageKind::Authorization | MessageKind::Financial => self.authorize(m, now),
            MessageKind::Advice => self.advice(m, now),
            MessageKind::Clearing => self.clearing(m, now),
            MessageKind::Reversal => self.reversal(m, now),
        }
    }

    fn new_record(&self, m: Msg<'_>, now: Timestamp) -> Option<TxnRecord> {
        let card = self.cards.get(&m.card)?;
        Some(new_record(m.request, card, self.peek_txn_id(), now))
    }

    /// Runs the pipeline on a message: the checks before the money, then, when `money` says
    /// what is to be funded and how, the limits on that amount and its funding plan, written
    /// where `money` says (a new hold straight into the event that will journal it). Changes
    /// nothing: the PIN try count to record comes back with the decision.
    fn decide(
        &self,
        m: Msg<'_>,
        now: Timestamp,
        money: Option<(&TxnRecord, Money, PlanInto<'_>)>,
        explain: &mut Explanation,
    ) -> (Result<(), Decline>, Option<PinCount>) {
        let processing = Decline::new(DeclineReason::ProcessingError);
        let Some(card) = self.cards.get(&m.card) else {
            return (Err(processing), None);
        };
        let Some(profile) = self.profiles.get(&card.profile) else {
            return (Err(processing), None);
        };
        let inputs = Inputs {
            request: m.request,
            card,
            profile,
            app: m.app,
            keys: &self.config.keys,
            now,
            book: &self.book,
        };
        let (access, effect) = check_access(&inputs, explain);
        let result = access.and_then(|()| {
            let Some((record, amount, into)) = money else {
                return Ok(());
            };
            check_limits(&inputs, amount, self, explain)?;
            self.check_funds(m.app, card, record, amount, into, explain)
        });
        (result, pin_count(card, effect))
    }

    /// Records a PIN check's effect on the try counter.
    fn record_pin(&mut self, pin: Option<PinCount>) {
        if let Some(PinCount { card, count }) = pin {
            self.emit(EngineEvent::PinTriesSet { card, count });
        }
    }

    /// 0100 and 0200: the whole pipeline, then a hold (0100) or a posting (0200).
    fn authorize(&mut self, m: Msg<'_>, now: Timestamp) -> Answer {
        let request = m.request;
        let Some(card) = self.cards.get(&m.card) else {
            return Partition::bare_answer(ResponseCode::UNKNOWN_CARD);
        };
        let mut record = new_record(request, card, self.peek_txn_id(), now);
        let mut explain = Explanation::new();
        let mut approval = Authorised::empty(record.id, record.profile, request.amount.currency);
        let mut posting = None;
        let posts = request.kind == MessageKind::Financial;
        let into = if posts {
            PlanInto::Event(Funding::Post, &mut posting)
        } else {
            PlanInto::Hold(&mut approval.hold)
        };
        // A refund moves no money until it clears; a zero amount (account verification)
        // moves none at all. Neither needs limits or funds.
        let moves_money = !request.txn_type.is_credit() && !request.amount.is_zero();
        let money = moves_money.then_some((&record, request.amount, into));
        let (decided, pin) = self.decide(m, now, money, &mut explain);
        self.record_pin(pin);
        record.explanation = explain;
        if let Err(decline) = decided {
            return self.record_decline(&mut record, decline);
        }
        let planned = match (moves_money, posts, &posting) {
            (false, _, _) => Planned::Nothing,
            (true, false, _) => Planned::Hold(&mut approval),
            (true, true, Some(event)) => Planned::Event(event),
            (true, true, None) => Planned::Nothing,
        };
        self.record_approval(&mut record, request, planned, now)
    }

    fn check_funds(
        &self,
        app: &AppData,
        card: &Card,
        record: &TxnRecord,
        amount: Money,
        into: PlanInto<'_>,
        explain: &mut Explanation,
    ) -> Result<(), Decline> {
        let planned = match into {
            PlanInto::Hold(hold) => self.plan_hold_into(card, record, amount, app, hold),
            PlanInto::Event(funding, out) => self
                .plan_funding(card, record, amount, funding, app)
                .map(|event| *out = Some(event)),
        };
        match planned {
            Ok(()) => {
                explain.push(Check::Funds, true, Seen::Amount { amount });
                Ok(())
            }
            Err(short) => {
                let available = amount.checked_sub(short.shortfall).unwrap_or(amount);
                explain.push(
                    Check::Funds,
                    false,
                    Seen::Funds {
                        available,
                        needed: amount,
                    },
                );
                Err(funds_decline(short))
            }
        }
    }

    fn record_decline(&mut self, record: &mut TxnRecord, decline: Decline) -> Answer {
        record.state = TransactionState::Declined;
        record.decline = Some(decline);
        record.response_code = decline.field39();
        // Recorded with the transaction: applying it records the answer for duplicates.
        self.emit_txn(record);
        Answer::of(record)
    }

    fn record_approval(
        &mut self,
        record: &mut TxnRecord,
        request: &Request,
        planned: Planned<'_>,
        now: Timestamp,
    ) -> Answer {
        let amount = request.amount;
        record.approval_code = Some(approval_code(record.id));
        record.authorised = amount;
        record.response_code = ResponseCode::APPROVED;
        match planned {
            Planned::Hold(approval) => self.hold_and_count(record, approval, amount, now),
            Planned::Event(event) => {
                self.emit(EngineEvent::Ledger(event.clone()));
                self.usage_add(record, amount, now);
            }
            Planned::Nothing => {}
        }
        if request.kind == MessageKind::Financial || amount.is_zero() {
            record.state = TransactionState::Completed;
            record.cleared = Some(amount);
            if request.txn_type.is_credit() {
                // A refund credits money and leaves limit usage as it is: there is no
                // usage to close, and closing would count it as spending.
                self.funds_credit(record, amount);
            } else {
                self.usage_close(record, amount, now);
            }
        } else {
            record.state = TransactionState::InProgress;
            record.purge_time = Some(now.plus_ms(self.hold_ttl_ms(record)));
        }
        // Recorded with the transaction: applying it records the answer for duplicates.
        self.emit_txn(record);
        Answer::of(record)
    }

    fn hold_ttl_ms(&self, record: &TxnRecord) -> i64 {
        if record.flags.pre_auth {
            self.config.lifecycle.pre_auth_hold_ttl_ms
        } else {
            self.config.lifecycle.hold_ttl_ms
        }
    }

    /// 0120: the network approved in stand-in; record it and hold the money whatever the
    /// checks would have said, even into a negative balance (flagged).
    fn advice(&mut self, m: Msg<'_>, now: Timestamp) -> Answer {
        let request = m.request;
        let Some(mut record) = self.new_record(m, now) else {
            return Partition::bare_answer(ResponseCode::UNKNOWN_CARD);
        };
        record.flags.stand_in = true;
        record.explanation.push(
            Check::StandIn,
            true,
            Seen::Amount {
                amount: request.amount,
            },
        );
        record.approval_code = Some(approval_code(record.id));
        record.authorised = request.amount;
        record.state = TransactionState::InProgress;
        record.purge_time = Some(now.plus_ms(self.hold_ttl_ms(&record)));
        if !request.txn_type.is_credit() {
            self.funds_forced_hold(&record, request.amount);
            self.usage_add(&record, request.amount, now);
        }
        let answer = Answer::of(&record);
        // Recorded with the transaction: applying it records the answer for duplicates.
        self.emit(EngineEvent::Txn(record));
        answer
    }

    /// The transaction a follow-up message refers to, or the answer to give when none fits.
    fn original(&self, m: Msg<'_>) -> Result<TxnRecord, ResponseCode> {
        let key = m.request.original.ok_or(ResponseCode::UNKNOWN_ORIGINAL)?;
        // The answer to the original message names its transaction.
        let id = self
            .answers
            .get(&key)
            .and_then(|a| a.txn)
            .ok_or(ResponseCode::UNKNOWN_ORIGINAL)?;
        let record = self.txns.get(&id).ok_or(ResponseCode::UNKNOWN_ORIGINAL)?;
        // The follow-up must be for the same card as its original.
        if m.card != record.card {
            return Err(ResponseCode::UNKNOWN_ORIGINAL);
        }
        if record.state == TransactionState::Declined {
            return Err(ResponseCode::UNKNOWN_ORIGINAL);
        }
        Ok(*record)
    }

    /// Records a refused follow-up: the answer only, nothing else changes.
    fn refuse(&mut self, request: &Request, code: ResponseCode, txn: Option<TxnId>) -> Answer {
        self.refuse_with(request, code, None, txn)
    }

    fn refuse_with(
        &mut self,
        request: &Request,
        code: ResponseCode,
        decline: Option<Decline>,
        txn: Option<TxnId>,
    ) -> Answer {
        let answer = Answer {
            response_code: code,
            decline,
            txn,
            approval_code: None,
            approved_amount: None,
        };
        self.answer(request.key, answer)
    }

    /// 0100 with DE 90: adds to an authorisation's hold after the same checks on the added
    /// amount.
    fn incremental(&mut self, m: Msg<'_>, now: Timestamp) -> Answer {
        let request = m.request;
        let mut record = match self.original(m) {
            Ok(r) => r,
            Err(code) => return self.refuse(request, code, None),
        };
        if record.state != TransactionState::InProgress || record.txn_type.is_credit() {
            return self.refuse(request, ResponseCode::INVALID_TRANSACTION, Some(record.id));
        }
        if request.amount.currency != record.requested.currency {
            return self.refuse(request, ResponseCode::INVALID_TRANSACTION, Some(record.id));
        }
        let mut explain = Explanation::new();
        let added = request.amount;
        let mut grown = None;
        let money = Some((&record, added, PlanInto::Event(Funding::Grow, &mut grown)));
        let (decided, pin) = self.decide(m, now, money, &mut explain);
        self.record_pin(pin);
        if let Err(decline) = decided {
            return self.refuse_with(request, decline.field39(), Some(decline), Some(record.id));
        }
        let Some(planned) = grown else {
            return self.refuse(request, ResponseCode::INVALID_TRANSACTION, Some(record.id));
        };
        let (Ok(requested), Ok(authorised)) = (
            record.requested.checked_add(added),
            record.authorised.checked_add(added),
        ) else {
            return self.refuse(request, ResponseCode::INVALID_TRANSACTION, Some(record.id));
        };
        self.emit(EngineEvent::Ledger(planned));
        record.requested = requested;
        record.authorised = authorised;
        // The added amount counts today, whenever the original was authorised.
        self.usage_grow(&record, added, now);
        record.modified = now;
        record.purge_time = Some(now.plus_ms(self.hold_ttl_ms(&record)));
        let answer = Answer {
            response_code: ResponseCode::APPROVED,
            decline: None,
            txn: Some(record.id),
            approval_code: record.approval_code,
            approved_amount: Some(added),
        };
        self.emit(EngineEvent::Txn(record));
        self.answer(request.key, answer)
    }

    /// 0220: posts the cleared amount, lower or higher than the hold.
    fn clearing(&mut self, m: Msg<'_>, now: Timestamp) -> Answer {
        let request = m.request;
        let mut record = match self.original(m) {
            Ok(r) => r,
            Err(code) => return self.refuse(request, code, None),
        };
        if record.state == TransactionState::Completed {
            return self.refuse(request, ResponseCode::INVALID_TRANSACTION, Some(record.id));
        }
        let amount = request.amount;
        if amount.currency != record.requested.currency || amount.is_negative() {
            return self.refuse(request, ResponseCode::INVALID_TRANSACTION, Some(record.id));
        }
        if record.txn_type.is_credit() {
            self.funds_credit(&record, amount);
        } else if self.book.hold(record.id).is_some() {
            record.flags.over_cleared = amount.amount_minor > record.authorised.amount_minor;
            self.funds_capture(&record, amount);
            self.usage_close(&record, amount, now);
        } else {
            // Cancelled (expired or reversed) and cleared after all: the network's
            // presentment stands, so the money is posted and counted again.
            self.funds_forced_post(&record, amount);
            self.usage_close(&record, amount, now);
        }
        record.state = TransactionState::Completed;
        record.cleared = Some(amount);
        record.modified = now;
        record.purge_time = None;
        let answer = Answer {
            response_code: ResponseCode::APPROVED,
            decline: None,
            txn: Some(record.id),
            approval_code: record.approval_code,
            approved_amount: Some(amount),
        };
        self.emit(EngineEvent::Txn(record));
        self.answer(request.key, answer)
    }

    /// 0400/0420: the authorisation shrinks to the final amount (DE 95); 0 cancels it.
    fn reversal(&mut self, m: Msg<'_>, now: Timestamp) -> Answer {
        let request = m.request;
        let mut record = match self.original(m) {
            Ok(r) => r,
            Err(code) => return self.refuse(request, code, None),
        };
        let currency = record.requested.currency;
        if request.amount.currency != currency {
            let decline = Decline::new(DeclineReason::ReversalNotMatchingAuthCurrency);
            return self.refuse_with(request, decline.field39(), Some(decline), Some(record.id));
        }
        match record.state {
            TransactionState::InProgress => {}
            // Already cancelled: reversing again changes nothing.
            TransactionState::Cancelled => {
                return self.approve_followup(request, &record, Money::zero(currency))
            }
            // A single-message transaction (an ATM that could not dispense) is undone by
            // crediting back what it posted.
            TransactionState::Completed
                if record.kind == MessageKind::Financial && !record.txn_type.is_credit() =>
            {
                return self.reverse_posted(request, record, now)
            }
            _ => return self.refuse(request, ResponseCode::INVALID_TRANSACTION, Some(record.id)),
        }
        let final_minor = request.final_amount_minor.unwrap_or(0);
        if final_minor < 0 || final_minor > record.authorised.amount_minor {
            return self.refuse(
                request,
                ResponseCode::ORIGINAL_AMOUNT_INCORRECT,
                Some(record.id),
            );
        }
        let final_amount = Money::new(final_minor, currency);
        if !record.txn_type.is_credit() && final_minor != record.authorised.amount_minor {
            if final_minor == 0 {
                self.funds_release(&record, false);
                self.usage_set(&record, final_amount, UsageEnd::Close, now);
            } else {
                self.funds_adjust(&record, final_amount);
                self.usage_set(&record, final_amount, UsageEnd::Keep, now);
            }
        }
        record.authorised = final_amount;
        record.modified = now;
        if final_minor == 0 {
            record.state = TransactionState::Cancelled;
            record.purge_time = None;
        }
        let answer = self.approve_followup(request, &record, final_amount);
        self.emit(EngineEvent::Txn(record));
        answer
    }

    /// Reverses a posted single-message transaction to a final amount: the difference is
    /// credited back to the transaction-currency balance. Its limit usage was closed when it
    /// posted and stays as counted.
    fn reverse_posted(
        &mut self,
        request: &Request,
        mut record: TxnRecord,
        now: Timestamp,
    ) -> Answer {
        let posted = record.cleared.unwrap_or(record.authorised);
        let final_minor = request.final_amount_minor.unwrap_or(0);
        if final_minor < 0 || final_minor > posted.amount_minor {
            return self.refuse(
                request,
                ResponseCode::ORIGINAL_AMOUNT_INCORRECT,
                Some(record.id),
            );
        }
        let final_amount = Money::new(final_minor, posted.currency);
        let back = Money::new(posted.amount_minor - final_minor, posted.currency);
        self.funds_credit(&record, back);
        record.authorised = final_amount;
        record.cleared = Some(final_amount);
        record.modified = now;
        if final_minor == 0 {
            record.state = TransactionState::Cancelled;
        }
        let answer = self.approve_followup(request, &record, final_amount);
        self.emit(EngineEvent::Txn(record));
        answer
    }

    fn approve_followup(&mut self, request: &Request, record: &TxnRecord, amount: Money) -> Answer {
        let answer = Answer {
            response_code: ResponseCode::APPROVED,
            decline: None,
            txn: Some(record.id),
            approval_code: record.approval_code,
            approved_amount: Some(amount),
        };
        self.answer(request.key, answer)
    }

    /// Releases up to `max` holds whose purge time has come: each transaction is `CANCELLED`
    /// and its limit usage is released as by a full reversal. Returns how many expired; fewer
    /// than `max` means none is left due. The bound keeps one command's journal record and
    /// latency small however many holds fall due at once (a clock jump, a quiet weekend).
    pub fn expire_due(&mut self, now: Timestamp, max: usize) -> usize {
        let mut expired = 0;
        while let Some(&std::cmp::Reverse((at, id))) = self.expiries.peek() {
            if at > now || expired == max {
                break;
            }
            self.expiries.pop();
            // Entries are never removed in place: one whose transaction has moved on
            // (cleared, reversed, or given a later purge time) is stale and skipped.
            let Some(mut record) = self.txns.get(&id).copied() else {
                continue;
            };
            if record.state != TransactionState::InProgress || record.purge_time != Some(at) {
                continue;
            }
            self.pending_profile = record.profile;
            if !record.txn_type.is_credit() {
                self.funds_release(&record, true);
                // Kept open: a clearing that arrives later counts again in its window.
                let zero = Money::zero(record.authorised.currency);
                self.usage_set(&record, zero, UsageEnd::Keep, now);
            }
            record.state = TransactionState::Cancelled;
            record.flags.expired = true;
            record.modified = at;
            record.purge_time = None;
            // Journaled with the command that found them: every event of a partition
            // routes to the same partition on replay, whichever profile it names.
            self.emit(EngineEvent::Txn(record));
            expired += 1;
        }
        expired
    }
}

/// Where the pipeline writes a funding plan.
enum PlanInto<'a> {
    /// A new hold, straight into the event that journals it.
    Hold(&'a mut HoldPlaced),
    /// Any other funding, as its event.
    Event(Funding, &'a mut Option<LedgerEvent>),
}

/// What an approval records about its money.
enum Planned<'a> {
    /// A new hold, planned into the approval's event (its usage still to be counted).
    Hold(&'a mut Authorised),
    /// Another ledger event (a posting), usage still to be counted.
    Event(&'a LedgerEvent),
    /// Nothing moves (a refund, an account verification).
    Nothing,
}

/// The record of a new transaction for `request` on `card`, declined until decided.
fn new_record(request: &Request, card: &Card, id: TxnId, now: Timestamp) -> TxnRecord {
    TxnRecord {
        id,
        profile: card.profile,
        card: card.token,
        txn_type: request.txn_type,
        state: TransactionState::Declined,
        kind: request.kind,
        key: request.key,
        rrn: request.rrn,
        requested: request.amount,
        authorised: Money::zero(request.amount.currency),
        cleared: None,
        mcc: request.mcc,
        channel: request.channel,
        merchant: request.merchant,
        country: request.country,
        response_code: ResponseCode::APPROVED,
        decline: None,
        approval_code: None,
        flags: TxnFlags {
            pre_auth: request.pre_auth,
            ..TxnFlags::default()
        },
        created: now,
        modified: now,
        purge_time: None,
        explanation: Explanation::new(),
        previous_of_card: card.last_txn,
    }
}

fn funds_decline(short: FundsShort) -> Decline {
    if short.smart_conversion_blocked {
        Decline::with_detail(
            DeclineReason::InsufficientFunds,
            DetailedDeclineReason::InsufficientFundsForBlockedSmartConversion,
        )
    } else {
        Decline::new(DeclineReason::InsufficientFunds)
    }
}

/// The most holds one network message expires before its own decision (see
/// `Partition::expire_due`). Small, so that a burst of due holds (a quiet weekend, a clock
/// jump) is spread over the messages that follow instead of stalling the few that find it:
/// 256 per message made single answers wait milliseconds after a jump of the sandbox clock.
pub const EXPIRIES_PER_MESSAGE: usize = 16;
/// The most holds one expiry command expires (the periodic sweep, `Engine::expire_holds`).
pub const EXPIRIES_PER_COMMAND: usize = 256;

/// A PIN try count to record for a card.
#[derive(Clone, Copy, Debug)]
struct PinCount {
    card: CardToken,
    count: u8,
}

/// The try count a PIN check's effect leaves on `card`, when it changes.
fn pin_count(card: &Card, effect: PinEffect) -> Option<PinCount> {
    let tries = card.pin_tries;
    let count = match effect {
        PinEffect::None => None,
        PinEffect::Reset if tries == 0 => None,
        PinEffect::Reset => Some(0),
        PinEffect::Wrong => Some(tries.saturating_add(1)),
    }?;
    Some(PinCount {
        card: card.token,
        count,
    })
}
