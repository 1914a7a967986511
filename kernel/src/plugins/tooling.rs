//! Plugin author tooling behind `tianshan plugin new|build|pack`, also used
//! by `tianshan up` and the test suite to build the bundled plugins.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};

use crate::core::ids::is_valid_id;
use crate::plugins::package::{COMPONENT_FILE, MANIFEST_FILE, Manifest, Package};

pub const WASM_TARGET: &str = "wasm32-wasip2";

/// The repository this binary was built from (for the SDK path and the
/// bundled plugins).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("kernel/ has a parent")
        .to_path_buf()
}

/// Cargo's target dir for this repository (`CARGO_TARGET_DIR` when set, as
/// CI does to reuse builds).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"))
}

fn pinned_toolchain() -> &'static str {
    include_str!("../../../rust-toolchain.toml")
        .lines()
        .find_map(|l| l.strip_prefix("channel = "))
        .map(|v| v.trim().trim_matches('"'))
        .unwrap_or("stable")
}

const TEMPLATE: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        include_str!("../../../sdk/template/Cargo.toml.tmpl"),
    ),
    (
        "rust-toolchain.toml",
        include_str!("../../../sdk/template/rust-toolchain.toml.tmpl"),
    ),
    (
        "plugin.toml",
        include_str!("../../../sdk/template/plugin.toml.tmpl"),
    ),
    (
        "src/lib.rs",
        include_str!("../../../sdk/template/src/lib.rs.tmpl"),
    ),
    (
        "ui/index.html",
        include_str!("../../../sdk/template/ui/index.html.tmpl"),
    ),
    (
        "ui/app.js",
        include_str!("../../../sdk/template/ui/app.js.tmpl"),
    ),
    (
        "ui/i18n/zh-CN.json",
        include_str!("../../../sdk/template/ui/i18n/zh-CN.json.tmpl"),
    ),
    (
        "ui/i18n/en.json",
        include_str!("../../../sdk/template/ui/i18n/en.json.tmpl"),
    ),
    (
        ".gitignore",
        include_str!("../../../sdk/template/.gitignore.tmpl"),
    ),
];

/// `tianshan plugin new NAME`: a working plugin in `parent/NAME`.
pub fn new_plugin(name: &str, parent: &Path, sdk_path: Option<&Path>) -> anyhow::Result<PathBuf> {
    if !is_valid_id(name) {
        bail!(
            "{name:?} is not a valid plugin id: 2-32 characters of a-z, 0-9 and '-', starting with a letter"
        );
    }
    let dir = parent.join(name);
    if dir.exists() {
        bail!("{} already exists", dir.display());
    }
    let sdk = match sdk_path {
        Some(p) => p.to_path_buf(),
        None => repo_root().join("sdk"),
    };
    let sdk = sdk
        .canonicalize()
        .with_context(|| format!("the SDK is not at {} (pass --sdk-path)", sdk.display()))?;
    for (file, text) in TEMPLATE {
        let path = dir.join(file);
        std::fs::create_dir_all(path.parent().expect("template files have a parent"))?;
        let text = text
            .replace("{{name}}", name)
            .replace("{{crate_name}}", &name.replace('-', "_"))
            .replace("{{sdk_path}}", &sdk.display().to_string())
            .replace("{{toolchain}}", pinned_toolchain());
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(dir)
}

/// How to run cargo for plugins.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Cargo profile; `release` when unset.
    pub profile: Option<String>,
    pub target_dir: Option<PathBuf>,
    /// Build these packages (`-p`) instead of the one in the directory.
    pub packages: Vec<String>,
    /// No progress bar (tests, CI logs).
    pub quiet: bool,
}

