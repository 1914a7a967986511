//! Login throttling that holds (simultaneous guesses, addresses behind a
//! proxy, lockout shared through the database and kept across restarts,
//! the owner's usual address, an administrator's unlock), the forced
//! password change after a reset, and self-service sessions.

use serde_json::{Value, json};

use crate::identity::{PASSWORD, two_counties, user};
use crate::support::TestKernel;

fn login_from(k: &TestKernel, username: &str, password: &str, from: &str) -> (u16, Value) {
    let body = json!({"username": username, "password": password})
        .to_string()
        .into_bytes();
    let headers: Vec<(&str, &str)> = if from.is_empty() {
        vec![]
    } else {
        vec![("x-forwarded-for", from)]
    };
    let (status, bytes, _) = k.raw("POST", "/api/v1/auth/login", Some(""), Some(body), &headers);
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn status_as(k: &TestKernel, path: &str, token: &str) -> u16 {
    k.request("GET", path, Some(token), None).0
}

/// A kernel behind a "proxy" at 127.0.0.1 (the test client), so requests
/// can come from any address through `X-Forwarded-For`.
fn start_behind_proxy(dir: &std::path::Path) -> TestKernel {
    let config = dir.join("behind-proxy.toml");
    std::fs::write(&config, "[auth]\ntrusted-proxies = [\"127.0.0.1\"]\n").unwrap();
    TestKernel::start_in(dir, &["--config", config.to_str().unwrap()])
}

#[test]
fn fifty_simultaneous_guesses_are_mostly_refused_and_the_owner_still_gets_in() {
    let dir = tempfile::tempdir().unwrap();
    let k = start_behind_proxy(dir.path());
    let t = two_counties(&k);
    let victim = user(&k, "victim", &t.unit_a);
    const USUAL: &str = "198.51.100.1";
    const ATTACKER: &str = "203.0.113.66";
    const NEW_DESK: &str = "192.0.2.5";
    assert_eq!(login_from(&k, "victim", PASSWORD, USUAL).0, 200);

    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..50)
            .map(|i| {
                let k = &k;
                s.spawn(move || login_from(k, "victim", &format!("guess number {i}"), ATTACKER).0)
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let refused = statuses.iter().filter(|s| **s == 429).count();
    let checked = statuses.iter().filter(|s| **s == 401).count();
    assert_eq!(refused + checked, 50, "{statuses:?}");
    assert!(
        checked <= 5,
        "at most the 5 free tries were checked, got {checked}: {statuses:?}"
    );
    // The owner at their usual desk is not locked out by a stranger.
    assert_eq!(login_from(&k, "victim", PASSWORD, USUAL).0, 200);
    // From an address the account never used, the lock holds, even with
    // the right password.
    let (status, out) = login_from(&k, "victim", PASSWORD, NEW_DESK);
    assert_eq!(status, 429, "{out}");
    assert_eq!(out["error"]["code"], "too_many_attempts");
    let (_, shown) = k.get(&format!("/api/v1/users/{victim}"));
    assert!(shown["locked_until"].as_i64().is_some(), "{shown}");

    // The lock is in the database: a restarted node keeps it.
    let (data_dir, tmp) = k.into_data_dir();
    let k = start_behind_proxy(&data_dir);
    let _keep = (tmp, dir);
    assert_eq!(login_from(&k, "victim", PASSWORD, NEW_DESK).0, 429);

    // An administrator lifts it.
    let (status, out) = k.request(
        "POST",
        &format!("/api/v1/users/{victim}/unlock"),
        None,
        Some(b"{}".to_vec()),
    );
    assert_eq!(status, 200, "{out}");
    assert!(out["cleared"].as_u64().unwrap() >= 1, "{out}");
    assert_eq!(login_from(&k, "victim", PASSWORD, NEW_DESK).0, 200);
    // The refusals and the unlock are on the audit trail.
    let (_, audit) = k.get("/api/v1/audit?action=user.unlock");
    assert_eq!(audit["records"].as_array().unwrap().len(), 1, "{audit}");
}

#[test]
fn a_client_cannot_choose_its_address_without_a_trusted_proxy() {
    // No trusted proxies: X-Forwarded-For is the client's own claim and is
    // ignored, so rotating it does not escape the per-address limit.
    let k = TestKernel::start();
    let mut statuses = Vec::new();
    for i in 0..22 {
        let forged = format!("10.9.{i}.1");
        statuses.push(login_from(&k, &format!("nobody{i}"), "wrong password!", &forged).0);
    }
    assert!(statuses[..20].iter().all(|s| *s == 401), "{statuses:?}");
    assert_eq!(statuses[21], 429, "{statuses:?}");
}

#[test]
fn a_reset_password_must_be_replaced_at_the_next_login() {
    let k = TestKernel::start();
    let t = two_counties(&k);
    let id = user(&k, "reset.me", &t.unit_a);
    let token = k.login("reset.me", PASSWORD);
    let (status, _) = k.request(
        "POST",
        &format!("/api/v1/users/{id}/password"),
        None,
        Some(
            json!({"password": "chosen by the admin"})
                .to_string()
                .into_bytes(),
        ),
    );
    assert_eq!(status, 204);
    // The reset ended the old session.
    assert_eq!(status_as(&k, "/api/v1/me", &token), 401);
    let (status, out) = login_from(&k, "reset.me", "chosen by the admin", "");
    assert_eq!(status, 403, "{out}");
    assert_eq!(out["error"]["code"], "password_change_required", "{out}");
    assert!(
        out["token"].is_null(),
        "no session before the change: {out}"
    );
    let change = |current: &str, new: &str| {
        k.request(
            "POST",
            "/api/v1/auth/password",
            Some(""),
            Some(
                json!({"username": "reset.me", "current_password": current, "new_password": new})
                    .to_string()
                    .into_bytes(),
            ),
        )
    };
    assert_eq!(change("a wrong guess!", "my very own secret").0, 422);
    let (status, out) = change("chosen by the admin", "chosen by the admin");
    assert_eq!(status, 422, "{out}");
    assert_eq!(out["error"]["field"], "new_password");
    assert_eq!(change("chosen by the admin", "my very own secret").0, 204);
    assert_eq!(login_from(&k, "reset.me", "my very own secret", "").0, 200);
}

#[test]
fn users_see_and_end_their_own_sessions() {
    let k = TestKernel::start();
    let t = two_counties(&k);
    user(&k, "two.phones", &t.unit_a);
    let first = k.login("two.phones", PASSWORD);
    let second = k.login("two.phones", PASSWORD);
    let (status, out) = k.request("GET", "/api/v1/auth/sessions", Some(&second), None);
    assert_eq!(status, 200, "{out}");
    let sessions = out["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{out}");
    let other = sessions
        .iter()
        .find(|s| s["current"] == false)
        .expect("the other session");
    assert_eq!(other["address"], "127.0.0.1");
    let other_id = other["id"].as_str().unwrap();
    // Someone else cannot end it.
    let (status, _) = k.request(
        "DELETE",
        &format!("/api/v1/auth/sessions/{other_id}"),
        None,
        None,
    );
    assert_eq!(status, 404);
    let (status, _) = k.request(
        "DELETE",
        &format!("/api/v1/auth/sessions/{other_id}"),
        Some(&second),
        None,
    );
    assert_eq!(status, 204);
    assert_eq!(status_as(&k, "/api/v1/me", &first), 401);
    assert_eq!(status_as(&k, "/api/v1/me", &second), 200);
}
