//! Spend-control rules of the application: create, list, apply, unapply, list applied,
//! delete. One engine serves one application's rules: every application token (and the
//! operator) manages the same set.

use axum::extract::State;
use axum::Json;
use cardcore_authz::controls::RULE_VALUES_MAX;
use cardcore_core::{RuleId, RuleOperation, RuleType};
use serde::{Deserialize, Serialize};

use super::access::{id_param, AppAt, PathParams};
use super::error::{ApiError, ApiResult};
use super::json::{IdText, JsonBody};
use super::state::AppState;
use super::views::RuleJson;

/// The longest rule description accepted.
pub const RULE_DESCRIPTION_MAX: usize = 500;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleBody {
    #[serde(rename = "type")]
    pub rule_type: RuleType,
    pub operation: RuleOperation,
    #[serde(default)]
    pub description: String,
    pub values: Vec<String>,
}

pub async fn create(
    State(state): State<AppState>,
    _at: AppAt,
    JsonBody(body): JsonBody<RuleBody>,
) -> ApiResult<Json<RuleJson>> {
    if body.description.chars().count() > RULE_DESCRIPTION_MAX {
        return Err(ApiError::invalid(
            "description",
            format!("at most {RULE_DESCRIPTION_MAX} characters"),
        ));
    }
    if body.values.is_empty() {
        return Err(ApiError::invalid("values", "must not be empty"));
    }
    if body.values.len() > RULE_VALUES_MAX {
        return Err(ApiError::invalid(
            "values",
            format!("at most {RULE_VALUES_MAX} values"),
        ));
    }
    let rule = state
        .engine(move |e| {
            e.create_rule(
                body.rule_type,
                body.operation,
                body.description,
                &body.values,
            )
        })
        .await?;
    Ok(Json(RuleJson::of(&rule)))
}

pub async fn list(State(state): State<AppState>, _at: AppAt) -> ApiResult<Json<Vec<RuleJson>>> {
    let rules = state.engine(|e| Ok(e.rules())).await?;
    Ok(Json(rules.iter().map(RuleJson::of).collect()))
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppliedRule {
    pub rule_id: u64,
}

pub async fn applied(
    State(state): State<AppState>,
    _at: AppAt,
) -> ApiResult<Json<Vec<AppliedRule>>> {
    let rules = state.engine(|e| Ok(e.applied_rules())).await?;
    Ok(Json(
        rules
            .iter()
            .map(|r| AppliedRule { rule_id: r.id.0 })
            .collect(),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuleRef {
    pub rule_id: IdText,
}

/// `POST .../rules/apply`: 200 with no body, as the reference answers.
pub async fn apply(
    State(state): State<AppState>,
    _at: AppAt,
    JsonBody(body): JsonBody<RuleRef>,
) -> ApiResult<()> {
    let id = RuleId(body.rule_id.0);
    state
        .engine(move |e| e.apply_rule(id))
        .await
        .map_err(rule_id_field)?;
    Ok(())
}

pub async fn unapply(
    State(state): State<AppState>,
    _at: AppAt,
    JsonBody(body): JsonBody<RuleRef>,
) -> ApiResult<()> {
    let id = RuleId(body.rule_id.0);
    state
        .engine(move |e| e.unapply_rule(id))
        .await
        .map_err(rule_id_field)?;
    Ok(())
}

/// `DELETE .../rules/{ruleId}`: an applied rule must be unapplied first (409).
pub async fn delete(
    State(state): State<AppState>,
    _at: AppAt,
    PathParams(params): PathParams,
) -> ApiResult<()> {
    let id = RuleId(id_param(&params, "ruleId")?);
    state
        .engine(move |e| e.delete_rule(id))
        .await
        .map_err(rule_id_field)?;
    Ok(())
}

/// Refusals about a rule name the rule id.
fn rule_id_field(mut e: ApiError) -> ApiError {
    if e.status.is_client_error() {
        e.field = Some("ruleId".into());
    }
    e
}
