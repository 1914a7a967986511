//! Plugin packages: install, refuse bad ones whole, upgrade under load,
//! enable/disable/uninstall, persistence across restarts.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::support::{TestKernel, metric_value, packages, with_version};
use tianshan_kernel::plugins::package::{Manifest, Package};

fn repack(
    id: &str,
    edit_manifest: impl FnOnce(&mut Manifest),
    component: Option<Vec<u8>>,
) -> Vec<u8> {
    let mut package = Package::from_bytes(&packages().bytes(id), usize::MAX).unwrap();
    edit_manifest(&mut package.manifest);
    if let Some(c) = component {
        package.component = c;
    }
    let text = toml::to_string(&package.manifest).unwrap();
    package.to_bytes(&text).unwrap()
}

#[test]
fn bad_packages_are_refused_whole_with_the_problem_named() {
    let k = TestKernel::start();
    let not_a_component = b"\0asm\x01\0\0\0".to_vec();
    let empty_component = b"\0asm\x0d\0\x01\0".to_vec();
    let cases: Vec<(&str, Vec<u8>, u16, &str, &str)> = vec![
        (
            "garbage",
            b"definitely not a package".to_vec(),
            422,
            "invalid_package",
            "not a plugin package",
        ),
        (
            "broken manifest",
            {
                let p = Package::from_bytes(&packages().bytes("hello"), usize::MAX).unwrap();
                p.to_bytes("id = \"hello\"\nversion = \"zero\"\n").unwrap()
            },
            422,
            "invalid_package",
            "plugin.toml",
        ),
        (
            "a 44 MB manifest",
            {
                let p = Package::from_bytes(&packages().bytes("hello"), usize::MAX).unwrap();
                let padding = format!("# {}\n", "x".repeat(1 << 20)).repeat(44);
                p.to_bytes(&format!("id = \"hello\"\nversion = \"0.2.0\"\n{padding}"))
                    .unwrap()
            },
            422,
            "invalid_package",
            "a manifest is at most",
        ),
        (
            "core module",
            repack("hello", |_| {}, Some(not_a_component)),
            422,
            "invalid_package",
            "not a WebAssembly component",
        ),
        (
            "missing exports",
            repack("hello", |_| {}, Some(empty_component)),
            422,
            "invalid_package",
            "exports no tianshan:plugin",
        ),
        (
            "unknown major",
            repack("hello", |m| m.contract = "2.0.0".parse().unwrap(), None),
            422,
            "contract_unsupported",
            "tianshan:plugin@2.0.0",
        ),
    ];
    for (what, bytes, status, code, needle) in cases {
        let (got, body) = k.install(bytes);
        assert_eq!(got, status, "{what}: {body}");
        assert_eq!(body["error"]["code"], code, "{what}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{what}: {message}");
        let (_, list) = k.get("/api/v1/plugins");
        assert_eq!(
            list["plugins"].as_array().unwrap().len(),
            0,
            "{what} left something installed"
        );
    }
    // Oversized: past the configured package limit (64 MiB default).
    let (status, body) = k.install(vec![0x1f; 65 << 20]);
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["code"], "payload_too_large");
}

#[test]
fn install_list_show_disable_enable_uninstall() {
    let k = TestKernel::start();
    k.install_ok("hello");
    let (status, body) = k.install(packages().bytes("hello"));
    assert_eq!(status, 409, "a second install is a conflict: {body}");

    let (_, list) = k.get("/api/v1/plugins");
    let hello = &list["plugins"][0];
    assert_eq!(hello["id"], "hello");
    assert_eq!(hello["version"], "0.1.0");
    assert_eq!(hello["state"], "enabled");

    let (status, show) = k.get("/api/v1/plugins/hello");
    assert_eq!(status, 200);
    assert_eq!(show["manifest"]["name"]["zh-CN"], "你好", "{show}");
    assert_eq!(show["limits"]["memory_mib"], 64);
    assert_eq!(show["limits"]["timeout_ms"], 5000);

    assert_eq!(
        k.request("POST", "/api/v1/plugins/hello/disable", None, None)
            .0,
        200
    );
    let (status, body) = k.get("/api/v1/p/hello/");
    assert_eq!(status, 503);
    assert_eq!(body["error"]["code"], "plugin_disabled");
    assert_eq!(
        k.get("/api/v1/plugins").1["plugins"][0]["state"],
        "disabled"
    );
    assert_eq!(
        k.request("POST", "/api/v1/plugins/hello/enable", None, None)
            .0,
        200
    );
    assert_eq!(k.get("/api/v1/p/hello/").0, 200);

    assert_eq!(
        k.request("DELETE", "/api/v1/plugins/hello", None, None).0,
        204
    );
    assert_eq!(k.get("/api/v1/p/hello/").0, 404);
    assert_eq!(
        k.request("DELETE", "/api/v1/plugins/hello", None, None).0,
        404
    );
}

