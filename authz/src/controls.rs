//! Spend-control rules and FX rates: application-wide data, changed through the engine and
//! journaled whole (see [`crate::app`]).

use cardcore_core::{Currency, Rule, RuleId, RuleOperation, RuleType};
use rust_decimal::Decimal;

use crate::engine::Engine;
use crate::error::EngineError;

/// The most rules an application may have: every authorisation evaluates the applied ones.
pub const RULES_MAX: usize = 1_000;
/// The most values one rule may list.
pub const RULE_VALUES_MAX: usize = 1_000;
/// The longest rule description, in characters.
pub const RULE_DESCRIPTION_MAX_CHARS: usize = 500;

impl Engine {
    pub fn create_rule(
        &self,
        rule_type: RuleType,
        operation: RuleOperation,
        description: String,
        values: &[String],
    ) -> Result<Rule, EngineError> {
        if values.len() > RULE_VALUES_MAX {
            return Err(EngineError::invalid(
                "values",
                format!("at most {RULE_VALUES_MAX}"),
            ));
        }
        self.update_app(|app| {
            if app.rules.len() >= RULES_MAX {
                return Err(EngineError::Conflict(format!("at most {RULES_MAX} rules")));
            }
            app.next_rule_id = app.next_rule_id.max(1);
            let id = RuleId(app.next_rule_id);
            let rule = Rule::new(id, rule_type, operation, description, values)
                .map_err(|e| EngineError::invalid("values", e.to_string()))?;
            app.next_rule_id += 1;
            app.rules.insert(id, rule.clone());
            Ok(rule)
        })
    }

    pub fn rules(&self) -> Vec<Rule> {
        self.app().rules.values().cloned().collect()
    }

    pub fn applied_rules(&self) -> Vec<Rule> {
        let app = self.app();
        app.applied
            .iter()
            .filter_map(|id| app.rules.get(id).cloned())
            .collect()
    }

    /// Applies a rule: from now on every authorisation must pass it. Applying an applied
    /// rule changes nothing.
    pub fn apply_rule(&self, id: RuleId) -> Result<Rule, EngineError> {
        self.update_app(|app| {
            let rule = app
                .rules
                .get(&id)
                .cloned()
                .ok_or_else(|| EngineError::not_found("rule", id))?;
            if !app.applied.contains(&id) {
                app.applied.push(id);
            }
            Ok(rule)
        })
    }

    pub fn unapply_rule(&self, id: RuleId) -> Result<Rule, EngineError> {
        self.update_app(|app| {
            let rule = app
                .rules
                .get(&id)
                .cloned()
                .ok_or_else(|| EngineError::not_found("rule", id))?;
            app.applied.retain(|r| *r != id);
            Ok(rule)
        })
    }

    /// Deletes a rule that is not applied; an applied rule must be unapplied first.
    pub fn delete_rule(&self, id: RuleId) -> Result<Rule, EngineError> {
        self.update_app(|app| {
            if app.applied.contains(&id) {
                return Err(EngineError::Conflict(format!(
                    "rule {id} is applied; unapply it before deleting it"
                )));
            }
            app.rules
                .remove(&id)
                .ok_or_else(|| EngineError::not_found("rule", id))
        })
    }

    /// Sets the rate `1 from = rate to` with a conversion fee in percent.
    pub fn set_fx_rate(
        &self,
        from: Currency,
        to: Currency,
        rate: Decimal,
        fee_percent: Decimal,
    ) -> Result<(), EngineError> {
        if from == to {
            return Err(EngineError::invalid("to", "must differ from from"));
        }
        if rate <= Decimal::ZERO {
            return Err(EngineError::invalid("rate", "must be positive"));
        }
        if fee_percent < Decimal::ZERO || fee_percent >= Decimal::from(100) {
            return Err(EngineError::invalid("fee_percent", "must be in [0, 100)"));
        }
        self.update_app(|app| {
            app.set_rate(from, to, rate, fee_percent);
            Ok(())
        })
    }
}
