//! Plugin packages: one `.tspkg` file per plugin version, a gzip'd tar of
//! `plugin.toml` (the manifest), `plugin.wasm` (the component) and `ui/**`
//! (static assets). Parsing checks everything that can be checked without
//! compiling; a bad package is refused with an error naming the problem.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::core::error::{ApiError, ErrorCode};
use crate::core::ids::{KERNEL_NAMES, is_valid_id};
use crate::services::datacenter::Granularity;
use crate::services::datacenter::dashboards::{Chart, Panel, PanelKind};

pub const MANIFEST_FILE: &str = "plugin.toml";
/// The largest `plugin.toml` a package may carry. A real manifest is a few
/// KiB (the assets system's, with every role, menu entry, index and job, is
/// under 10 KiB); the kernel parses and keeps it for every installed
/// version, so a 44 MB one is an attack on memory, not a plugin.
pub const MAX_MANIFEST_BYTES: u64 = 256 * 1024;
pub const COMPONENT_FILE: &str = "plugin.wasm";
pub const UI_DIR: &str = "ui/";

/// Capabilities a manifest may request in contract 1.0.
pub const KNOWN_CAPABILITIES: [&str; 1] = ["clock"];

pub use crate::core::text::LocalizedText;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ManifestLimits {
    pub memory_mib: Option<u64>,
    pub timeout_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MenuEntry {
    pub id: String,
    pub label: LocalizedText,
    /// Relative to the plugin's `ui/` folder.
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permission: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon: Option<String>,
}

impl MenuEntry {
    /// The file under ui/ the entry opens: the path without its `#fragment`
    /// or `?query` (a single-page UI routes by fragment).
    pub fn file(&self) -> &str {
        self.path.split(['#', '?']).next().unwrap_or_default()
    }
}

/// A permission the plugin defines, e.g. `assets.register`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PermissionDecl {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<LocalizedText>,
    /// Roles (kernel roles such as `member`, or this plugin's roles) that
    /// hold the permission once the plugin is installed.
    #[serde(default)]
    pub roles: Vec<String>,
}

/// A role the plugin defines, bindable to users like a kernel role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleDecl {
    pub id: String,
    pub name: LocalizedText,
    pub permissions: Vec<String>,
}

/// One declared index: a field, or fields in order (composite).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum IndexDecl {
    Field(String),
    Fields(Vec<String>),
}

impl IndexDecl {
    pub fn fields(&self) -> Vec<String> {
        match self {
            IndexDecl::Field(f) => vec![f.clone()],
            IndexDecl::Fields(list) => list.clone(),
        }
    }
}

/// At most this many fields in one composite index.
pub const MAX_INDEX_FIELDS: usize = 6;

/// A document collection the plugin owns (contract 1.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectionDecl {
    pub name: String,
    /// Top-level fields of the records that filters and sorts use often;
    /// the kernel keeps an index on each. A list of fields is one composite
    /// index in that order, which also carries the record's org and id, so
    /// a list page or a grouped total over those fields is answered from
    /// the index alone (`["state", "category", "value"]`).
    #[serde(default)]
    pub indexes: Vec<IndexDecl>,
    /// Reference data (standards, a warehouse catalogue): users of orgs
    /// below a record's org may read it too. Writing still needs the
    /// record's org within the caller's reach.
    #[serde(default, rename = "read-below")]
    pub read_below: bool,
}

/// A scheduled job: at each time the cron schedule names, the kernel sends
/// the plugin one `kernel.job.<name>` event (once across all nodes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobDecl {
    pub name: String,
    /// Five-field cron (minute hour day month weekday) or `@daily` etc., in
    /// the kernel's time zone.
    pub schedule: String,
}

/// A panel a plugin offers for dashboards: `id` (unique in the plugin), a
/// title in both languages, and the panel's kind, indicator, chart and
/// buckets as a dashboard holds them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PanelDecl {
    pub id: String,
    pub title: LocalizedText,
    pub kind: PanelKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub indicator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart: Option<Chart>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per: Option<Granularity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span: Option<u8>,
}

impl PanelDecl {
    /// The panel a dashboard stores when an editor picks this one of
    /// `plugin`'s (a positions panel shows the offering plugin's terminals).
    pub fn panel(&self, plugin: &str) -> Panel {
        Panel {
            plugin: (self.kind == PanelKind::Positions).then(|| plugin.to_string()),
            span: self.span,
            kind: self.kind,
            indicator: self.indicator.clone(),
            chart: self.chart,
            per: self.per,
            title: Some(self.title.clone()),
        }
    }
}

