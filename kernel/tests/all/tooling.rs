//! `tianshan plugin new`, `build` and `pack` give a package that installs
//! and answers.

use std::process::Command;

use crate::support::TestKernel;

/// Runs the `tianshan` CLI in `dir`, sharing compiled dependencies between
/// the tests that build a template plugin; fails the test when it fails.
pub(crate) fn tianshan(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    let output = Command::new(env!("CARGO_BIN_EXE_tianshan"))
        .current_dir(dir)
        .args(args)
        // Share compiled dependencies between runs of this test.
        .env(
            "CARGO_TARGET_DIR",
            tianshan_kernel::plugins::tooling::target_dir().join("template-plugins"),
        )
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "tianshan {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[test]
fn a_new_plugin_builds_packs_installs_and_answers() {
    let work = tempfile::tempdir().unwrap();
    tianshan(work.path(), &["plugin", "new", "my-notes"]);
    let dir = work.path().join("my-notes");
    assert!(dir.join("plugin.toml").exists());
    tianshan(&dir, &["plugin", "build"]);
    let out = tianshan(&dir, &["plugin", "pack"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("my-notes-0.1.0.tspkg"), "{stdout}");

    let k = TestKernel::start();
    let package = std::fs::read(dir.join("my-notes-0.1.0.tspkg")).unwrap();
    let (status, body) = k.install(package);
    assert_eq!(status, 201, "{body}");
    let (status, body) = k.get("/api/v1/p/my-notes/");
    assert_eq!(status, 200, "{body}");

    // A second `new` with the same name does not overwrite the author's work.
    let again = Command::new(env!("CARGO_BIN_EXE_tianshan"))
        .current_dir(work.path())
        .args(["plugin", "new", "my-notes"])
        .output()
        .unwrap();
    assert!(!again.status.success());
}

#[test]
fn invalid_plugin_names_are_refused() {
    let work = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tianshan"))
        .current_dir(work.path())
        .args(["plugin", "new", "Bad_Name"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a valid plugin id"));
}
