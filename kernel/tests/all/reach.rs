//! Administrative powers stop where the actor's reach stops: a prefecture
//! admin must not reset, edit, disable, unlock or re-bind a user who holds
//! a role above or outside the prefecture, even when that user's home unit
//! is inside it (the attack: reset a platform admin's password, then log in
//! as them).

use serde_json::{Value, json};
use tianshan_kernel::identity::orgs::unified_social_credit_code;

use crate::identity::{PASSWORD, bind, org, person, two_counties, user};
use crate::support::TestKernel;

/// One target of the table: a user homed in unit A with some roles.
struct Target {
    name: &'static str,
    id: String,
    /// A `member` binding at county A, made by the platform admin, for the
    /// delete row.
    spare_binding: String,
}

#[test]
fn administrative_powers_respect_the_targets_reach() {
    let k = TestKernel::start();
    let root = "org-650000";
    let t = two_counties(&k);
    let other_pref = org(&k, root, "prefecture", "653100", "喀什地区");
    let other_unit = org(
        &k,
        &other_pref,
        "unit",
        &unified_social_credit_code("653100", 1),
        "喀什地区机关事务管理局",
    );
    let actors = [
        (
            "prefecture admin",
            person(&k, "pref.admin", &t.unit_a, &[("org-admin", &t.prefecture)]),
        ),
        (
            "county admin",
            person(&k, "county.admin", &t.unit_a, &[("org-admin", &t.county_a)]),
        ),
        ("platform admin", k.token.clone()),
    ];
    // (target kind, home, roles) → expected status per actor above, for
    // a successful action's status `ok`.
    type Kind = (&'static str, bool, &'static [(&'static str, &'static str)]);
    let kinds: &[Kind] = &[
        ("platform", false, &[("platform-admin", "root")]),
        ("auditor", false, &[("auditor", "root")]),
        ("pref-peer", false, &[("org-admin", "prefecture")]),
        ("county-b-admin", false, &[("org-admin", "county_b")]),
        ("plain", false, &[]),
        ("outsider", true, &[]),
    ];
    let at = |which: &str| -> String {
        match which {
            "root" => root.to_string(),
            "prefecture" => t.prefecture.clone(),
            "county_b" => t.county_b.clone(),
            other => panic!("{other}"),
        }
    };
    // What each actor may do to each kind: R = reach (2xx), F = 403, N = 404.
    let expect = |kind: &str, actor: usize| -> char {
        match (kind, actor) {
            (_, 2) => 'R',
            ("outsider", _) => 'N',
            ("platform" | "auditor", _) => 'F',
            ("pref-peer" | "county-b-admin", 0) => 'R',
            ("pref-peer" | "county-b-admin", 1) => 'F',
            ("plain", _) => 'R',
            _ => unreachable!(),
        }
    };
    let mut failures = Vec::new();
    for (a, (actor_name, token)) in actors.iter().enumerate() {
        // Fresh targets per actor, so one actor's changes do not decide
        // another's rows.
        let targets: Vec<Target> = kinds
            .iter()
            .map(|(kind, outside, roles)| {
                let name: &'static str = Box::leak(format!("t{a}.{kind}").into_boxed_str());
                let home = if *outside { &other_unit } else { &t.unit_a };
                let id = user(&k, name, home);
                for (role, where_) in *roles {
                    bind(&k, &id, role, &at(where_));
                }
                let spare_at = if *outside { &other_pref } else { &t.county_a };
                let spare_binding = bind(&k, &id, "member", spare_at);
                Target {
                    name: kind,
                    id,
                    spare_binding,
                }
            })
            .collect();
        for target in &targets {
            let want = expect(target.name, a);
            let rows: Vec<(&str, String, Value, u16)> = vec![
                (
                    "POST",
                    format!("/api/v1/users/{}/password", target.id),
                    json!({"password": "taken over by a neighbour"}),
                    204,
                ),
                (
                    "PATCH",
                    format!("/api/v1/users/{}", target.id),
                    json!({"display_name": "renamed"}),
                    200,
                ),
                (
                    "POST",
                    format!("/api/v1/users/{}/unlock", target.id),
                    json!({}),
                    200,
                ),
                (
                    "POST",
                    "/api/v1/bindings".into(),
                    json!({"user": target.id, "role": "org-admin", "org": t.unit_a}),
                    201,
                ),
                (
                    "DELETE",
                    format!("/api/v1/bindings/{}", target.spare_binding),
                    Value::Null,
                    204,
                ),
                (
                    "PATCH",
                    format!("/api/v1/users/{}", target.id),
                    json!({"disabled": true}),
                    200,
                ),
            ];
            for (method, path, body, ok_status) in rows {
                let expected = match want {
                    'R' => ok_status,
                    'F' => 403,
                    _ => 404,
                };
                let body = (!body.is_null()).then(|| body.to_string().into_bytes());
                let (status, out) = k.request(method, &path, Some(token), body);
                if status != expected {
                    failures.push(format!(
                        "{actor_name} → {} {method} {path}: {status}, want {expected}: {out}",
                        target.name
                    ));
                }
                if status == 403 {
                    assert_eq!(out["error"]["code"], "forbidden", "{out}");
                }
                if status == 404 {
                    assert_eq!(out["error"]["code"], "not_found", "{out}");
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_prefecture_admin_cannot_take_over_a_platform_admin_homed_in_its_unit() {
    let k = TestKernel::start();
    let t = two_counties(&k);
    let pref_admin = person(&k, "pref.admin", &t.unit_a, &[("org-admin", &t.prefecture)]);
    let boss = user(&k, "region.boss", &t.unit_a);
    bind(&k, &boss, "platform-admin", "org-650000");
    let (status, out) = k.request(
        "POST",
        &format!("/api/v1/users/{boss}/password"),
        Some(&pref_admin),
        Some(
            json!({"password": "taken over by a neighbour"})
                .to_string()
                .into_bytes(),
        ),
    );
    assert_eq!(status, 403, "{out}");
    // The neighbour's password does not open the account; the owner's does.
    let login = |password: &str| {
        k.request(
            "POST",
            "/api/v1/auth/login",
            Some(""),
            Some(
                json!({"username": "region.boss", "password": password})
                    .to_string()
                    .into_bytes(),
            ),
        )
        .0
    };
    assert_eq!(login("taken over by a neighbour"), 401);
    assert_eq!(login(PASSWORD), 200);
    // Nor can it hand out a role it does not hold where it binds.
    let plain = user(&k, "plain.a", &t.unit_a);
    for (role, at) in [
        ("platform-admin", t.prefecture.as_str()),
        ("auditor", t.unit_a.as_str()),
    ] {
        let (status, out) = k.request(
            "POST",
            "/api/v1/bindings",
            Some(&pref_admin),
            Some(
                json!({"user": plain, "role": role, "org": at})
                    .to_string()
                    .into_bytes(),
            ),
        );
        assert_eq!(status, 403, "{role}: {out}");
        assert_eq!(out["error"]["field"], "role", "{out}");
    }
    // What it holds, it may grant inside its subtree.
    let (status, out) = k.request(
        "POST",
        "/api/v1/bindings",
        Some(&pref_admin),
        Some(
            json!({"user": plain, "role": "org-admin", "org": t.county_b})
                .to_string()
                .into_bytes(),
        ),
    );
    assert_eq!(status, 201, "{out}");
}