/// Runs cargo for wasm32-wasip2 in `dir` and returns the built components,
/// one per cdylib, in build order.
pub fn build(dir: &Path, options: &BuildOptions) -> anyhow::Result<Vec<PathBuf>> {
    ensure_wasm_target(dir)?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(dir)
        .args([
            "build",
            "--target",
            WASM_TARGET,
            "--message-format=json-render-diagnostics",
        ])
        .args(["--profile", options.profile.as_deref().unwrap_or("release")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(target_dir) = &options.target_dir {
        cmd.arg("--target-dir").arg(target_dir);
    }
    for package in &options.packages {
        cmd.args(["-p", package]);
    }
    let mut child = cmd.spawn().context("running cargo (is Rust installed?)")?;
    let progress = if options.quiet {
        ProgressBar::hidden()
    } else {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {elapsed:>3} {msg}").expect("valid template"),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        bar.set_message(format!("building for {WASM_TARGET}…"));
        bar
    };
    // Drain stderr on a thread so cargo never blocks on a full pipe.
    let stderr = child.stderr.take().expect("piped stderr");
    let stderr_reader = std::thread::spawn(move || {
        let mut text = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            text.push_str(&line);
            text.push('\n');
        }
        text
    });
    let mut wasm = Vec::new();
    let mut compiled = 0usize;
    for line in BufReader::new(child.stdout.take().expect("piped stdout")).lines() {
        let line = line?;
        let Ok(message) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if message["reason"] == "compiler-artifact" {
            compiled += 1;
            let name = message["target"]["name"].as_str().unwrap_or("?");
            progress.set_message(format!("compiled {compiled} crates, last {name}"));
            let is_cdylib = message["target"]["kind"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k == "cdylib"));
            if is_cdylib && let Some(files) = message["filenames"].as_array() {
                wasm.extend(
                    files
                        .iter()
                        .filter_map(|f| f.as_str())
                        .filter(|f| f.ends_with(".wasm"))
                        .map(PathBuf::from),
                );
            }
        }
    }
    let status = child.wait()?;
    let stderr = stderr_reader.join().unwrap_or_default();
    progress.finish_and_clear();
    if !status.success() {
        bail!("cargo build failed:\n{stderr}");
    }
    if wasm.is_empty() {
        bail!("cargo built no WebAssembly component: is the crate a cdylib?");
    }
    Ok(wasm)
}

/// Makes sure the toolchain that builds `dir` has the standard library for
/// [`WASM_TARGET`]. rustup installs a `rust-toolchain.toml`'s targets only
/// when it installs the toolchain itself, so a machine that already had the
/// pinned toolchain lacks the target; install it through rustup (saying so)
/// or, without rustup, say exactly what is missing.
pub fn ensure_wasm_target(dir: &Path) -> anyhow::Result<()> {
    if wasm_target_installed(dir) {
        return Ok(());
    }
    let rustup = Command::new("rustup")
        .current_dir(dir)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !rustup {
        bail!(
            "the Rust standard library for {WASM_TARGET} is not installed, and rustup is not \
             on PATH to install it. Install rustup (https://rustup.rs) and run \
             `rustup target add {WASM_TARGET}`, or add the target to your Rust installation \
             another way"
        );
    }
    eprintln!(
        "The {WASM_TARGET} target that plugins are built for is missing; installing it with \
         `rustup target add {WASM_TARGET}` (once)…"
    );
    let status = Command::new("rustup")
        .current_dir(dir)
        .args(["target", "add", WASM_TARGET])
        .status()
        .context("running rustup")?;
    if !status.success() || !wasm_target_installed(dir) {
        bail!(
            "`rustup target add {WASM_TARGET}` failed ({status}); run it yourself in {} and \
             try again",
            dir.display()
        );
    }
    Ok(())
}

/// Whether the rustc that cargo uses in `dir` has a `core` for the target.
fn wasm_target_installed(dir: &Path) -> bool {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let Ok(out) = Command::new(rustc)
        .current_dir(dir)
        .args(["--print", "target-libdir", "--target", WASM_TARGET])
        .stderr(Stdio::null())
        .output()
    else {
        return false;
    };
    let libdir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    out.status.success()
        && std::fs::read_dir(&libdir).is_ok_and(|entries| {
            entries.filter_map(|e| e.ok()).any(|e| {
                e.file_name()
                    .to_str()
                    .is_some_and(|n| n.starts_with("libcore-") && n.ends_with(".rlib"))
            })
        })
}

