use tianshan_sdk::prelude::*;

pub fn routes(router: Router) -> Router {
    router
}
