//! The engine's management and query operations, routed to the partition that owns the
//! profile. These are what the HTTP API, the simulator and embedders call.

use cardcore_core::{
    CardStatus, CardToken, Channel, Currency, Granularity, LimitType, Money, Permissions,
    ProfileId, ProfileLimit, ProfileStatus, TimeZone, Timestamp, TxnId,
};

use crate::engine::Engine;
use crate::error::EngineError;
use crate::funds::{BalanceView, TxnMoney, UsageReport};
use crate::management::{IssueCard, LimitChange};
use crate::state::{Card, Profile, TxnRecord};

impl Engine {
    /// Creates a profile; `id` None lets the engine choose one.
    pub fn create_profile(
        &self,
        id: Option<ProfileId>,
        status: ProfileStatus,
        time_zone: TimeZone,
    ) -> Result<ProfileId, EngineError> {
        let id = match id {
            Some(id) if id.0 == 0 => return Err(EngineError::invalid("id", "must be positive")),
            Some(id) => {
                self.reserve_profile_id(id);
                id
            }
            None => self.next_profile_id(),
        };
        let now = self.now();
        self.on_partition(id, move |p| p.create_profile(id, status, time_zone, now))?
            .0?;
        Ok(id)
    }

    pub fn update_profile(
        &self,
        id: ProfileId,
        status: Option<ProfileStatus>,
        time_zone: Option<TimeZone>,
    ) -> Result<Profile, EngineError> {
        self.on_partition(id, move |p| {
            p.update_profile(id, status, time_zone)?;
            p.profile(id)
                .cloned()
                .ok_or_else(|| EngineError::not_found("profile", id))
        })?
        .0
    }

    pub fn profile(&self, id: ProfileId) -> Result<Profile, EngineError> {
        self.on_partition(id, move |p| {
            p.profile(id)
                .cloned()
                .ok_or_else(|| EngineError::not_found("profile", id))
        })?
        .0
    }

    pub fn issue_card(&self, issue: IssueCard) -> Result<Card, EngineError> {
        let profile = issue.profile;
        let fingerprint = issue.pan.fingerprint(&self.config().pan_key);
        if self.owner_of_pan(fingerprint).is_some() {
            return Err(EngineError::Conflict(
                "a card with this PAN already exists".into(),
            ));
        }
        let now = self.now();
        let card = self
            .on_partition(profile, move |p| p.issue_card(issue, now))?
            .0?;
        self.index_card(card.fingerprint, profile);
        Ok(card)
    }

    /// The cards of a profile, oldest first.
    pub fn cards(&self, profile: ProfileId) -> Result<Vec<Card>, EngineError> {
        self.on_partition(profile, move |p| {
            p.profile(profile)
                .ok_or_else(|| EngineError::not_found("profile", profile))?;
            let mut cards: Vec<Card> = p
                .cards()
                .filter(|c| c.profile == profile)
                .cloned()
                .collect();
            cards.sort_by_key(|c| (c.issued, c.token));
            Ok(cards)
        })?
        .0
    }

    pub fn card(&self, profile: ProfileId, token: CardToken) -> Result<Card, EngineError> {
        self.on_partition(profile, move |p| p.card_of(profile, token).cloned())?
            .0
    }

    /// The card with this token, whoever owns it (operator and simulator use).
    pub fn card_any(&self, token: CardToken) -> Result<Card, EngineError> {
        let profile = self
            .owner_of_card(token)
            .ok_or_else(|| EngineError::not_found("card", token))?;
        self.card(profile, token)
    }

    pub fn change_card_status(
        &self,
        profile: ProfileId,
        token: CardToken,
        status: CardStatus,
    ) -> Result<Card, EngineError> {
        let now = self.now();
        self.on_partition(profile, move |p| {
            p.change_card_status(profile, token, status, now)
        })?
        .0
    }