/// `plugin.toml`. Unknown fields are refused so a typo never silently
/// drops a limit or a capability.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub id: String,
    pub version: semver::Version,
    /// The `tianshan:plugin` contract version the plugin is built against.
    pub contract: semver::Version,
    pub publisher: String,
    pub name: LocalizedText,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<LocalizedText>,
    #[serde(default)]
    pub capabilities: Vec<String>,
    #[serde(default)]
    pub limits: ManifestLimits,
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    #[serde(default)]
    pub menu: Vec<MenuEntry>,
    /// Routes anyone may call without logging in, as `"GET /"` or
    /// `"GET /docs/*"` (a prefix). Everything else needs a session; the
    /// kernel enforces this before the plugin runs.
    #[serde(default)]
    pub public: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub permissions: Vec<PermissionDecl>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<RoleDecl>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub collections: Vec<CollectionDecl>,
    /// Topics (or `prefix.*` patterns) of other plugins' events this plugin
    /// wants; each takes effect once an administrator grants it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscribes: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jobs: Vec<JobDecl>,
    /// Panels the plugin offers for dashboards (docs/wall.md), each one
    /// of its indicators (or one it feeds) shown one way.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub panels: Vec<PanelDecl>,
    /// A route (`/demo/seed`) that `tianshan up` POSTs to once, as the
    /// kernel, so the demo start shows the plugin with realistic data.
    #[serde(default, rename = "demo-seed", skip_serializing_if = "Option::is_none")]
    pub demo_seed: Option<String>,
}

impl Manifest {
    pub fn parse(text: &str) -> Result<Manifest, ApiError> {
        let manifest: Manifest = toml::from_str(text).map_err(|e| {
            ApiError::new(
                ErrorCode::InvalidPackage,
                format!("plugin.toml: {}", e.message()),
            )
            .with_field(toml_error_field(&e))
        })?;
        manifest.validate()?;
        Ok(manifest)
    }

