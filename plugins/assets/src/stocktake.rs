//! Stocktake campaigns (清查盘点). Placeholder until the module lands.

use tianshan_sdk::prelude::*;

pub fn routes(router: Router) -> Router {
    router
}
