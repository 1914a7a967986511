//! Test plugin `panicker`: `GET /` panics.

use tianshan_sdk::prelude::*;

struct Panicker;

impl Plugin for Panicker {
    fn routes() -> Router {
        Router::new().get("/", panics)
    }
}

fn panics(_: &Request) -> Result<Response> {
    panic!("deliberate panic for the test");
}

tianshan_sdk::export_plugin!(Panicker);
