//! Who and where one call acts: the org tree, the reach of an acting org,
//! and the [`Scope`] the kernel decides for every plugin or user call.
//! Every service takes a `Scope`; none decides it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Parent links of the org tree, for walking up from an org.
#[derive(Debug, Default, Clone)]
pub struct OrgIndex {
    parent: HashMap<String, Option<String>>,
    children: HashMap<String, Vec<String>>,
    active: HashMap<String, bool>,
}

impl OrgIndex {
    /// Adds one org; parents may come after their children.
    pub fn insert(&mut self, id: String, parent: Option<String>, active: bool) {
        self.active.insert(id.clone(), active);
        if let Some(parent) = &parent {
            self.children
                .entry(parent.clone())
                .or_default()
                .push(id.clone());
        }
        self.parent.insert(id, parent);
    }

    pub fn exists(&self, org: &str) -> bool {
        self.parent.contains_key(org)
    }

    pub fn is_active(&self, org: &str) -> bool {
        self.active.get(org).copied().unwrap_or(false)
    }

    pub fn parent_of(&self, org: &str) -> Option<&str> {
        self.parent.get(org).and_then(|p| p.as_deref())
    }

    /// `org` and its ancestors up to the root, nearest first.
    pub fn ancestors_and_self(&self, org: &str) -> Vec<String> {
        let mut chain = Vec::new();
        let mut current = Some(org.to_string());
        while let Some(id) = current {
            if !self.parent.contains_key(&id) || chain.contains(&id) {
                break;
            }
            current = self.parent.get(&id).cloned().flatten();
            chain.push(id);
        }
        chain
    }

    /// `org` and every org below it, breadth first.
    pub fn subtree(&self, org: &str) -> Vec<String> {
        if !self.exists(org) {
            return Vec::new();
        }
        let mut out = vec![org.to_string()];
        let mut i = 0;
        // The bound keeps a corrupted (cyclic) tree from looping forever.
        while i < out.len() && out.len() <= self.parent.len() {
            if let Some(children) = self.children.get(&out[i]) {
                out.extend(children.iter().cloned());
            }
            i += 1;
        }
        out
    }

    /// Whether `org` is `ancestor` or below it.
    pub fn is_within(&self, org: &str, ancestor: &str) -> bool {
        self.ancestors_and_self(org).iter().any(|a| a == ancestor)
    }
}

/// Which orgs a call may read and write.
#[derive(Debug, Clone)]
pub enum Reach {
    /// The caller acts at the root: every org.
    All,
    /// The acting org's subtree.
    Orgs(Arc<Vec<String>>),
}

/// Collections by name, each with its declared indexes (lists of fields).
pub type CollectionIndexes = BTreeMap<String, Vec<Vec<String>>>;

/// Who and where, decided by the kernel for one plugin call.
#[derive(Debug, Clone)]
pub struct Scope {
    pub plugin: String,
    /// Collections the plugin's manifest declares.
    pub collections: Arc<CollectionIndexes>,
    /// Collections declared `read-below`: reads also see records of the
    /// acting org's ancestors.
    pub read_below: Arc<std::collections::BTreeSet<String>>,
    /// Where the request acts; records inserted without an org land here.
    pub acting_org: String,
    pub reach: Reach,
    pub orgs: Arc<OrgIndex>,
    /// The user id behind the call; none when the kernel calls (events, jobs).
    pub actor: Option<String>,
    /// For the audit trail: a username or `plugin:<id>`.
    pub actor_name: String,
}

impl Scope {
    /// The reach of an org: its subtree, or everything at the root.
    pub fn reach_of(orgs: &OrgIndex, org: &str) -> Reach {
        if orgs.parent_of(org).is_none() && orgs.exists(org) {
            Reach::All
        } else {
            Reach::Orgs(Arc::new(orgs.subtree(org)))
        }
    }

    /// A user acting through the kernel API (no plugin).
    pub fn for_user(orgs: Arc<OrgIndex>, acting_org: &str, user_id: &str, username: &str) -> Scope {
        Scope {
            plugin: String::new(),
            collections: Arc::default(),
            read_below: Arc::default(),
            acting_org: acting_org.to_string(),
            reach: Scope::reach_of(&orgs, acting_org),
            orgs,
            actor: Some(user_id.to_string()),
            actor_name: username.to_string(),
        }
    }

    pub fn reaches(&self, org: &str) -> bool {
        match &self.reach {
            Reach::All => self.orgs.exists(org),
            Reach::Orgs(list) => list.iter().any(|o| o == org),
        }
    }
}
