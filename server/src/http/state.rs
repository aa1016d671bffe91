//! What every handler shares: the service, the STAN counter of simulated messages, the
//! card-order details the engine does not keep, and the card-order idempotency keys.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use cardcore_authz::{Engine, EngineError};
use cardcore_core::CardToken;

use super::error::{ApiError, ApiResult};
use super::order_keys::OrderKeys;
use super::simulation::StanCounter;
use super::views::HolderDetails;
use crate::Service;

/// Card-order details kept in memory (holder name, phone, address). Past this many, the
/// oldest are forgotten and those orders show `null` for them.
pub const ORDER_DETAILS_MAX: usize = 100_000;

/// The router's state.
#[derive(Clone, Debug)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    service: Arc<Service>,
    stans: StanCounter,
    orders: Mutex<OrderMemory>,
    /// Held for the whole of a card order: see [`super::order_keys`].
    order_keys: Mutex<OrderKeys>,
}

/// What a card order adds to its card.
#[derive(Debug, Default)]
pub struct OrderMemory {
    details: HashMap<CardToken, OrderDetails>,
    details_order: VecDeque<CardToken>,
}

/// The card-order fields the engine has no place for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OrderDetails {
    pub card_holder_name: Option<String>,
    pub phone_number: Option<String>,
    pub address: Option<serde_json::Value>,
    pub delivery_option: Option<String>,
    pub lifetime_limit: Option<rust_decimal::Decimal>,
}

impl OrderDetails {
    pub fn holder(&self) -> HolderDetails {
        HolderDetails {
            card_holder_name: self.card_holder_name.clone(),
            phone_number: self.phone_number.clone(),
        }
    }
}

impl OrderMemory {
    pub fn details(&self, token: CardToken) -> OrderDetails {
        self.details.get(&token).cloned().unwrap_or_default()
    }

    pub fn remember(&mut self, token: CardToken, details: OrderDetails) {
        if self.details.insert(token, details).is_none() {
            self.details_order.push_back(token);
        }
        while self.details_order.len() > ORDER_DETAILS_MAX {
            if let Some(old) = self.details_order.pop_front() {
                self.details.remove(&old);
            }
        }
    }

    /// Whether details were kept for this card.
    pub fn has_details(&self, token: CardToken) -> bool {
        self.details.contains_key(&token)
    }

    pub fn clear(&mut self) {
        *self = OrderMemory::default();
    }
}

impl AppState {
    pub fn new(service: Arc<Service>) -> AppState {
        AppState {
            inner: Arc::new(Inner {
                service,
                stans: StanCounter::new(),
                orders: Mutex::new(OrderMemory::default()),
                order_keys: Mutex::new(OrderKeys::default()),
            }),
        }
    }

    pub fn service(&self) -> &Arc<Service> {
        &self.inner.service
    }

    pub fn stans(&self) -> &StanCounter {
        &self.inner.stans
    }

    /// Runs `f` on the order memory (a short critical section, never across an await).
    pub fn orders<T>(&self, f: impl FnOnce(&mut OrderMemory) -> T) -> T {
        let mut guard = self
            .inner
            .orders
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        f(&mut guard)
    }

    /// Runs `f` against the current engine on a blocking thread: engine calls wait for a
    /// partition and, in `sync` mode, for the journal, which must not stall the runtime.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Engine) -> ApiResult<T> + Send + 'static,
    ) -> ApiResult<T> {
        let engine = self.inner.service.engine();
        tokio::task::spawn_blocking(move || f(&engine))
            .await
            .map_err(|_| ApiError::unavailable("the request was cancelled"))?
    }

    /// Runs a card order on a blocking thread, against the current engine, with that
    /// engine's idempotency keys locked for the whole order.
    pub async fn run_order<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Engine, &mut OrderKeys) -> ApiResult<T> + Send + 'static,
    ) -> ApiResult<T> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let live = inner.service.live();
            let mut keys = inner
                .order_keys
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            keys.use_generation(live.generation(), live.state_dir())
                .map_err(|e| {
                    ApiError::unavailable(format!("the card-order keys cannot be read: {e}"))
                })?;
            f(live.engine(), &mut keys)
        })
        .await
        .map_err(|_| ApiError::unavailable("the request was cancelled"))?
    }

    /// [`AppState::run`] for a single engine call.
    pub async fn engine<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Engine) -> Result<T, EngineError> + Send + 'static,
    ) -> ApiResult<T> {
        self.run(move |engine| f(engine).map_err(ApiError::from))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_memory_is_bounded() {
        let mut memory = OrderMemory::default();
        for i in 0..(ORDER_DETAILS_MAX as u128 + 5) {
            let details = OrderDetails {
                card_holder_name: Some(format!("holder {i}")),
                ..OrderDetails::default()
            };
            memory.remember(CardToken(i), details);
        }
        assert_eq!(memory.details.len(), ORDER_DETAILS_MAX);
        assert_eq!(memory.details(CardToken(0)), OrderDetails::default());
        let last = CardToken(ORDER_DETAILS_MAX as u128 + 4);
        assert!(memory.details(last).card_holder_name.is_some());
        assert!(memory.has_details(last));
        assert!(!memory.has_details(CardToken(0)));
    }
}