    pub fn validate(&self) -> Result<(), ApiError> {
        let invalid = |field: &str, message: String| {
            ApiError::new(ErrorCode::InvalidPackage, format!("plugin.toml: {message}"))
                .with_field(field)
        };
        if !is_valid_id(&self.id) {
            return Err(invalid(
                "id",
                format!(
                    "id {:?} must be 2-32 characters of a-z, 0-9 and '-', starting with a letter",
                    self.id
                ),
            ));
        }
        if KERNEL_NAMES.contains(&self.id.as_str()) {
            return Err(invalid(
                "id",
                format!("id {:?} is a name the kernel uses itself", self.id),
            ));
        }
        if self.publisher.trim().is_empty() {
            return Err(invalid("publisher", "publisher must not be empty".into()));
        }
        if self.name.zh_cn.trim().is_empty() || self.name.en.trim().is_empty() {
            return Err(invalid("name", "name needs both zh-CN and en".into()));
        }
        for capability in &self.capabilities {
            if !KNOWN_CAPABILITIES.contains(&capability.as_str()) {
                return Err(invalid(
                    "capabilities",
                    format!(
                        "unknown capability {capability:?}; known: {}",
                        KNOWN_CAPABILITIES.join(", ")
                    ),
                ));
            }
        }
        if self.limits.memory_mib == Some(0) || self.limits.timeout_ms == Some(0) {
            return Err(invalid("limits", "limits must be positive".into()));
        }
        for entry in &self.menu {
            if !is_safe_relative_path(entry.file()) {
                return Err(invalid(
                    "menu.path",
                    format!("menu path {:?} must be relative inside ui/", entry.path),
                ));
            }
        }
        let mut panel_ids = std::collections::HashSet::new();
        for decl in &self.panels {
            if !is_valid_id(&decl.id) || !panel_ids.insert(decl.id.as_str()) {
                return Err(invalid(
                    "panels.id",
                    format!(
                        "panel id {:?} must be a unique name of a-z, 0-9 and '-'",
                        decl.id
                    ),
                ));
            }
            decl.panel(&self.id).check().map_err(|(field, m)| {
                invalid(
                    &format!("panels.{field}"),
                    format!("panel {}: {m}", decl.id),
                )
            })?;
        }
        for route in &self.public {
            if parse_public_route(route).is_none() {
                return Err(invalid(
                    "public",
                    format!(
                        "public route {route:?} must look like \"GET /path\" or \"GET /prefix/*\""
                    ),
                ));
            }
        }
        let own = |name: &str| name.starts_with(&format!("{}.", self.id));
        for p in &self.permissions {
            if !own(&p.id) {
                return Err(invalid(
                    "permissions",
                    format!("permission {:?} must start with \"{}.\"", p.id, self.id),
                ));
            }
            for role in &p.roles {
                if !crate::identity::authz::is_kernel_role(role)
                    && !self.roles.iter().any(|r| &r.id == role)
                {
                    return Err(invalid(
                        "permissions",
                        format!("permission {:?} names unknown role {role:?}", p.id),
                    ));
                }
            }
        }
        for r in &self.roles {
            if !own(&r.id) {
                return Err(invalid(
                    "roles",
                    format!("role {:?} must start with \"{}.\"", r.id, self.id),
                ));
            }
            if let Some(p) = r.permissions.iter().find(|p| !own(p)) {
                return Err(invalid(
                    "roles",
                    format!(
                        "role {:?} may only grant this plugin's permissions, not {p:?}",
                        r.id
                    ),
                ));
            }
        }
        if let Some(route) = &self.demo_seed
            && !route.starts_with('/')
        {
            return Err(invalid(
                "demo-seed",
                format!("demo-seed {route:?} must be a route path starting with '/'"),
            ));
        }
        let mut names = std::collections::BTreeSet::new();
        for c in &self.collections {
            if !crate::services::storage::valid_collection(&c.name) || !names.insert(&c.name) {
                return Err(invalid(
                    "collections",
                    format!(
                        "collection {:?} must be a unique name of a-z, 0-9, '_' and '-'",
                        c.name
                    ),
                ));
            }
            if let Some(index) = c.indexes.iter().find(|i| {
                let fields = i.fields();
                fields.is_empty() || fields.len() > MAX_INDEX_FIELDS
            }) {
                return Err(invalid(
                    "collections.indexes",
                    format!(
                        "index {index:?} of {:?} must name 1 to {MAX_INDEX_FIELDS} fields",
                        c.name
                    ),
                ));
            }
            if let Some(f) = c
                .indexes
                .iter()
                .flat_map(IndexDecl::fields)
                .find(|f| !crate::services::storage::valid_field(f) && f != "org")
            {
                return Err(invalid(
                    "collections.indexes",
                    format!(
                        "index field {f:?} of {:?} must be a plain field name",
                        c.name
                    ),
                ));
            }
        }
        for topic in &self.subscribes {
            if !crate::services::messaging::valid_pattern(topic) {
                return Err(invalid(
                    "subscribes",
                    format!("subscription {topic:?} must be a topic or a `prefix.*` pattern"),
                ));
            }
        }
        let mut jobs = std::collections::BTreeSet::new();
        for job in &self.jobs {
            if !crate::services::storage::valid_collection(&job.name) || !jobs.insert(&job.name) {
                return Err(invalid(
                    "jobs.name",
                    format!(
                        "job name {:?} must be unique, of a-z, 0-9, '_' and '-'",
                        job.name
                    ),
                ));
            }
            if let Err(e) = job
                .schedule
                .parse::<crate::services::jobs::cron::Schedule>()
            {
                return Err(invalid(
                    "jobs.schedule",
                    format!("job {:?}: schedule {:?}: {e}", job.name, job.schedule),
                ));
            }
        }
        crate::runtime::check_contract(&self.contract)?;
        Ok(())
    }

    /// Collections and their indexed fields.
    /// Each collection with its indexes, each a list of fields.
    pub fn collection_map(&self) -> crate::core::scope::CollectionIndexes {
        self.collections
            .iter()
            .map(|c| {
                (
                    c.name.clone(),
                    c.indexes.iter().map(IndexDecl::fields).collect(),
                )
            })
            .collect()
    }

    /// Collections declared `read-below`.
    pub fn read_below(&self) -> std::collections::BTreeSet<String> {
        self.collections
            .iter()
            .filter(|c| c.read_below)
            .map(|c| c.name.clone())
            .collect()
    }

    /// The (role, permission) policies this manifest asks for.
    pub fn policies(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .roles
            .iter()
            .flat_map(|r| r.permissions.iter().map(move |p| (r.id.clone(), p.clone())))
            .collect();
        for p in &self.permissions {
            out.extend(p.roles.iter().map(|r| (r.clone(), p.id.clone())));
        }
        out
    }

