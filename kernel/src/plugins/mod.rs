//! Installed plugins: install, upgrade, enable, disable, uninstall, and the
//! in-memory table the gateway routes through.
//!
//! Every change is all-or-nothing: the package is parsed, compiled and
//! pre-linked, its lifecycle hook runs, the database transaction commits, and
//! only then does the table switch to the new entry. A failure at any step
//! leaves the previous state untouched. Requests hold an `Arc` to the entry
//! they started on, so an upgrade lets in-flight requests finish on the old
//! version.

pub mod package;
pub mod tooling;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::audit::Entry;
use crate::core::error::{ApiError, ApiResult, ErrorCode};
use crate::db::{Db, now};
use crate::plugins::package::{Manifest, Package};
use crate::runtime::{LoadedComponent, PluginIdentity, Runtime};

/// One installed plugin version, ready to serve.
pub struct ActivePlugin {
    pub manifest: Manifest,
    pub component: LoadedComponent,
    pub ui: HashMap<String, Vec<u8>>,
    pub sha256: String,
    pub installed_at: i64,
    pub updated_at: i64,
    /// Where the plugin is installed: usable in this org's subtree only.
    /// `None`: the whole platform.
    pub org_id: Option<String>,
    enabled: AtomicBool,
}

impl ActivePlugin {
    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Acquire)
    }

    pub fn summary(&self) -> PluginSummary {
        PluginSummary {
            id: self.manifest.id.clone(),
            version: self.manifest.version.to_string(),
            state: if self.enabled() {
                "enabled"
            } else {
                "disabled"
            },
            name: self.manifest.name.clone(),
            publisher: self.manifest.publisher.clone(),
            contract: self.component.contract.to_string(),
            sha256: self.sha256.clone(),
            installed_at: self.installed_at,
            updated_at: self.updated_at,
            org_id: self.org_id.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct PluginSummary {
    pub id: String,
    pub version: String,
    /// `enabled` or `disabled`.
    pub state: &'static str,
    pub name: crate::core::text::LocalizedText,
    pub publisher: String,
    pub contract: String,
    pub sha256: String,
    pub installed_at: i64,
    pub updated_at: i64,
    pub org_id: Option<String>,
}

/// What an install or upgrade did.
#[derive(Debug, Serialize)]
pub struct ChangeOutcome {
    pub id: String,
    pub version: String,
    pub previous_version: Option<String>,
    pub state: &'static str,
}

pub struct Plugins {
    db: Db,
    runtime: Arc<Runtime>,
    authz: Arc<crate::identity::authz::Authz>,
    max_package_bytes: usize,
    table: RwLock<HashMap<String, Arc<ActivePlugin>>>,
    /// Serialises changes so two installs of one id cannot interleave.
    change_lock: tokio::sync::Mutex<()>,
    bus: std::sync::OnceLock<Arc<crate::cluster::Bus>>,
    audit: Arc<crate::audit::Audit>,
}

impl Plugins {
    pub fn new(
        db: Db,
        runtime: Arc<Runtime>,
        authz: Arc<crate::identity::authz::Authz>,
        audit: Arc<crate::audit::Audit>,
        max_package_bytes: usize,
    ) -> Self {
        Plugins {
            db,
            runtime,
            authz,
            max_package_bytes,
            table: RwLock::new(HashMap::new()),
            change_lock: tokio::sync::Mutex::new(()),
            bus: std::sync::OnceLock::new(),
            audit,
        }
    }

    /// Where cluster-change signals go; set once by the kernel.
    pub fn set_bus(&self, bus: Arc<crate::cluster::Bus>) {
        let _ = self.bus.set(bus);
    }

    /// Tells the other nodes (after a committed change) to sync now.
    fn changed(&self) {
        if let Some(bus) = self.bus.get() {
            bus.signal(crate::cluster::CLUSTER);
        }
    }

    /// Whether an installed plugin declares `role`.
    pub fn declares_role(&self, role: &str) -> bool {
        self.list()
            .iter()
            .any(|p| p.manifest.roles.iter().any(|r| r.id == role))
    }

    /// Creates the indexes the manifest's collections declare.
    async fn prepare_storage(&self, manifest: &Manifest) -> ApiResult<()> {
        crate::services::storage::ensure_indexes(&self.db, &manifest.id, &manifest.collection_map())
            .await
            .map_err(ApiError::internal)
    }

    async fn apply_policies(&self, manifest: &Manifest) -> ApiResult<()> {
        self.authz
            .set_plugin_policies(&manifest.id, manifest.policies())
            .await
            .map_err(ApiError::internal)
    }

    /// The entry the gateway routes a request to.
    pub fn get(&self, id: &str) -> Option<Arc<ActivePlugin>> {
        self.table
            .read()
            .expect("plugin table lock")
            .get(id)
            .cloned()
    }

    pub fn list(&self) -> Vec<Arc<ActivePlugin>> {
        let mut all: Vec<_> = self
            .table
            .read()
            .expect("plugin table lock")
            .values()
            .cloned()
            .collect();
        all.sort_by(|a, b| a.manifest.id.cmp(&b.manifest.id));
        all
    }

    /// Compiling takes seconds of CPU: done on the blocking pool so the
    /// gateway keeps answering meanwhile.
    async fn activate(
        &self,
        package: Package,
        sha256: String,
        enabled: bool,
        (installed_at, updated_at): (i64, i64),
        org_id: Option<String>,
    ) -> ApiResult<ActivePlugin> {
        let runtime = self.runtime.clone();
        tokio::task::spawn_blocking(move || {
            activate(
                &runtime,
                package,
                sha256,
                enabled,
                (installed_at, updated_at),
                org_id,
            )
        })
        .await
        .map_err(ApiError::internal)?
    }

    /// Loads every installed plugin at start. A plugin that no longer loads
    /// is logged and skipped; the kernel still starts.
    pub async fn load_installed(&self) -> anyhow::Result<usize> {
        self.sync().await?;
        Ok(self.table.read().expect("plugin table lock").len())
    }

    /// Brings the in-memory table in line with the database: at start, and
    /// when another node changed a plugin. Lifecycle hooks are not run here;
    /// the node that made the change ran them.
    pub async fn sync(&self) -> anyhow::Result<()> {
        let _guard = self.change_lock.lock().await;
        let rows = sqlx::query(
            "SELECT p.id, p.version, p.enabled, p.installed_at, p.updated_at, k.sha256, p.org_id
             FROM plugins p JOIN plugin_packages k ON k.plugin_id = p.id AND k.version = p.version",
        )
        .fetch_all(&self.db)
        .await?;
        let mut seen = std::collections::HashSet::new();
        for row in rows {
            let id: String = row.get(0);
            seen.insert(id.clone());
            let version: String = row.get(1);
            let enabled = crate::db::flag(&row, 2);
            let sha256: String = row.get(5);
            let org_id: Option<String> = row.get(6);
            if let Some(current) = self.get(&id)
                && current.manifest.version.to_string() == version
                && current.sha256 == sha256
                && current.org_id == org_id
            {
                current.enabled.store(enabled, Ordering::Release);
                continue;
            }
            let bytes: Vec<u8> = sqlx::query_scalar(
                "SELECT package FROM plugin_packages WHERE plugin_id = $1 AND version = $2",
            )
            .bind(&id)
            .bind(&version)
            .fetch_one(&self.db)
            .await?;
            let result = match Package::from_bytes(&bytes, usize::MAX) {
                Ok(package) => {
                    self.activate(package, sha256, enabled, (row.get(3), row.get(4)), org_id)
                        .await
                }
                Err(e) => Err(e),
            };
            match result {
                Ok(plugin) => {
                    if let Err(e) = self.apply_policies(&plugin.manifest).await {
                        tracing::error!(plugin = %id, error = %e.message, "could not apply the plugin's roles");
                    }
                    tracing::info!(plugin = %id, version = %plugin.manifest.version, "loaded plugin");
                    self.table
                        .write()
                        .expect("plugin table lock")
                        .insert(id, Arc::new(plugin));
                }
                Err(e) => {
                    tracing::error!(plugin = %id, error = %e.message, "installed plugin failed to load; skipped")
                }
            }
        }
        let gone: Vec<String> = self
            .table
            .read()
            .expect("plugin table lock")
            .keys()
            .filter(|id| !seen.contains(*id))
            .cloned()
            .collect();
        for id in gone {
            self.table.write().expect("plugin table lock").remove(&id);
            self.authz.remove_plugin_policies(&id).await?;
            tracing::info!(plugin = %id, "plugin removed on another node");
        }
        Ok(())
    }

    fn parse(&self, bytes: &[u8]) -> ApiResult<(Package, String)> {
        let package = Package::from_bytes(bytes, self.max_package_bytes)?;
        Ok((package, hex::encode(Sha256::digest(bytes))))
    }

    /// Installs a plugin that is not installed yet, usable in `org`'s
    /// subtree (`None`: everywhere), as the platform (the CLI, `up`).
    pub async fn install(&self, bytes: &[u8], org: Option<&str>) -> ApiResult<ChangeOutcome> {
        let record = Entry::new("system", "plugin.install", "ok");
        self.install_as(bytes, org, Installer::Platform, record)
            .await
    }

    /// Installs a plugin for `installer`. An id is one plugin platform-wide
    /// and over time: the bundled systems' ids are the platform
    /// administrator's to give, and an id once installed stays its org's
    /// (its records, files, flows and grants are keyed by it), so nobody
    /// else takes it over by installing after an uninstall; only the
    /// platform administrator reassigns it.
    pub async fn install_as(
        &self,
        bytes: &[u8],
        org: Option<&str>,
        installer: Installer,
        record: Entry,
    ) -> ApiResult<ChangeOutcome> {
        let (package, sha256) = self.parse(bytes)?;
        let _guard = self.change_lock.lock().await;
        let id = package.manifest.id.clone();
        // Reserved first: a local administrator learns that the id is not
        // theirs, not whether the region runs it.
        if installer == Installer::Local && crate::core::ids::is_reserved_id(&id) {
            return Err(ApiError::new(
                ErrorCode::PluginIdReserved,
                format!(
                    "plugin id {id} is reserved for the platform's own system; only the platform administrator installs it"
                ),
            )
            .with_field("id"));
        }
        if let Some(existing) = self.get(&id) {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                format!(
                    "plugin {id} is already installed at version {}; upgrade it with PUT /api/v1/plugins/{id}",
                    existing.manifest.version
                ),
            ));
        }
        if installer == Installer::Local {
            let claim: Option<Option<String>> =
                sqlx::query_scalar("SELECT org_id FROM plugin_ids WHERE id = $1")
                    .bind(&id)
                    .fetch_optional(&self.db)
                    .await?;
            if let Some(claimed) = claim
                && claimed.as_deref() != org
            {
                return Err(ApiError::new(
                    ErrorCode::PluginIdReserved,
                    format!(
                        "plugin id {id} belongs to a plugin installed elsewhere before; only the platform administrator gives it to another org"
                    ),
                )
                .with_field("id"));
            }
        }
        let ts = now();
        let plugin = self
            .activate(package, sha256, true, (ts, ts), org.map(str::to_string))
            .await?;
        let plugin = Arc::new(plugin);
        self.prepare_storage(&plugin.manifest).await?;
        self.runtime
            .run_lifecycle(&plugin.component, None)
            .await
            .map_err(|f| f.to_api_error(&id))?;
        let mut tx = self.audit.begin().await?;
        store_package(&mut tx, &plugin, bytes).await?;
        sqlx::query(
            "INSERT INTO plugins (id, version, enabled, installed_at, updated_at, org_id) VALUES ($1, $2, 1, $3, $4, $5)",
        )
        .bind(&id)
        .bind(plugin.manifest.version.to_string())
        .bind(ts)
        .bind(ts)
        .bind(&plugin.org_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO plugin_ids (id, org_id, claimed_at) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET org_id = excluded.org_id, claimed_at = excluded.claimed_at",
        )
        .bind(&id)
        .bind(&plugin.org_id)
        .bind(ts)
        .execute(&mut *tx)
        .await?;
        crate::db::bump_generation(&mut *tx, "plugins").await?;
        tx.commit(
            &record
                .target(&id)
                .detail(serde_json::json!({ "version": plugin.manifest.version.to_string() })),
        )
        .await?;
        self.changed();
        let outcome = ChangeOutcome {
            id: id.clone(),
            version: plugin.manifest.version.to_string(),
            previous_version: None,
            state: "enabled",
        };
        self.apply_policies(&plugin.manifest).await?;
        self.table
            .write()
            .expect("plugin table lock")
            .insert(id.clone(), plugin);
        tracing::info!(plugin = %id, version = %outcome.version, "installed plugin");
        Ok(outcome)
    }

    /// Replaces an installed plugin with a newer version. The new version's
    /// upgrade hook runs first; in-flight requests finish on the old one.
    pub async fn upgrade(
        &self,
        expected_id: Option<&str>,
        bytes: &[u8],
        record: Entry,
    ) -> ApiResult<ChangeOutcome> {
        let (package, sha256) = self.parse(bytes)?;
        let id = package.manifest.id.clone();
        if let Some(expected) = expected_id
            && expected != id
        {
            return Err(ApiError::validation(
                "id",
                format!("the package is plugin {id}, not {expected}"),
            ));
        }
        let _guard = self.change_lock.lock().await;
        let Some(current) = self.get(&id) else {
            return Err(ApiError::new(
                ErrorCode::PluginNotFound,
                format!("plugin {id} is not installed; install it with POST /api/v1/plugins"),
            ));
        };
        if package.manifest.version <= current.manifest.version {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                format!(
                    "plugin {id} is at version {}; an upgrade needs a higher version than that, got {}",
                    current.manifest.version, package.manifest.version
                ),
            )
            .with_field("version"));
        }
        let ts = now();
        let plugin = self
            .activate(
                package,
                sha256,
                current.enabled(),
                (current.installed_at, ts),
                current.org_id.clone(),
            )
            .await?;
        let plugin = Arc::new(plugin);
        self.prepare_storage(&plugin.manifest).await?;
        let previous = current.manifest.version.to_string();
        self.runtime
            .run_lifecycle(&plugin.component, Some(&previous))
            .await
            .map_err(|f| f.to_api_error(&id))?;
        let mut tx = self.audit.begin().await?;
        store_package(&mut tx, &plugin, bytes).await?;
        sqlx::query("UPDATE plugins SET version = $1, updated_at = $2 WHERE id = $3")
            .bind(plugin.manifest.version.to_string())
            .bind(ts)
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        crate::db::bump_generation(&mut *tx, "plugins").await?;
        tx.commit(&record.target(&id).detail(serde_json::json!({
            "from": previous,
            "to": plugin.manifest.version.to_string(),
        })))
        .await?;
        self.changed();
        let outcome = ChangeOutcome {
            id: id.clone(),
            version: plugin.manifest.version.to_string(),
            previous_version: Some(previous),
            state: if plugin.enabled() {
                "enabled"
            } else {
                "disabled"
            },
        };
        self.apply_policies(&plugin.manifest).await?;
        self.table
            .write()
            .expect("plugin table lock")
            .insert(id.clone(), plugin);
        tracing::info!(plugin = %id, from = ?outcome.previous_version, to = %outcome.version, "upgraded plugin");
        Ok(outcome)
    }

    pub async fn set_enabled(
        &self,
        id: &str,
        enabled: bool,
        record: Entry,
    ) -> ApiResult<PluginSummary> {
        let _guard = self.change_lock.lock().await;
        let plugin = self.get(id).ok_or_else(|| not_installed(id))?;
        let mut tx = self.audit.begin().await?;
        sqlx::query("UPDATE plugins SET enabled = $1, updated_at = $2 WHERE id = $3")
            .bind(i64::from(enabled))
            .bind(now())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        crate::db::bump_generation(&mut *tx, "plugins").await?;
        tx.commit(&record.target(id)).await?;
        self.changed();
        plugin.enabled.store(enabled, Ordering::Release);
        tracing::info!(plugin = %id, enabled, "changed plugin state");
        Ok(plugin.summary())
    }

    /// Removes a plugin and its stored packages.
    pub async fn uninstall(&self, id: &str, record: Entry) -> ApiResult<()> {
        let _guard = self.change_lock.lock().await;
        self.get(id).ok_or_else(|| not_installed(id))?;
        let mut tx = self.audit.begin().await?;
        sqlx::query("DELETE FROM plugins WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM plugin_packages WHERE plugin_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM subscription_grants WHERE plugin_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        crate::db::bump_generation(&mut *tx, "plugins").await?;
        tx.commit(&record.target(id)).await?;
        self.changed();
        self.table.write().expect("plugin table lock").remove(id);
        self.authz
            .remove_plugin_policies(id)
            .await
            .map_err(ApiError::internal)?;
        tracing::info!(plugin = %id, "uninstalled plugin");
        Ok(())
    }

    /// Installed versions kept for a plugin, newest first.
    pub async fn stored_versions(&self, id: &str) -> ApiResult<Vec<String>> {
        let rows = sqlx::query("SELECT version FROM plugin_packages WHERE plugin_id = $1")
            .bind(id)
            .fetch_all(&self.db)
            .await?;
        let mut versions: Vec<semver::Version> = rows
            .iter()
            .filter_map(|r| semver::Version::parse(&r.get::<String, _>(0)).ok())
            .collect();
        versions.sort();
        Ok(versions.iter().rev().map(|v| v.to_string()).collect())
    }
}