#[test]
fn an_upgrade_under_load_loses_no_request() {
    let k = TestKernel::start();
    k.install_ok("hello");
    let v2 = with_version(&packages().bytes("hello"), "0.2.0");
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    let mut seen = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let (status, body) = k.get("/api/v1/p/hello/");
                        assert_eq!(status, 200, "request lost during upgrade: {body}");
                        seen.push(body["version"].as_str().unwrap().to_string());
                    }
                    seen
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(300));
        let (status, body) = k.request("PUT", "/api/v1/plugins/hello", None, Some(v2.clone()));
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["previous_version"], "0.1.0");
        assert_eq!(body["version"], "0.2.0");
        std::thread::sleep(Duration::from_millis(300));
        stop.store(true, Ordering::Relaxed);
        for worker in workers {
            let seen = worker.join().unwrap();
            assert!(seen.len() > 5, "too few requests: {}", seen.len());
            // Each client sees the switch once, never back.
            let first_new = seen
                .iter()
                .position(|v| v == "0.2.0")
                .expect("never saw 0.2.0");
            assert!(seen[..first_new].iter().all(|v| v == "0.1.0"));
            assert!(seen[first_new..].iter().all(|v| v == "0.2.0"), "{seen:?}");
        }
    });
    // Downgrades and same-version upgrades are refused.
    let (status, body) = k.request("PUT", "/api/v1/plugins/hello", None, Some(v2));
    assert_eq!(status, 409, "{body}");
    let (status, _) = k.request(
        "PUT",
        "/api/v1/plugins/hello",
        None,
        Some(packages().bytes("looper")),
    );
    assert_eq!(
        status, 422,
        "a package of another plugin cannot upgrade this one"
    );
}

#[test]
fn a_restart_keeps_installed_plugins_without_recompiling() {
    let k = TestKernel::start();
    k.install_ok("hello");
    k.install_ok("welcome");
    assert_eq!(
        k.request("POST", "/api/v1/plugins/welcome/disable", None, None)
            .0,
        200
    );
    let first = k.metrics();
    assert_eq!(
        metric_value(&first, "tianshan_plugin_compilations_total"),
        Some(2.0)
    );
    let (dir, tmp) = k.into_data_dir();

    // Installed offline through the CLI while the kernel is down.
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_tianshan"))
        .args(["plugin", "install"])
        .arg(packages().path("panicker"))
        .arg("--data-dir")
        .arg(&dir)
        .status()
        .unwrap();
    assert!(status.success());

    let k = TestKernel::start_in(&dir, &[]);
    let text = k.metrics();
    assert_eq!(
        metric_value(&text, "tianshan_plugin_compilations_total"),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        metric_value(&text, "tianshan_plugin_compile_cache_hits_total"),
        Some(3.0),
        "{text}"
    );
    assert_eq!(k.get("/api/v1/p/hello/").0, 200);
    assert_eq!(
        k.get("/api/v1/p/welcome/").0,
        503,
        "disabled stays disabled"
    );
    assert_eq!(k.get("/api/v1/p/panicker/").0, 500);
    // The offline install is in the audit trail like an API one.
    let (_, audit) = k.get("/api/v1/audit?action=plugin.install");
    let actors: Vec<&str> = audit["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["actor"].as_str().unwrap())
        .collect();
    assert_eq!(actors.len(), 3, "{audit}");
    assert!(actors[0].starts_with("cli:"), "{audit}");
    drop(k);
    drop(tmp);
}

#[test]
fn a_plugin_built_against_an_older_minor_contract_keeps_working() {
    let k = TestKernel::start();
    k.install_ok("legacy"); // built with wit-bindgen against wit/released/1.0.0
    let (status, body) = k.get("/api/v1/p/legacy/anything");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["contract"], "1.0.0");
    assert_eq!(body["caller"], "admin");
    assert_eq!(body["path"], "/anything");
    let (_, show) = k.get("/api/v1/plugins/legacy");
    assert_eq!(show["plugin"]["contract"], "1.0.0");
    // And the current contract's plugins run beside it.
    k.install_ok("hello");
    // A 1.2 plugin imports `approvals` and `datacenter`, which gained
    // functions in 1.3: it links, calls them, and sees the open ratio
    // `dcprobe.occupancy` as the `mean` its enum knows.
    k.install_ok("dcprobe");
    k.install_ok("legacy12");
    let (status, body) = k.get("/api/v1/p/legacy12/");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["contract"], "1.2.0");
    assert_eq!(body["notes"], 0, "{body}");
    assert_eq!(body["approval_found"], false, "{body}");
    assert_eq!(body["catalogue"]["dcprobe.occupancy"], "mean", "{body}");
    assert_eq!(body["catalogue"]["dcprobe.sites"], "stock", "{body}");
    let (_, list) = k.get("/api/v1/plugins");
    let contracts: Vec<(&str, &str)> = list["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["contract"].as_str().unwrap()))
        .collect();
    assert_eq!(
        contracts,
        vec![
            ("dcprobe", "1.4.0"),
            ("hello", "1.4.0"),
            ("legacy", "1.0.0"),
            ("legacy12", "1.2.0")
        ],
        "{list}"
    );
}
