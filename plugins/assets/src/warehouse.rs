//! The public asset warehouse (公物仓). Placeholder until the warehouse
//! module lands.

use serde_json::Value;
use tianshan_sdk::prelude::*;

pub fn routes(router: Router) -> Router {
    router
}

/// Items in stock that match `category` (a code or prefix).
pub fn available_count(_category: &str) -> Result<u64> {
    Ok(0)
}

pub fn available_items(_category: &str, _limit: u32) -> Result<Vec<Value>> {
    Ok(Vec::new())
}

/// An approval outcome for a warehouse order.
pub fn on_approval(_outcome: &str, _payload: &Value) -> Result<()> {
    Ok(())
}

pub fn on_job(_name: &str) -> Result<()> {
    Ok(())
}
