//! Who may do what where. casbin (RBAC with domains) holds the role →
//! permission policies and the (user, role, org) bindings; the kernel asks
//! it on every request and every host call. A binding at an org reaches that
//! org's whole subtree: a question about org Y is asked at Y and at each of
//! its ancestors.
//!
//! The enforcer is rebuilt from the database after every binding or role
//! change, before the change's request returns, so a revoked role stops
//! working on the next request.

use std::collections::HashMap;
use std::sync::RwLock;

use casbin::prelude::*;
use sqlx::Row;

use crate::core::scope::OrgIndex;
use crate::db::Db;

/// `sub` is a user id, `dom` an org id, `perm` a dotted permission.
const MODEL: &str = r#"
[request_definition]
r = sub, dom, perm

[policy_definition]
p = sub, perm

[role_definition]
g = _, _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = g(r.sub, p.sub, r.dom) && keyMatch(r.perm, p.perm)
"#;

pub const PLATFORM_ADMIN: &str = "platform-admin";
pub const ORG_ADMIN: &str = "org-admin";
pub const AUDITOR: &str = "auditor";
pub const MEMBER: &str = "member";

/// The kernel's roles and what they may do. `*` in a permission matches
/// any suffix.
pub const KERNEL_ROLES: &[(&str, &[&str])] = &[
    (PLATFORM_ADMIN, &["*"]),
    (
        ORG_ADMIN,
        &[
            "kernel.orgs.*",
            "kernel.users.*",
            "kernel.bindings.*",
            "kernel.tokens.*",
            "kernel.plugins.*",
            "kernel.audit.read",
            "kernel.files.*",
            "kernel.approvals.read",
            "kernel.datacenter.*",
            "kernel.telemetry.*",
        ],
    ),
    (
        AUDITOR,
        &[
            "kernel.audit.*",
            "kernel.approvals.read",
            "kernel.orgs.read",
            "kernel.users.read",
            "kernel.plugins.read",
            "kernel.files.read",
            "kernel.datacenter.read",
            "kernel.telemetry.read",
        ],
    ),
    (
        MEMBER,
        &[
            "kernel.orgs.read",
            "kernel.plugins.read",
            "kernel.files.read",
            "kernel.files.write",
            "kernel.datacenter.read",
        ],
    ),
];

/// The permission only the platform administrator holds (`*` at the
/// root): what decides ids, lanes beyond a subtree and flow exceptions.
/// An org admin at the root holds `kernel.plugins.*` but not this.
pub const PLATFORM_DECISION: &str = "kernel.platform.decide";

pub fn is_kernel_role(role: &str) -> bool {
    KERNEL_ROLES.iter().any(|(r, _)| *r == role)
}

/// Reads the org tree from the database.
pub async fn load_org_index(db: &Db) -> sqlx::Result<OrgIndex> {
    let rows = sqlx::query("SELECT id, parent_id, active FROM orgs")
        .fetch_all(db)
        .await?;
    let mut index = OrgIndex::default();
    for r in rows {
        index.insert(r.get(0), r.get(1), crate::db::flag(&r, 2));
    }
    Ok(index)
}

/// A (user, role, org) grant.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Binding {
    pub id: String,
    pub user_id: String,
    pub role: String,
    pub org_id: String,
}

pub struct Authz {
    db: Db,
    enforcer: RwLock<Enforcer>,
    /// Swapped whole on reload; readers hold an `Arc`, so asking costs no copy.
    orgs: RwLock<std::sync::Arc<OrgIndex>>,
    /// The bindings table, by user, as of the last reload: the enforcer's
    /// groupings with their ids, so requests never query it.
    bindings: RwLock<HashMap<String, Vec<Binding>>>,
    /// Plugin-declared (role, permission) policies, by plugin id.
    plugin_policies: RwLock<HashMap<String, Vec<(String, String)>>>,
    bus: std::sync::OnceLock<std::sync::Arc<crate::cluster::Bus>>,
    /// One rebuild at a time: two that overlap could swap in the older
    /// reading last, bringing back an org just created as missing or a
    /// binding just removed as still there.
    refreshing: tokio::sync::Mutex<()>,
}

async fn new_enforcer() -> casbin::Result<Enforcer> {
    let model = DefaultModel::from_str(MODEL).await?;
    Enforcer::new(model, MemoryAdapter::default()).await
}

impl Authz {
    pub async fn new(db: Db) -> anyhow::Result<Authz> {
        let authz = Authz {
            db,
            enforcer: RwLock::new(new_enforcer().await?),
            orgs: RwLock::new(std::sync::Arc::new(OrgIndex::default())),
            plugin_policies: RwLock::new(HashMap::new()),
            bindings: RwLock::new(HashMap::new()),
            bus: std::sync::OnceLock::new(),
            refreshing: tokio::sync::Mutex::new(()),
        };
        authz.refresh().await?;
        Ok(authz)
    }