    /// Sets any of the seven statuses, bypassing the status API's rules: the issuer's own
    /// systems (expiry, compliance, purging) and scenario setup.
    pub fn force_card_status(
        &self,
        token: CardToken,
        status: CardStatus,
    ) -> Result<(), EngineError> {
        let profile = self
            .owner_of_card(token)
            .ok_or_else(|| EngineError::not_found("card", token))?;
        let now = self.now();
        self.on_partition(profile, move |p| p.force_card_status(token, status, now))?
            .0
    }

    pub fn update_permissions(
        &self,
        profile: ProfileId,
        token: CardToken,
        changes: Vec<(Channel, bool)>,
    ) -> Result<Permissions, EngineError> {
        let now = self.now();
        self.on_partition(profile, move |p| {
            p.update_permissions(profile, token, &changes, now)
        })?
        .0
    }

    pub fn reset_pin_count(
        &self,
        profile: ProfileId,
        token: CardToken,
    ) -> Result<Card, EngineError> {
        self.on_partition(profile, move |p| {
            p.reset_pin_count(profile, token)?;
            p.card_of(profile, token).cloned()
        })?
        .0
    }

    pub fn update_card_limits(
        &self,
        profile: ProfileId,
        token: CardToken,
        currency: Currency,
        changes: Vec<(Granularity, LimitChange)>,
    ) -> Result<(), EngineError> {
        let now = self.now();
        self.on_partition(profile, move |p| {
            p.update_card_limits(profile, token, currency, &changes, now)
                .map(|_| ())
        })?
        .0
    }

    /// Sets a profile limit. A maximum not given is kept from the current limit (in the
    /// same currency) or else the engine's default.
    pub fn update_profile_limit(
        &self,
        profile: ProfileId,
        limit_type: LimitType,
        daily: Money,
        monthly: Money,
        max: (Option<i64>, Option<i64>),
    ) -> Result<ProfileLimit, EngineError> {
        let defaults = self.config().profile_limit_max[limit_type.index()];
        self.on_partition(profile, move |p| {
            p.update_profile_limit(profile, limit_type, daily, monthly, max.0, max.1, defaults)
        })?
        .0
    }

    /// Card limits with their usage and reset times, as the reference shows them.
    pub fn card_limits(
        &self,
        profile: ProfileId,
        token: CardToken,
    ) -> Result<Vec<UsageReport>, EngineError> {
        let now = self.now();
        self.on_partition(profile, move |p| p.card_limit_report(profile, token, now))?
            .0
    }

    /// Profile limits of both types with their usage and reset times.
    pub fn profile_limits(
        &self,
        profile: ProfileId,
    ) -> Result<Vec<(LimitType, Vec<UsageReport>)>, EngineError> {
        let now = self.now();
        self.on_partition(profile, move |p| p.profile_limit_report(profile, now))?
            .0
    }

    pub fn open_balance(
        &self,
        profile: ProfileId,
        currency: Currency,
    ) -> Result<BalanceView, EngineError> {
        self.on_partition(profile, move |p| {
            let id = p.open_balance(profile, currency)?;
            p.balance_view(profile, id)
        })?
        .0
    }

    pub fn top_up(&self, profile: ProfileId, amount: Money) -> Result<BalanceView, EngineError> {
        self.on_partition(profile, move |p| {
            let id = p.top_up(profile, amount)?;
            p.balance_view(profile, id)
        })?
        .0
    }

    pub fn balances(&self, profile: ProfileId) -> Result<Vec<BalanceView>, EngineError> {
        self.on_partition(profile, move |p| p.balance_views(profile))?
            .0
    }

    pub fn transaction(
        &self,
        profile: ProfileId,
        id: TxnId,
    ) -> Result<(TxnRecord, TxnMoney), EngineError> {
        self.on_partition(profile, move |p| {
            let record = p
                .txn(id)
                .filter(|t| t.profile == profile)
                .copied()
                .ok_or_else(|| EngineError::not_found("transaction", id))?;
            Ok((record, p.txn_money(&record)))
        })?
        .0
    }

