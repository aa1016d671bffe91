//! Application-wide data: spend-control rules and FX rates. It is read on every decision and
//! changed rarely, so it is published as an immutable snapshot swapped atomically: partitions
//! never lock to read it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use cardcore_core::{Currency, Mcc, Rule, RuleId};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// An exchange rate: 1 `from` = `rate` `to`, plus a fee in percent of the converted amount.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FxRate {
    #[serde(with = "cardcore_core::money::decimal_serde")]
    pub rate: Decimal,
    #[serde(with = "cardcore_core::money::decimal_serde")]
    pub fee_percent: Decimal,
    /// Set when this direction was derived from the other one.
    pub implied: bool,
}

/// One immutable version of the application data.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppData {
    pub rules: BTreeMap<RuleId, Rule>,
    /// Applied rules, in the order they were applied.
    pub applied: Vec<RuleId>,
    pub fx: BTreeMap<(Currency, Currency), FxRate>,
    pub next_rule_id: u64,
}

impl AppData {
    /// The rate from `from` to `to`, if configured or implied by its inverse.
    pub fn rate(&self, from: Currency, to: Currency) -> Option<FxRate> {
        if from == to {
            return Some(FxRate {
                rate: Decimal::ONE,
                fee_percent: Decimal::ZERO,
                implied: false,
            });
        }
        self.fx.get(&(from, to)).copied()
    }

    /// Sets a rate; the inverse is implied unless it was given explicitly.
    pub fn set_rate(&mut self, from: Currency, to: Currency, rate: Decimal, fee_percent: Decimal) {
        self.fx.insert(
            (from, to),
            FxRate {
                rate,
                fee_percent,
                implied: false,
            },
        );
        let inverse_given = self.fx.get(&(to, from)).is_some_and(|r| !r.implied);
        if !inverse_given && !rate.is_zero() {
            let inverse = FxRate {
                rate: Decimal::ONE / rate,
                fee_percent,
                implied: true,
            };
            self.fx.insert((to, from), inverse);
        }
    }

    /// The first applied rule that a transaction fails, if any.
    pub fn failing_rule(&self, mcc: Mcc, currency: Currency) -> Option<RuleId> {
        self.applied
            .iter()
            .filter_map(|id| self.rules.get(id))
            .find(|rule| !rule.passes(mcc, currency))
            .map(|rule| rule.id)
    }
}

/// The published snapshot: readers load it lock-free, writers replace it whole.
#[derive(Debug, Default)]
pub struct SharedAppData {
    current: ArcSwap<AppData>,
    /// Bumped after each new version is published: a reader that keeps a version checks
    /// this one integer instead of loading the snapshot again.
    version: AtomicU64,
}

impl SharedAppData {
    pub fn new(data: AppData) -> SharedAppData {
        SharedAppData {
            current: ArcSwap::from_pointee(data),
            version: AtomicU64::new(0),
        }
    }

    pub fn load(&self) -> arc_swap::Guard<Arc<AppData>> {
        self.current.load()
    }

    /// The number of the version published last. A reader that sees a number has the
    /// version published with it (or a later one) when it loads next.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    pub fn snapshot(&self) -> Arc<AppData> {
        self.current.load_full()
    }

    /// Publishes a new version made from the current one. Writers are serialised by the
    /// caller (the engine's management path), so a read-modify-write cannot lose an update.
    pub fn update(&self, change: impl FnOnce(&mut AppData)) -> Arc<AppData> {
        let mut next = AppData::clone(&self.current.load());
        change(&mut next);
        let next = Arc::new(next);
        self.current.store(Arc::clone(&next));
        self.version.fetch_add(1, Ordering::Release);
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cardcore_core::{RuleOperation, RuleType};
    use std::str::FromStr;

    #[test]
    fn inverse_rates_are_implied_until_given() {
        let mut app = AppData::default();
        let d = |s| Decimal::from_str(s).unwrap();
        app.set_rate(Currency::EUR, Currency::USD, d("1.25"), d("0"));
        assert_eq!(
            app.rate(Currency::USD, Currency::EUR).unwrap().rate,
            d("0.8")
        );
        app.set_rate(Currency::USD, Currency::EUR, d("0.79"), d("0.5"));
        app.set_rate(Currency::EUR, Currency::USD, d("1.26"), d("0"));
        assert_eq!(
            app.rate(Currency::USD, Currency::EUR).unwrap().rate,
            d("0.79")
        );
        assert_eq!(
            app.rate(Currency::GBP, Currency::GBP).unwrap().rate,
            Decimal::ONE
        );
        assert!(app.rate(Currency::GBP, Currency::JPY).is_none());
    }

    #[test]
    fn every_applied_rule_must_pass() {
        let mut app = AppData::default();
        let block = Rule::new(
            RuleId(1),
            RuleType::Mcc,
            RuleOperation::Block,
            String::new(),
            &["7995".to_string()],
        )
        .unwrap();
        let allow = Rule::new(
            RuleId(2),
            RuleType::Currency,
            RuleOperation::Allow,
            String::new(),
            &["EUR".to_string()],
        )
        .unwrap();
        app.rules.insert(RuleId(1), block);
        app.rules.insert(RuleId(2), allow);
        assert_eq!(
            app.failing_rule(Mcc(7995), Currency::GBP),
            None,
            "nothing applied yet"
        );
        app.applied = vec![RuleId(1), RuleId(2)];
        assert_eq!(app.failing_rule(Mcc(7995), Currency::EUR), Some(RuleId(1)));
        assert_eq!(app.failing_rule(Mcc(5411), Currency::GBP), Some(RuleId(2)));
        assert_eq!(app.failing_rule(Mcc(5411), Currency::EUR), None);
    }
}