    /// After a local change to orgs, users or bindings: rebuilds, and tells
    /// the other nodes (they poll the generation, see `cluster`).
    pub async fn reload(&self) -> anyhow::Result<()> {
        crate::db::bump_generation(&self.db, "access").await?;
        self.refresh().await?;
        if let Some(bus) = self.bus.get() {
            bus.signal(crate::cluster::CLUSTER);
        }
        Ok(())
    }

    /// Where cluster-change signals go; set once by the kernel.
    pub fn set_bus(&self, bus: std::sync::Arc<crate::cluster::Bus>) {
        let _ = self.bus.set(bus);
    }

    /// Rebuilds the org index and the enforcer from the database.
    pub async fn refresh(&self) -> anyhow::Result<()> {
        let _turn = self.refreshing.lock().await;
        let orgs = load_org_index(&self.db).await?;
        let mut enforcer = new_enforcer().await?;
        let mut policies: Vec<Vec<String>> = KERNEL_ROLES
            .iter()
            .flat_map(|(role, perms)| {
                perms
                    .iter()
                    .map(move |p| vec![role.to_string(), p.to_string()])
            })
            .collect();
        for list in self.plugin_policies.read().expect("policy lock").values() {
            policies.extend(list.iter().map(|(r, p)| vec![r.clone(), p.clone()]));
        }
        enforcer.add_policies(policies).await?;
        let rows = sqlx::query("SELECT id, user_id, role, org_id FROM bindings ORDER BY rowid")
            .fetch_all(&self.db)
            .await?;
        let mut by_user: HashMap<String, Vec<Binding>> = HashMap::new();
        for r in &rows {
            let binding = Binding {
                id: r.get(0),
                user_id: r.get(1),
                role: r.get(2),
                org_id: r.get(3),
            };
            by_user
                .entry(binding.user_id.clone())
                .or_default()
                .push(binding);
        }
        let groupings: Vec<Vec<String>> = by_user
            .values()
            .flatten()
            .map(|b| vec![b.user_id.clone(), b.role.clone(), b.org_id.clone()])
            .collect();
        if !groupings.is_empty() {
            enforcer.add_grouping_policies(groupings).await?;
        }
        *self.enforcer.write().expect("enforcer lock") = enforcer;
        *self.bindings.write().expect("bindings lock") = by_user;
        *self.orgs.write().expect("org index lock") = std::sync::Arc::new(orgs);
        Ok(())
    }

    /// Sets the (role, permission) policies a plugin's manifest declares.
    pub async fn set_plugin_policies(
        &self,
        plugin: &str,
        policies: Vec<(String, String)>,
    ) -> anyhow::Result<()> {
        self.plugin_policies
            .write()
            .expect("policy lock")
            .insert(plugin.to_string(), policies);
        self.refresh().await
    }

    pub async fn remove_plugin_policies(&self, plugin: &str) -> anyhow::Result<()> {
        self.plugin_policies
            .write()
            .expect("policy lock")
            .remove(plugin);
        self.refresh().await
    }

    pub fn orgs(&self) -> std::sync::Arc<OrgIndex> {
        self.orgs.read().expect("org index lock").clone()
    }

    /// May `user` use `permission` at `org`? True when a binding at `org` or
    /// one of its ancestors grants it. Inactive orgs allow nothing.
    pub fn allowed(&self, user: &str, org: &str, permission: &str) -> bool {
        let orgs = self.orgs.read().expect("org index lock");
        if !orgs.is_active(org) {
            return false;
        }
        let chain = orgs.ancestors_and_self(org);
        drop(orgs);
        let enforcer = self.enforcer.read().expect("enforcer lock");
        chain.iter().any(|dom| {
            enforcer
                .enforce((user, dom.as_str(), permission))
                .unwrap_or(false)
        })
    }

    /// Roles `user` holds at `org`, inherited from ancestors included.
    pub fn roles_at(&self, user: &str, org: &str) -> Vec<String> {
        let chain = self
            .orgs
            .read()
            .expect("org index lock")
            .ancestors_and_self(org);
        let enforcer = self.enforcer.read().expect("enforcer lock");
        let mut roles: Vec<String> = Vec::new();
        for dom in chain {
            for role in enforcer.get_roles_for_user(user, Some(&dom)) {
                if !roles.contains(&role) {
                    roles.push(role);
                }
            }
        }
        roles
    }

