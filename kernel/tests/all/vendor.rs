//! Issues 12, 15 and 22: the UI kit's front-end libraries (ECharts, ZXing,
//! the region maps) come
//! from the npm registry at build time — pinned in
//! kernel/portal/vendor/package-lock.json, installed by kernel/build.rs —
//! and the kernel serves them beside the kit, with the kit's headers.

use serde_json::Value;
use tianshan_kernel::http::static_files::{PLUGIN_UI_CSP, VENDOR_FILES};

use crate::support::{self, TestKernel};

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

/// The version the lock pins for `package`.
fn locked(package: &str) -> String {
    let lock = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("portal/vendor/package-lock.json"),
    )
    .unwrap();
    let lock: Value = serde_json::from_str(&lock).unwrap();
    lock["packages"][format!("node_modules/{package}")]["version"]
        .as_str()
        .unwrap_or_else(|| panic!("{package} is not in the lock"))
        .to_string()
}

/// Every vendor file is served non-empty, as JavaScript, with the plugin
/// pages' CSP (so a sandboxed page may load it: `script-src 'self'`),
/// `nosniff` and the CORS header the opaque-origin pages need; kept a year
/// only under the version the lock pins. A kernel built without npm embeds
/// them empty: outside CI that skips the test saying so, under CI it fails.
#[test]
fn vendor_files_are_served() {
    let names: Vec<&str> = VENDOR_FILES.iter().map(|f| f.name).collect();
    assert_eq!(names[..2], ["echarts.min.js", "zxing.min.js"]);
    // A map per province of the mainland, Xinjiang's among them.
    assert_eq!(names.iter().filter(|n| n.starts_with("map-")).count(), 31);
    assert!(names.contains(&"map-65.json"));
    let empty: Vec<&str> = VENDOR_FILES
        .iter()
        .filter(|f| f.bytes.is_empty())
        .map(|f| f.name)
        .collect();
    if !empty.is_empty() {
        let why = format!(
            "the kernel was built without the UI kit's libraries ({empty:?} are empty): \
             install npm and build with access to the npm registry (see the build's warning)"
        );
        assert!(!support::under_ci(), "CI=true: {why}");
        eprintln!("skipping: {why}");
        return;
    }
    let k = TestKernel::start();
    for file in VENDOR_FILES {
        assert_eq!(file.version, locked(file.package), "{}", file.name);
        let versioned = format!("/ui/kit/vendor/{}?v={}", file.name, file.version);
        let (status, bytes, headers) = k.raw("GET", &versioned, Some(""), None, &[]);
        assert_eq!(status, 200, "{versioned}");
        assert_eq!(bytes.len(), file.bytes.len(), "{versioned}");
        if file.global.is_empty() {
            // A region map: GeoJSON whose features name the prefectures.
            assert!(
                header(&headers, "content-type")[0].starts_with("application/json"),
                "{headers:?}"
            );
            let map: Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(map["type"], "FeatureCollection", "{versioned}");
            assert!(map["features"][0]["properties"]["name"].is_string());
        } else {
            assert!(bytes.len() > 100_000, "{versioned}: {} bytes", bytes.len());
            assert!(
                header(&headers, "content-type")[0].contains("javascript"),
                "{headers:?}"
            );
        }
        assert_eq!(header(&headers, "content-security-policy"), [PLUGIN_UI_CSP]);
        assert_eq!(header(&headers, "x-content-type-options"), ["nosniff"]);
        assert_eq!(header(&headers, "access-control-allow-origin"), ["*"]);
        assert_eq!(
            header(&headers, "cache-control"),
            ["public, max-age=31536000, immutable"]
        );
        eprintln!(
            "{} {} ({}): {} bytes",
            file.package,
            file.version,
            file.name,
            bytes.len()
        );
        // Unversioned, or naming another version: revalidated, never kept.
        for path in [
            format!("/ui/kit/vendor/{}", file.name),
            format!("/ui/kit/vendor/{}?v=0.0.1", file.name),
        ] {
            let (status, bytes, headers) = k.raw("GET", &path, Some(""), None, &[]);
            assert_eq!(status, 200, "{path}");
            assert_eq!(bytes.len(), file.bytes.len());
            assert_eq!(header(&headers, "cache-control"), ["no-cache"], "{path}");
        }
    }
    // The index the kit imports names each file's versioned address.
    let (status, bytes, headers) = k.raw("GET", "/ui/kit/vendor/index.js", Some(""), None, &[]);
    assert_eq!(status, 200);
    assert!(header(&headers, "content-type")[0].contains("javascript"));
    let index = String::from_utf8(bytes).unwrap();
    for file in VENDOR_FILES {
        assert!(
            index.contains(&format!(
                "\"/ui/kit/vendor/{}?v={}\"",
                file.name, file.version
            )),
            "{index}"
        );
    }
    assert_eq!(
        k.raw("GET", "/ui/kit/vendor/nope.js", Some(""), None, &[])
            .0,
        404
    );
}