    /// A transaction by id, whoever owns it: the id names its partition.
    pub fn transaction_any(&self, id: TxnId) -> Result<(TxnRecord, TxnMoney), EngineError> {
        let index = (id.0 / crate::partition::TXN_ID_STRIDE) as usize;
        if index >= self.partition_count() {
            return Err(EngineError::not_found("transaction", id));
        }
        let found = self.on_each_partition(move |p| {
            p.txn(id)
                .copied()
                .map(|record| (record, p.txn_money(&record)))
        })?;
        found
            .into_iter()
            .flatten()
            .next()
            .ok_or_else(|| EngineError::not_found("transaction", id))
    }

    /// Transactions of a card, newest first.
    pub fn card_transactions(
        &self,
        profile: ProfileId,
        token: CardToken,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<TxnRecord>, EngineError> {
        self.on_partition(profile, move |p| {
            p.card_of(profile, token)?;
            Ok(p.card_transactions(token, offset, limit)
                .into_iter()
                .copied()
                .collect())
        })?
        .0
    }

    /// Limit usage of a card in `window`, in the currency it is counted in.
    pub fn card_usage(
        &self,
        profile: ProfileId,
        token: CardToken,
        window: Granularity,
    ) -> Result<Money, EngineError> {
        let now = self.now();
        self.on_partition(profile, move |p| {
            let card = p.card_of(profile, token)?;
            if window == Granularity::Transaction {
                return Ok(Money::zero(card.currency));
            }
            p.card_usage(token, window, now)
                .ok_or_else(|| EngineError::not_found("usage", token))
        })?
        .0
    }

    /// Limit usage of a profile's limit type in `window` (`DAILY` or `MONTHLY`).
    pub fn profile_usage(
        &self,
        profile: ProfileId,
        limit_type: LimitType,
        window: Granularity,
    ) -> Result<Money, EngineError> {
        let now = self.now();
        self.on_partition(profile, move |p| {
            p.profile(profile)
                .ok_or_else(|| EngineError::not_found("profile", profile))?;
            p.profile_usage(profile, limit_type, window, now)
                .ok_or_else(|| {
                    EngineError::invalid(
                        "window",
                        format!("no {window} usage is kept for profiles"),
                    )
                })
        })?
        .0
    }

    /// Every ledger invariant of every partition; the violations found, empty when sound.
    pub fn invariant_violations(&self) -> Result<Vec<String>, EngineError> {
        let per_partition = self.on_each_partition(|p| p.invariant_violations())?;
        Ok(per_partition.into_iter().flatten().collect())
    }

    /// A hash of the whole engine state (partitions and application data).
    pub fn state_hash(&self) -> Result<[u8; 32], EngineError> {
        use sha2::{Digest, Sha256};
        let hashes =
            self.on_each_partition(|p| crate::snapshot::PartitionImage::of(p).state_hash())?;
        let mut hasher = Sha256::new();
        for h in hashes {
            hasher.update(h);
        }
        hasher.update(bincode::serialize(&*self.app()).unwrap_or_default());
        Ok(hasher.finalize().into())
    }

    /// The latest engine time any recorded change carries (transactions, cards, profiles):
    /// where a manual clock resumes after a restart, so it never runs backwards.
    pub fn latest_time(&self) -> Result<Option<Timestamp>, EngineError> {
        let per_partition = self.on_each_partition(|p| {
            let txns = p.transactions().map(|t| t.modified);
            let cards = p.cards().map(|c| c.modified);
            let profiles = p.profiles().map(|x| x.created);
            txns.chain(cards).chain(profiles).max()
        })?;
        Ok(per_partition.into_iter().flatten().max())
    }

    /// Runs hold expiry on every partition at the engine's current time (the partitions
    /// also do it before each message).
    pub fn expire_holds(&self) -> Result<(), EngineError> {
        let now: Timestamp = self.now();
        // In bounded steps, each its own journal record, until no partition has one due.
        loop {
            let max = crate::lifecycle::EXPIRIES_PER_COMMAND;
            let expired = self.on_each_partition(move |p| p.expire_due(now, max))?;
            if expired.iter().all(|n| *n < max) {
                break;
            }
        }
        Ok(())
    }
}