    /// Whether any of `user`'s bindings reaches `org`.
    pub fn reaches(&self, user: &str, org: &str) -> bool {
        !self.roles_at(user, org).is_empty()
    }

    /// The permissions `role` carries: the kernel's table, or what plugin
    /// manifests declare for it.
    pub fn role_permissions(&self, role: &str) -> Vec<String> {
        if let Some((_, perms)) = KERNEL_ROLES.iter().find(|(r, _)| *r == role) {
            return perms.iter().map(|p| p.to_string()).collect();
        }
        self.plugin_policies
            .read()
            .expect("policy lock")
            .values()
            .flatten()
            .filter(|(r, _)| r == role)
            .map(|(_, p)| p.clone())
            .collect()
    }

    /// A user's bindings, oldest first.
    pub fn bindings_of(&self, user: &str) -> Vec<Binding> {
        self.bindings
            .read()
            .expect("bindings lock")
            .get(user)
            .cloned()
            .unwrap_or_default()
    }
}

/// Plugins ask through `tianshan:plugin/authz`; the answer is the same the
/// kernel API would give, API token scope included.
pub struct PluginAccess(pub std::sync::Arc<Authz>);

#[cfg(test)]
mod tests {
    use super::*;

    async fn setup() -> (tempfile::TempDir, Db, Authz) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("a.db").display());
        let db = crate::db::connect(&url).await.unwrap();
        for (id, parent) in [
            ("region", None),
            ("pref-a", Some("region")),
            ("county-a1", Some("pref-a")),
            ("county-a2", Some("pref-a")),
            ("pref-b", Some("region")),
        ] {
            sqlx::query("INSERT INTO orgs (id, parent_id, level, code, name_zh, name_en, created_at) VALUES ($1, $2, 'county', $3, $4, $5, 0)")
                .bind(id).bind(parent).bind(id).bind(id).bind(id)
                .execute(&db).await.unwrap();
        }
        sqlx::query("INSERT INTO users (id, username, display_name, password_hash, org_id, created_at) VALUES ('u', 'u', 'U', 'x', 'county-a1', 0)")
            .execute(&db).await.unwrap();
        let authz = Authz::new(db.clone()).await.unwrap();
        (dir, db, authz)
    }

    async fn bind(db: &Db, role: &str, org: &str) {
        sqlx::query(
            "INSERT INTO bindings (id, user_id, role, org_id, created_at) VALUES ($1, 'u', $2, $3, 0)",
        )
        .bind(format!("{role}@{org}"))
        .bind(role)
        .bind(org)
        .execute(db)
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn a_binding_reaches_its_subtree_and_nothing_else() {
        let (_d, db, authz) = setup().await;
        bind(&db, ORG_ADMIN, "pref-a").await;
        authz.reload().await.unwrap();
        assert!(authz.allowed("u", "pref-a", "kernel.users.write"));
        assert!(authz.allowed("u", "county-a2", "kernel.users.write"));
        assert!(
            !authz.allowed("u", "pref-b", "kernel.users.write"),
            "sibling prefecture"
        );
        assert!(
            !authz.allowed("u", "region", "kernel.users.write"),
            "parent level"
        );
        assert!(
            !authz.allowed("u", "county-a1", "kernel.audit.write"),
            "not an org-admin permission"
        );
        assert_eq!(
            authz.roles_at("u", "county-a1"),
            vec![ORG_ADMIN.to_string()]
        );
    }

    #[tokio::test]
    async fn a_revoked_binding_stops_at_the_next_check() {
        let (_d, db, authz) = setup().await;
        bind(&db, MEMBER, "county-a1").await;
        authz.reload().await.unwrap();
        assert!(authz.allowed("u", "county-a1", "kernel.orgs.read"));
        sqlx::query("DELETE FROM bindings")
            .execute(&db)
            .await
            .unwrap();
        authz.reload().await.unwrap();
        assert!(!authz.allowed("u", "county-a1", "kernel.orgs.read"));
    }

    #[tokio::test]
    async fn plugin_permissions_are_granted_through_declared_roles() {
        let (_d, db, authz) = setup().await;
        bind(&db, MEMBER, "county-a1").await;
        authz
            .set_plugin_policies("welcome", vec![(MEMBER.into(), "welcome.view".into())])
            .await
            .unwrap();
        assert!(authz.allowed("u", "county-a1", "welcome.view"));
        assert!(!authz.allowed("u", "county-a1", "welcome.admin"));
        authz.remove_plugin_policies("welcome").await.unwrap();
        assert!(!authz.allowed("u", "county-a1", "welcome.view"));
    }
}
