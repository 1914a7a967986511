//! `welcome`: the bundled example plugin a new user sees in the portal.

use tianshan_sdk::prelude::*;

struct Welcome;

impl Plugin for Welcome {
    fn routes() -> Router {
        Router::new().get("/", summary).get("/whoami", whoami)
    }
}

/// Who the plugin is and who is looking at it.
fn summary(_: &Request) -> Result<Response> {
    let caller = identity::caller();
    Ok(Response::json(&json!({
        "plugin": identity::plugin_id(),
        "version": identity::plugin_version(),
        "greeting": config::get("greeting"),
        "user": caller.as_ref().map(|p| &p.display_name),
        "org": caller.as_ref().map(|p| &p.org_id),
    })))
}

/// The caller, as the kernel established it; `null` when anonymous.
fn whoami(_: &Request) -> Result<Response> {
    Ok(Response::json(&identity::caller()))
}

tianshan_sdk::export_plugin!(Welcome);