/// Who installs: decides which ids may be taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Installer {
    /// The platform administrator (or the operator's CLI).
    Platform,
    /// An administrator below the root: a prefecture's local module.
    Local,
}

pub fn not_installed(id: &str) -> ApiError {
    ApiError::new(
        ErrorCode::PluginNotFound,
        format!("plugin {id} is not installed"),
    )
}

async fn store_package(
    tx: &mut sqlx::AnyConnection,
    plugin: &ActivePlugin,
    bytes: &[u8],
) -> ApiResult<()> {
    sqlx::query(
        "INSERT INTO plugin_packages (plugin_id, version, sha256, package, uploaded_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (plugin_id, version) DO UPDATE SET sha256 = excluded.sha256, package = excluded.package,
             uploaded_at = excluded.uploaded_at",
    )
    .bind(&plugin.manifest.id)
    .bind(plugin.manifest.version.to_string())
    .bind(&plugin.sha256)
    .bind(bytes)
    .bind(now())
    .execute(&mut *tx)
    .await?;
    Ok(())
}

fn activate(
    runtime: &Runtime,
    package: Package,
    sha256: String,
    enabled: bool,
    (installed_at, updated_at): (i64, i64),
    org_id: Option<String>,
) -> ApiResult<ActivePlugin> {
    let manifest = package.manifest;

    if package.component.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidPackage,
            "plugin.wasm is empty",
        ));
    }
    let identity = PluginIdentity {
        id: manifest.id.clone(),
        version: manifest.version.to_string(),
        config: manifest.config.clone(),
        wall_clock: manifest.wants("clock"),
        collections: Arc::new(manifest.collection_map()),
        read_below: Arc::new(manifest.read_below()),
        install_org: org_id.clone(),
    };
    let limits = runtime.limits_for(manifest.limits.memory_mib, manifest.limits.timeout_ms);
    let component = runtime.load(&package.component, identity, limits)?;
    if component.contract.major != manifest.contract.major
        || component.contract.minor != manifest.contract.minor
    {
        return Err(ApiError::new(
            ErrorCode::InvalidPackage,
            format!(
                "plugin.toml says contract {} but the component is built against {}",
                manifest.contract, component.contract
            ),
        )
        .with_field("contract"));
    }
    Ok(ActivePlugin {
        manifest,
        component,
        ui: package.ui,
        sha256,
        installed_at,
        updated_at,
        org_id,
        enabled: AtomicBool::new(enabled),
    })
}