    /// Whether the manifest opens `method path` to anonymous callers.
    pub fn is_public(&self, method: &str, path: &str) -> bool {
        self.public
            .iter()
            .filter_map(|r| parse_public_route(r))
            .any(|(m, p)| {
                (m == method || (m == "GET" && method == "HEAD"))
                    && match p.strip_suffix('*') {
                        Some(prefix) => path.starts_with(prefix),
                        None => p == path,
                    }
            })
    }

    pub fn wants(&self, capability: &str) -> bool {
        self.capabilities.iter().any(|c| c == capability)
    }
}

fn parse_public_route(route: &str) -> Option<(&str, &str)> {
    let (method, path) = route.split_once(' ')?;
    let known = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
    let star_ok = !path.contains('*') || (path.ends_with("/*") && path.matches('*').count() == 1);
    (known.contains(&method) && path.starts_with('/') && star_ok).then_some((method, path))
}

fn toml_error_field(e: &toml::de::Error) -> String {
    // toml's messages name the missing or unknown key in backquotes.
    let message = e.message();
    message
        .split('`')
        .nth(1)
        .map(str::to_string)
        .unwrap_or_else(|| "plugin.toml".into())
}

fn is_safe_relative_path(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with('/')
        && !path.contains('\\')
        && path
            .split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
}

/// A parsed package, held in memory.
#[derive(Debug, Clone)]
pub struct Package {
    pub manifest: Manifest,
    pub component: Vec<u8>,
    /// Path inside `ui/` → bytes.
    pub ui: HashMap<String, Vec<u8>>,
}

