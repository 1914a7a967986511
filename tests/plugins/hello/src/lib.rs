//! Test plugin `hello`: routing, identity and profiles, config, echo and typed errors.

use tianshan_sdk::prelude::*;
use tianshan_sdk::serde_json::Value;

struct Hello;

impl Plugin for Hello {
    fn routes() -> Router {
        Router::new()
            .get("/", index)
            .post("/echo", echo)
            .get("/whoami", whoami)
            .get("/profile/{user}", profile)
            .get("/my-profile", my_profile)
            .get("/can/{permission}", can)
            .get("/config/{key}", config_value)
            .get("/greet/{name}", greet)
            .get("/fail", fail)
    }
}

fn index(_: &Request) -> Result<Response> {
    Ok(Response::json(&json!({
        "plugin": "hello",
        "version": identity::plugin_version(),
        "message": "hello",
    })))
}

fn echo(req: &Request) -> Result<Response> {
    Ok(Response::json(&req.json::<Value>()?))
}

fn whoami(_: &Request) -> Result<Response> {
    Ok(Response::json(&identity::caller()))
}

/// A user's profile as the kernel lets this call see it (contract 1.4).
fn profile(req: &Request) -> Result<Response> {
    Ok(Response::json(&identity::profile(req.param("user")?)))
}

fn my_profile(_: &Request) -> Result<Response> {
    Ok(Response::json(&identity::caller_profile()))
}

fn config_value(req: &Request) -> Result<Response> {
    let key = req.param("key")?;
    Ok(Response::json(
        &json!({ "key": key, "value": config::get(key) }),
    ))
}

fn greet(req: &Request) -> Result<Response> {
    let name = req.param("name")?;
    Ok(Response::json(&json!({ "hello": name })))
}

/// Asks the kernel whether the caller holds a permission (here, or at
/// `?org=`).
fn can(req: &Request) -> Result<Response> {
    let permission = req.param("permission")?;
    let allowed = match req.query_param("org") {
        Some(org) => authz::allowed_at(permission, &org),
        None => authz::allowed(permission),
    };
    Ok(Response::json(
        &json!({ "permission": permission, "allowed": allowed }),
    ))
}

fn fail(_: &Request) -> Result<Response> {
    Err(Error::validation("name", "name is required"))
}

tianshan_sdk::export_plugin!(Hello);
