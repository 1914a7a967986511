//! Test plugin `looper`: `GET /` never returns, so the kernel must time it
//! out; `GET /ok` answers at once. `GET /read-then-spin` reads storage once
//! and then never returns (it must not keep a database connection while it
//! spins); `GET /chatty` logs in a loop until its deadline (the kernel must
//! rate-limit it).

use std::hint::black_box;

use tianshan_sdk::prelude::*;

struct Looper;

impl Plugin for Looper {
    fn routes() -> Router {
        Router::new()
            .get("/", spin)
            .get("/ok", ok)
            .get("/read-then-spin", read_then_spin)
            .get("/chatty", chatty)
    }
}

fn spin(_: &Request) -> Result<Response> {
    let mut n: u64 = 0;
    loop {
        n = black_box(n.wrapping_add(1));
    }
}

fn read_then_spin(request: &Request) -> Result<Response> {
    // Nothing is stored: the read only has to reach the database.
    let _ = storage::collection("scratch")
        .get::<std::collections::BTreeMap<String, String>>("nothing")?;
    spin(request)
}

fn chatty(_: &Request) -> Result<Response> {
    let mut n: u64 = 0;
    loop {
        n = n.wrapping_add(1);
        log::info(format!("line {n} of a plugin that will not stop talking"));
    }
}

fn ok(_: &Request) -> Result<Response> {
    Ok(Response::json(&json!({ "ok": true })))
}

tianshan_sdk::export_plugin!(Looper);
