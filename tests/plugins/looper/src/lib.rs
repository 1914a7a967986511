//! Test plugin `looper`: `GET /` never returns, so the kernel must time it
//! out; `GET /ok` answers at once.

use std::hint::black_box;

use tianshan_sdk::prelude::*;

struct Looper;

impl Plugin for Looper {
    fn routes() -> Router {
        Router::new().get("/", spin).get("/ok", ok)
    }
}

fn spin(_: &Request) -> Result<Response> {
    let mut n: u64 = 0;
    loop {
        n = black_box(n.wrapping_add(1));
    }
}

fn ok(_: &Request) -> Result<Response> {
    Ok(Response::json(&json!({ "ok": true })))
}

tianshan_sdk::export_plugin!(Looper);
