//! Card transactions: one by id (with its debits and credits), and a card's list, newest
//! first, paged by `lastId`.

use axum::extract::State;
use axum::Json;
use cardcore_authz::TxnRecord;
use cardcore_core::{Timestamp, TxnId};
use serde::Serialize;

use super::access::{id_param, CardAt, PathParams, ProfileAt, QueryMap};
use super::error::{ApiError, ApiResult};
use super::state::AppState;
use super::views::TransactionJson;

/// Page sizes the reference allows for transaction lists.
pub const TXN_PAGE_SIZE_MIN: u64 = 10;
pub const TXN_PAGE_SIZE_MAX: u64 = 100;
pub const TXN_PAGE_SIZE_DEFAULT: u64 = 20;
/// Transactions read from the engine per round trip while filtering a page.
pub const TXN_SCAN_CHUNK: usize = 256;

pub async fn get(
    State(state): State<AppState>,
    at: ProfileAt,
    PathParams(params): PathParams,
) -> ApiResult<Json<TransactionJson>> {
    let id = TxnId(id_param(&params, "transactionId")?);
    let profile = at.profile;
    let (record, money) = state.engine(move |e| e.transaction(profile, id)).await?;
    Ok(Json(TransactionJson::of(&record, Some(&money))))
}

#[derive(Debug, Serialize)]
pub struct TransactionList {
    pub transactions: Vec<TransactionJson>,
}

/// What a list request asks for.
#[derive(Debug, Clone, Copy)]
struct ListFilter {
    from: Timestamp,
    to: Timestamp,
    size: usize,
    last_id: Option<TxnId>,
}

impl ListFilter {
    fn keeps(&self, record: &TxnRecord) -> bool {
        let before_cursor = self.last_id.is_none_or(|last| record.id < last);
        before_cursor && record.created >= self.from && record.created <= self.to
    }
}

fn list_filter(query: &QueryMap) -> ApiResult<ListFilter> {
    let time = |name: &str| {
        let text = query.required(name)?;
        Timestamp::parse_rfc3339(text)
            .ok_or_else(|| ApiError::invalid(name, "expected an ISO 8601 date-time"))
    };
    let from = time("fromCreationTime")?;
    let to = time("toCreationTime")?;
    if to < from {
        return Err(ApiError::invalid(
            "toCreationTime",
            "must not be before fromCreationTime",
        ));
    }
    let size = query.int_in(
        "pageSize",
        TXN_PAGE_SIZE_MIN..=TXN_PAGE_SIZE_MAX,
        TXN_PAGE_SIZE_DEFAULT,
    )? as usize;
    let last_id = match query.get("lastId") {
        None => None,
        Some(text) => {
            Some(TxnId(text.parse::<u64>().map_err(|_| {
                ApiError::invalid("lastId", "expected a transaction id")
            })?))
        }
    };
    Ok(ListFilter {
        from,
        to,
        size,
        last_id,
    })
}

/// `GET .../cards/{cardToken}/transactions`: newest first (descending id), created within
/// `[fromCreationTime, toCreationTime]`, ids below `lastId` when given.
pub async fn list(
    State(state): State<AppState>,
    at: CardAt,
    query: QueryMap,
) -> ApiResult<Json<TransactionList>> {
    let filter = list_filter(&query)?;
    let (profile, token) = (at.profile, at.token);
    let records = state
        .run(move |engine| {
            let mut page = Vec::with_capacity(filter.size);
            let mut offset = 0;
            loop {
                let chunk = engine.card_transactions(profile, token, offset, TXN_SCAN_CHUNK)?;
                let exhausted = chunk.len() < TXN_SCAN_CHUNK;
                offset += chunk.len();
                page.extend(chunk.into_iter().filter(|r| filter.keeps(r)));
                if page.len() >= filter.size || exhausted {
                    page.truncate(filter.size);
                    return Ok(page);
                }
            }
        })
        .await?;
    Ok(Json(TransactionList {
        transactions: records
            .iter()
            .map(|r| TransactionJson::of(r, None))
            .collect(),
    }))
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SimulatedTransaction {
    pub transaction_id: TxnId,
    /// Seconds since the epoch, as the reference gives it.
    pub creation_time: super::json::Number,
}

/// `GET /v2/simulation/.../transactions?limit=`: ids and creation times, newest first.
pub async fn simulated(
    State(state): State<AppState>,
    at: CardAt,
    query: QueryMap,
) -> ApiResult<Json<Vec<SimulatedTransaction>>> {
    let limit = query.int_in("limit", 1..=TXN_PAGE_SIZE_MAX, 10)? as usize;
    let (profile, token) = (at.profile, at.token);
    let records = state
        .engine(move |e| e.card_transactions(profile, token, 0, limit))
        .await?;
    Ok(Json(
        records
            .iter()
            .map(|r| SimulatedTransaction {
                transaction_id: r.id,
                creation_time: super::json::Number(rust_decimal::Decimal::new(r.created.0, 3)),
            })
            .collect(),
    ))
}
