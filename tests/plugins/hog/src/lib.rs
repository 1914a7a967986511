//! Test plugin `hog`: `GET /` allocates 1 MiB chunks until the allocator
//! fails, so the kernel's memory limit must stop it.

use std::hint::black_box;

use tianshan_sdk::prelude::*;

const MIB: usize = 1024 * 1024;

struct Hog;

impl Plugin for Hog {
    fn routes() -> Router {
        Router::new().get("/", hog)
    }
}

fn hog(_: &Request) -> Result<Response> {
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    loop {
        // Nonzero so the pages are really written.
        chunks.push(black_box(vec![0xA5u8; MIB]));
        black_box(&chunks);
    }
}

tianshan_sdk::export_plugin!(Hog);