impl Package {
    /// Reads a package file's bytes. `max_bytes` bounds both the file and
    /// its unpacked contents.
    pub fn from_bytes(bytes: &[u8], max_bytes: usize) -> Result<Package, ApiError> {
        let invalid = |m: String| ApiError::new(ErrorCode::InvalidPackage, m);
        if bytes.len() > max_bytes {
            return Err(ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!("package is {} bytes; the limit is {max_bytes}", bytes.len()),
            ));
        }
        if bytes.len() < 2 || bytes[0..2] != [0x1f, 0x8b] {
            return Err(invalid(
                "not a plugin package (expected a gzip'd tar made by `tianshan plugin pack`)"
                    .into(),
            ));
        }
        let decoder = flate2::read::GzDecoder::new(bytes);
        let mut archive = tar::Archive::new(decoder);
        let mut manifest_text = None;
        let mut component = None;
        let mut ui = HashMap::new();
        let mut unpacked: usize = 0;
        let entries = archive
            .entries()
            .map_err(|e| invalid(format!("package archive unreadable: {e}")))?;
        for entry in entries {
            let mut entry =
                entry.map_err(|e| invalid(format!("package archive unreadable: {e}")))?;
            let kind = entry.header().entry_type();
            let path = entry
                .path()
                .map_err(|e| invalid(format!("bad path in package: {e}")))?
                .to_string_lossy()
                .trim_start_matches("./")
                .to_string();
            if kind.is_dir() {
                continue;
            }
            if !kind.is_file() {
                return Err(invalid(format!(
                    "package entry {path:?} is not a regular file (links are not allowed)"
                )));
            }
            if !is_safe_relative_path(&path) {
                return Err(invalid(format!(
                    "package entry {path:?} has an unsafe path"
                )));
            }
            // Checked before reading, so an archive bomb is never inflated:
            // the tar reader never reads past an entry's declared size.
            let declared = entry.header().size().unwrap_or(u64::MAX);
            unpacked = unpacked.saturating_add(usize::try_from(declared).unwrap_or(usize::MAX));
            if unpacked > max_bytes {
                return Err(ApiError::new(
                    ErrorCode::PayloadTooLarge,
                    format!("package unpacks to more than {max_bytes} bytes"),
                ));
            }
            if path == MANIFEST_FILE && declared > MAX_MANIFEST_BYTES {
                return Err(invalid(format!(
                    "plugin.toml is {declared} bytes; a manifest is at most {MAX_MANIFEST_BYTES}"
                ))
                .with_field("plugin.toml"));
            }
            let mut data = Vec::new();
            entry
                .read_to_end(&mut data)
                .map_err(|e| invalid(format!("package entry {path:?} unreadable: {e}")))?;
            if path == MANIFEST_FILE {
                manifest_text = Some(
                    String::from_utf8(data)
                        .map_err(|_| invalid("plugin.toml is not UTF-8".into()))?,
                );
            } else if path == COMPONENT_FILE {
                component = Some(data);
            } else if let Some(rest) = path.strip_prefix(UI_DIR) {
                ui.insert(rest.to_string(), data);
            } else {
                return Err(invalid(format!(
                    "unexpected file {path:?} in package (allowed: plugin.toml, plugin.wasm, ui/…)"
                )));
            }
        }
        let manifest = Manifest::parse(
            &manifest_text.ok_or_else(|| invalid("package has no plugin.toml".into()))?,
        )?;
        let component = component.ok_or_else(|| invalid("package has no plugin.wasm".into()))?;
        for entry in &manifest.menu {
            if !ui.contains_key(entry.file()) {
                return Err(invalid(format!(
                    "menu entry {:?} points to ui/{}, which the package does not contain",
                    entry.id, entry.path
                ))
                .with_field("menu.path"));
            }
        }
        Ok(Package {
            manifest,
            component,
            ui,
        })
    }

    pub fn read_file(path: &Path, max_bytes: usize) -> anyhow::Result<Package> {
        let bytes =
            std::fs::read(path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
        Package::from_bytes(&bytes, max_bytes)
            .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.message))
    }

    /// Writes the package format: the inverse of [`Package::from_bytes`].
    pub fn to_bytes(&self, manifest_text: &str) -> std::io::Result<Vec<u8>> {
        let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let mut builder = tar::Builder::new(encoder);
        let mut append = |path: &str, data: &[u8]| -> std::io::Result<()> {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(0);
            header.set_cksum();
            builder.append_data(&mut header, path, data)
        };
        append(MANIFEST_FILE, manifest_text.as_bytes())?;
        append(COMPONENT_FILE, &self.component)?;
        let mut ui: Vec<_> = self.ui.iter().collect();
        ui.sort();
        for (path, data) in ui {
            append(&format!("{UI_DIR}{path}"), data)?;
        }
        builder.into_inner()?.finish()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::core::ids::is_reserved_id;

    #[test]
    fn every_bundled_plugin_and_kernel_name_is_reserved() {
        // A new system under plugins/ must be added to the reserved ids,
        // or a prefecture could install a module under its name first.
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins");
        for entry in std::fs::read_dir(root).unwrap() {
            let dir = entry.unwrap().path();
            if dir.join("plugin.toml").exists() {
                let text = std::fs::read_to_string(dir.join("plugin.toml")).unwrap();
                let id = Manifest::parse(&text).unwrap().id;
                assert!(is_reserved_id(&id), "bundled plugin {id} is not reserved");
            }
        }
        for name in ["kernel", "system", "admin", "api", "ui"] {
            assert!(is_reserved_id(name));
            let text = tests::MANIFEST.replace("id = \"demo\"", &format!("id = \"{name}\""));
            let e = Manifest::parse(&text).unwrap_err();
            assert_eq!(e.field.as_deref(), Some("id"), "{name}");
        }
        assert!(!is_reserved_id("parking"));
        assert!(crate::services::messaging::is_reserved_prefix(
            "kernel.job.tick"
        ));
        assert!(!crate::services::messaging::is_reserved_prefix("kernels.x"));
    }

    pub const MANIFEST: &str = r#"
id = "demo"
version = "0.1.0"
contract = "1.0.0"
publisher = "Test"
[name]
zh-CN = "演示"
en = "Demo"
[[menu]]
id = "home"
path = "index.html"
[menu.label]
zh-CN = "首页"
en = "Home"
"#;

    fn package_with(manifest: &str, wasm: &[u8], ui: &[(&str, &[u8])]) -> Vec<u8> {
        Package {
            manifest: Manifest::parse(MANIFEST).unwrap(),
            component: wasm.to_vec(),
            ui: ui
                .iter()
                .map(|(p, d)| (p.to_string(), d.to_vec()))
                .collect(),
        }
        .to_bytes(manifest)
        .unwrap()
    }

    #[test]
    fn panels_a_manifest_offers_are_checked_like_a_dashboards() {
        let with = |panel: &str| {
            format!(
                "{MANIFEST}\n[[panels]]\n{panel}\n[panels.title]\nzh-CN = \"面板\"\nen = \"Panel\"\n"
            )
        };
        let m = Manifest::parse(&with(
            "id = \"trend\"\nkind = \"trend\"\nindicator = \"demo.count\"\nper = \"month\"",
        ))
        .unwrap();
        assert_eq!(
            m.panels[0].panel("demo").indicator.as_deref(),
            Some("demo.count")
        );
        assert_eq!(m.panels[0].panel("demo").title.unwrap().zh_cn, "面板");
        for (panel, field) in [
            ("id = \"tr\"\nkind = \"trend\"", "panels.indicator"),
            (
                "id = \"tr\"\nkind = \"ranking\"\nindicator = \"demo.count\"\nchart = \"line\"",
                "panels.chart",
            ),
            ("id = \"T!\"\nkind = \"plan\"", "panels.id"),
        ] {
            let e = Manifest::parse(&with(panel)).unwrap_err();
            assert_eq!(e.field.as_deref(), Some(field), "{panel}: {}", e.message);
        }
        let twice = format!(
            "{}{}",
            with("id = \"pp\"\nkind = \"plan\""),
            &with("id = \"pp\"\nkind = \"plan\"")[MANIFEST.len()..]
        );
        assert_eq!(
            Manifest::parse(&twice).unwrap_err().field.as_deref(),
            Some("panels.id")
        );
    }

    #[test]
    fn round_trips_through_the_file_format() {
        let bytes = package_with(MANIFEST, b"wasm", &[("index.html", b"<p>hi</p>")]);
        let package = Package::from_bytes(&bytes, 1 << 20).unwrap();
        assert_eq!(package.manifest.id, "demo");
        assert_eq!(package.component, b"wasm");
        assert_eq!(package.ui["index.html"], b"<p>hi</p>");
    }

    #[test]
    fn a_broken_manifest_names_the_problem() {
        let bytes = package_with("id = \"demo\"\n", b"wasm", &[]);
        let err = Package::from_bytes(&bytes, 1 << 20).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidPackage);
        assert!(err.message.contains("missing field"), "{}", err.message);
    }

    #[test]
    fn an_unknown_major_contract_is_refused() {
        let manifest = MANIFEST.replace("contract = \"1.0.0\"", "contract = \"2.0.0\"");
        let bytes = package_with(&manifest, b"wasm", &[("index.html", b"x")]);
        let err = Package::from_bytes(&bytes, 1 << 20).unwrap_err();
        assert_eq!(err.code, ErrorCode::ContractUnsupported);
    }

    #[test]
    fn bad_ids_and_capabilities_are_refused() {
        let m = MANIFEST.replace("id = \"demo\"", "id = \"Demo!\"");
        assert_eq!(
            Manifest::parse(&m).unwrap_err().field.as_deref(),
            Some("id")
        );
        let m = MANIFEST.replace("publisher", "capabilities = [\"network\"]\npublisher");
        let err = Manifest::parse(&m).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("capabilities"));
        let m = MANIFEST.replace("publisher", "colour = 1\npublisher");
        assert!(Manifest::parse(&m).unwrap_err().message.contains("colour"));
    }

    #[test]
    fn missing_parts_and_oversize_are_refused() {
        let bytes = package_with(MANIFEST, b"wasm", &[]);
        let err = Package::from_bytes(&bytes, 1 << 20).unwrap_err();
        assert!(err.message.contains("ui/index.html"), "{}", err.message);

        let bytes = package_with(MANIFEST, &vec![7u8; 4096], &[("index.html", b"x")]);
        let err = Package::from_bytes(&bytes, 1024).unwrap_err();
        assert_eq!(err.code, ErrorCode::PayloadTooLarge);

        let err = Package::from_bytes(b"PK\x03\x04 a zip", 1 << 20).unwrap_err();
        assert!(err.message.contains("not a plugin package"));
    }

    #[test]
    fn public_routes_are_exact_or_prefix() {
        let m = MANIFEST.replace(
            "publisher",
            "public = [\"GET /\", \"GET /docs/*\"]\npublisher",
        );
        let m = Manifest::parse(&m).unwrap();
        assert!(m.is_public("GET", "/"));
        assert!(m.is_public("HEAD", "/"));
        assert!(m.is_public("GET", "/docs/a/b"));
        assert!(!m.is_public("POST", "/"));
        assert!(!m.is_public("GET", "/other"));
        let bad = MANIFEST.replace("publisher", "public = [\"/\"]\npublisher");
        assert_eq!(
            Manifest::parse(&bad).unwrap_err().field.as_deref(),
            Some("public")
        );
    }

    #[test]
    fn unsafe_paths_are_refused() {
        assert!(!is_safe_relative_path("../etc/passwd"));
        assert!(!is_safe_relative_path("/abs"));
        assert!(!is_safe_relative_path("a//b"));
        assert!(is_safe_relative_path("i18n/zh-CN.json"));
    }
}