/// Packs the plugin in `dir` (its `plugin.toml` and `ui/`) with the
/// component at `wasm` into `out_dir/ID-VERSION.tspkg`.
pub fn pack(dir: &Path, wasm: &Path, out_dir: &Path) -> anyhow::Result<PathBuf> {
    let manifest_text = std::fs::read_to_string(dir.join(MANIFEST_FILE))
        .with_context(|| format!("reading {}", dir.join(MANIFEST_FILE).display()))?;
    let manifest = Manifest::parse(&manifest_text).map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let component = std::fs::read(wasm).with_context(|| format!("reading {}", wasm.display()))?;
    let mut ui = std::collections::HashMap::new();
    let ui_dir = dir.join("ui");
    if ui_dir.is_dir() {
        collect_files(&ui_dir, &ui_dir, &mut ui)?;
    }
    let package = Package {
        manifest,
        component,
        ui,
    };
    for entry in &package.manifest.menu {
        if !package.ui.contains_key(entry.file()) {
            bail!(
                "menu entry {:?} points to ui/{}, which does not exist",
                entry.id,
                entry.path
            );
        }
    }
    let bytes = package.to_bytes(&manifest_text)?;
    std::fs::create_dir_all(out_dir)?;
    let out = out_dir.join(format!(
        "{}-{}.tspkg",
        package.manifest.id, package.manifest.version
    ));
    std::fs::write(&out, bytes).with_context(|| format!("writing {}", out.display()))?;
    Ok(out)
}

fn collect_files(
    root: &Path,
    dir: &Path,
    out: &mut std::collections::HashMap<String, Vec<u8>>,
) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            collect_files(root, &path, out)?;
        } else if kind.is_file() {
            let rel = path
                .strip_prefix(root)
                .expect("walked below root")
                .to_string_lossy()
                .replace('\\', "/");
            out.insert(rel, std::fs::read(&path)?);
        }
    }
    Ok(())
}

/// Where `tianshan plugin build` leaves the component for `pack`.
pub fn built_component_path(dir: &Path) -> PathBuf {
    dir.join("target").join("tianshan").join(COMPONENT_FILE)
}

/// A plugin crate inside this repository.
#[derive(Debug, Clone)]
pub struct BundledPlugin {
    pub dir: PathBuf,
    pub crate_name: String,
}

/// The crates under `folder` (relative to the repo) that have a plugin.toml.
pub fn bundled_plugins(folder: &str) -> anyhow::Result<Vec<BundledPlugin>> {
    let mut found = Vec::new();
    let root = repo_root().join(folder);
    for entry in std::fs::read_dir(&root).with_context(|| format!("listing {}", root.display()))? {
        let dir = entry?.path();
        if !dir.join(MANIFEST_FILE).exists() {
            continue;
        }
        let cargo_toml = std::fs::read_to_string(dir.join("Cargo.toml"))?;
        let crate_name = cargo_toml
            .lines()
            .find_map(|l| l.strip_prefix("name = "))
            .map(|v| v.trim().trim_matches('"').to_string())
            .with_context(|| format!("no package name in {}/Cargo.toml", dir.display()))?;
        found.push(BundledPlugin { dir, crate_name });
    }
    found.sort_by(|a, b| a.crate_name.cmp(&b.crate_name));
    Ok(found)
}

/// Builds the given in-repo plugins in one cargo run (profile `guest`) and
/// packs each into `out_dir`. Returns the package paths, in input order.
pub fn build_and_pack_bundled(
    plugins: &[BundledPlugin],
    out_dir: &Path,
    quiet: bool,
) -> anyhow::Result<Vec<PathBuf>> {
    let target_dir = target_dir().join("guests");
    let options = BuildOptions {
        profile: Some("guest".into()),
        target_dir: Some(target_dir),
        packages: plugins.iter().map(|p| p.crate_name.clone()).collect(),
        quiet,
    };
    let wasm = build(&repo_root(), &options)?;
    plugins
        .iter()
        .map(|plugin| {
            let file = format!("{}.wasm", plugin.crate_name.replace('-', "_"));
            let component = wasm
                .iter()
                .find(|w| w.file_name().is_some_and(|n| n == file.as_str()))
                .with_context(|| format!("cargo did not report {file}"))?;
            pack(&plugin.dir, component, out_dir)
        })
        .collect()
}
