//! Approval flows (审批) shared by every plugin.
//!
//! A plugin defines flows: ordered steps, each naming a role and an org
//! level relative to the org the application is for (the unit itself, its
//! parent, the enclosing county / prefecture / region), and whether every
//! approver must approve (会签) or any one suffices (或签). The plugin starts
//! an instance for one of its records on behalf of the calling user; from
//! then on the kernel owns the instance. The kernel, never the plugin,
//! resolves approvers from role bindings and decides who may act: users act
//! through the kernel API (`/api/v1/todos`, `/api/v1/approvals/…`), so one
//! to-do list spans all plugins. Each outcome reaches the owning plugin as a
//! `kernel.approval.<outcome>` event keyed by instance id, queued in the
//! same transaction as the state change, so the plugin hears every outcome
//! at least once and in order.
//!
//! Approver resolution: only bindings *at* the step's target org count, not
//! bindings at its ancestors. A binding reaches its subtree for access, but
//! a step names a level precisely ("the prefecture's offices
//! administration"); letting a region-level binding satisfy a county step
//! would put every regional approver on every county's to-do list.
//! Approvers are resolved when a step is entered, so binding changes apply
//! to steps not yet reached. Disabled users are skipped; a step with no
//! approver refuses to start (or to advance) rather than stall silently.

mod delegation;
mod repeat;

use std::sync::Arc;

pub use delegation::Delegation;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::Row;

use crate::audit::{Audit, Entry};
use crate::core::error::{ErrorCode, ServiceError};
use crate::core::scope::Scope;
use crate::db::{Db, Dialect, now};
use crate::identity::authz::Authz;
use crate::services::messaging::{Message, Messaging};
use crate::services::notifications::{Kind, Note, Notifications};
use crate::services::storage::{Record, Storage, Write};

/// Admins holding this at an instance's org (or above) may read it.
pub const READ_PERMISSION: &str = "kernel.approvals.read";

const MAX_STEPS: usize = 20;
const MAX_FORM_BYTES: usize = 64 * 1024;
const MAX_COMMENT_CHARS: usize = 2000;
const MAX_COPIES: usize = 50;

/// Where a step's approvers sit, relative to the instance's org.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    #[serde(rename = "self")]
    SelfOrg,
    Parent,
    County,
    Prefecture,
    Region,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// 或签
    Any,
    /// 会签
    All,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub name: String,
    pub role: String,
    pub level: Level,
    pub mode: Mode,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flow {
    pub name: String,
    pub title: String,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Instance {
    pub id: String,
    pub plugin: String,
    pub flow: String,
    pub flow_title: String,
    pub subject_id: String,
    pub title: String,
    pub org: String,
    pub applicant: String,
    pub status: String,
    /// 1-based; 0 once finished.
    pub current_step: i64,
    #[serde(skip)]
    pub round: i64,
    pub steps: Vec<Step>,
    pub form: Value,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Instance {
    pub fn running(&self) -> bool {
        self.status == "running"
    }
}

/// The org whose role holders approve a step at `level` for an applicant
/// at `org`: the org itself, its parent, or the enclosing county,
/// prefecture or region (`level_of` tells an org's level). Bindings at
/// other ancestors do not count, so a regional approver is not on every
/// county's list.
fn step_org(
    orgs: &crate::core::scope::OrgIndex,
    org: &str,
    level: Level,
    level_of: impl Fn(&str) -> Option<String>,
) -> Result<String> {
    let wanted = match level {
        Level::SelfOrg => return Ok(org.to_string()),
        Level::Parent => {
            return orgs
                .parent_of(org)
                .map(str::to_string)
                .ok_or_else(|| invalid("org", format!("org {org} has no parent level")));
        }
        Level::County => "county",
        Level::Prefecture => "prefecture",
        Level::Region => "region",
    };
    orgs.ancestors_and_self(org)
        .into_iter()
        .find(|candidate| level_of(candidate).as_deref() == Some(wanted))
        .ok_or_else(|| invalid("org", format!("org {org} is not within a {wanted}")))
}

fn invalid(field: &'static str, message: impl Into<String>) -> ServiceError {
    ServiceError::invalid(field, message)
}

type Result<T> = std::result::Result<T, ServiceError>;

/// What a user does to an instance through the kernel API.
#[derive(Debug, Clone)]
pub enum Action {
    Approve {
        comment: Option<String>,
    },
    /// `to_step` none or 0: back to the applicant, which ends the instance
    /// as rejected; otherwise an earlier step (1-based) runs again.
    Reject {
        to_step: Option<i64>,
        comment: Option<String>,
    },
    Withdraw {
        comment: Option<String>,
    },
    /// 转办: hand one's own pending task to another user for good.
    Reassign {
        to: String,
        comment: Option<String>,
    },
    /// 加签: one more approver on the current step.
    AddApprover {
        user: String,
        comment: Option<String>,
    },
    /// 抄送: read-only visibility.
    CopyTo {
        users: Vec<String>,
    },
    Comment {
        text: String,
    },
    /// A reference to a file kept elsewhere (the files service).
    Attach {
        reference: String,
        name: String,
    },
    /// 催办: the applicant presses the current step's approvers; their
    /// to-dos show it. Once an hour.
    Urge {
        comment: Option<String>,
    },
    /// 签收: one of a step's several any-one approvers takes it; the
    /// others' tasks are held (off their lists) until he unclaims it.
    Claim,
    /// 反签收: gives a claimed step back to every approver.
    Unclaim,
    /// 已阅: a user the approval was copied to marks it read.
    Read,
    /// 委派: an approver asks a colleague's opinion; the colleague's
    /// approval hands the task back to him, who still decides.
    Delegate {
        to: String,
        comment: Option<String>,
    },
}

/// A flow's switches only the platform administrator turns.
#[derive(Debug, Clone, Copy)]
pub(super) enum FlowFlag {
    SelfApproval,
    AutoApproveRepeat,
}

/// How long after an urge the next is refused: the approvers have it.
pub const URGE_INTERVAL_SECS: i64 = 3600;

impl Action {
    fn name(&self) -> &'static str {
        match self {
            Action::Approve { .. } => "approve",
            Action::Reject { .. } => "reject",
            Action::Withdraw { .. } => "withdraw",
            Action::Reassign { .. } => "reassign",
            Action::AddApprover { .. } => "add_approver",
            Action::CopyTo { .. } => "copy_to",
            Action::Comment { .. } => "comment",
            Action::Attach { .. } => "attach",
            Action::Urge { .. } => "urge",
            Action::Claim => "claim",
            Action::Unclaim => "unclaim",
            Action::Delegate { .. } => "delegate",
            Action::Read => "read",
        }
    }
}

fn valid_flow_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// A flow the plugin may define: its name, steps, and roles that are kernel
/// roles or the plugin's own (`<plugin>.…`), so a plugin cannot route its
/// approvals through another plugin's roles.
pub fn validate_flow(plugin: &str, flow: &Flow) -> Result<()> {
    if !valid_flow_name(&flow.name) {
        return Err(invalid("name", "flow name: 1-64 of [a-z0-9_-]"));
    }
    if flow.title.trim().is_empty() || flow.title.chars().count() > 200 {
        return Err(invalid("title", "flow title: 1-200 characters"));
    }
    if flow.steps.is_empty() || flow.steps.len() > MAX_STEPS {
        return Err(invalid("steps", format!("1 to {MAX_STEPS} steps")));
    }
    for (i, step) in flow.steps.iter().enumerate() {
        if step.name.trim().is_empty() || step.name.chars().count() > 200 {
            return Err(invalid(
                "steps",
                format!("step {}: name is 1-200 characters", i + 1),
            ));
        }
        let own = step
            .role
            .strip_prefix(plugin)
            .is_some_and(|rest| rest.starts_with('.') && rest.len() > 1);
        if !own && !crate::identity::authz::is_kernel_role(&step.role) {
            return Err(invalid(
                "steps",
                format!(
                    "step {}: role {:?} is neither a kernel role nor one of {plugin}'s roles",
                    i + 1,
                    step.role
                ),
            ));
        }
    }
    Ok(())
}

/// An action on an approval that is decided already.
fn decided(inst: &Instance) -> ServiceError {
    ServiceError::rule(
        ErrorCode::ApprovalDecided,
        format!("the approval is {} already", inst.status),
    )
    .with_param("status", inst.status.clone())
}

fn clean_comment(comment: Option<String>) -> Result<Option<String>> {
    match comment.map(|c| c.trim().to_string()) {
        Some(c) if c.is_empty() => Ok(None),
        Some(c) if c.chars().count() > MAX_COMMENT_CHARS => Err(invalid(
            "comment",
            format!("at most {MAX_COMMENT_CHARS} characters"),
        )),
        other => Ok(other),
    }
}

pub struct Approvals {
    db: Db,
    dialect: Dialect,
    audit: Arc<Audit>,
    messaging: Arc<Messaging>,
    authz: Arc<Authz>,
    notifications: Arc<Notifications>,
}

/// An approval change in progress: every step commits with its audit record.
type Tx<'a> = crate::audit::AuditedWrite<'a>;

/// Why [`Approvals::start_with`] did nothing.
#[derive(Debug)]
pub enum StartWithError {
    /// The write at this index failed.
    Write(u32, ServiceError),
    /// The approval could not start.
    Approval(ServiceError),
}

impl From<ServiceError> for StartWithError {
    fn from(e: ServiceError) -> Self {
        StartWithError::Approval(e)
    }
}

const INSTANCE_COLUMNS: &str = "id, plugin_id, flow, flow_title, subject_id, title, org_id, applicant, \
     status, current_step, round, steps, form, created_at, updated_at";

fn instance_of(r: &sqlx::any::AnyRow) -> Instance {
    Instance {
        id: r.get(0),
        plugin: r.get(1),
        flow: r.get(2),
        flow_title: r.get(3),
        subject_id: r.get(4),
        title: r.get(5),
        org: r.get(6),
        applicant: r.get(7),
        status: r.get(8),
        current_step: r.get(9),
        round: r.get(10),
        steps: serde_json::from_str(&r.get::<String, _>(11)).unwrap_or_default(),
        form: serde_json::from_str(&r.get::<String, _>(12)).unwrap_or(Value::Null),
        created_at: r.get(13),
        updated_at: r.get(14),
    }
}

impl Approvals {
    pub fn new(
        db: Db,
        audit: Arc<Audit>,
        messaging: Arc<Messaging>,
        authz: Arc<Authz>,
        notifications: Arc<Notifications>,
    ) -> Self {
        let dialect = Dialect::of(&db);
        Approvals {
            db,
            dialect,
            audit,
            messaging,
            authz,
            notifications,
        }
    }

    /// Creates or replaces a plugin's flow (idempotent).
    pub async fn define_flow(&self, plugin: &str, actor: &str, flow: &Flow) -> Result<()> {
        validate_flow(plugin, flow)?;
        let steps = serde_json::to_string(&flow.steps).expect("steps serialize");
        let mut tx = self.audit.begin().await?;
        let current: Option<(String, String)> = sqlx::query(
            "SELECT title, steps FROM approval_flows WHERE plugin_id = $1 AND name = $2",
        )
        .bind(plugin)
        .bind(&flow.name)
        .fetch_optional(&mut *tx)
        .await?
        .map(|r| (r.get(0), r.get(1)));
        // Re-defining the same flow on every upgrade writes nothing.
        if current.as_ref() == Some(&(flow.title.clone(), steps.clone())) {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO approval_flows (plugin_id, name, title, steps, updated_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (plugin_id, name) DO UPDATE SET title = excluded.title,
                 steps = excluded.steps, updated_at = excluded.updated_at",
        )
        .bind(plugin)
        .bind(&flow.name)
        .bind(&flow.title)
        .bind(&steps)
        .bind(now())
        .execute(&mut *tx)
        .await?;
        tx.commit(
            &Entry::new(actor, "approval.flow.define", "ok")
                .target(format!("{plugin}/{}", flow.name))
                .detail(json!({ "plugin": plugin, "steps": flow.steps.len() })),
        )
        .await?;
        Ok(())
    }

    /// Starts `flow` of `plugin` for `subject_id`, applied for by
    /// `applicant` at `org`. The caller has checked that the applicant
    /// reaches `org`.
    #[allow(clippy::too_many_arguments)]
    pub async fn start(
        &self,
        plugin: &str,
        applicant: &str,
        org: &str,
        flow: &str,
        subject_id: &str,
        title: &str,
        form: &str,
    ) -> Result<Instance> {
        let since = now();
        let mut tx = self.audit.begin().await?;
        let instance = self
            .start_in(
                &mut tx, plugin, applicant, org, flow, subject_id, title, form,
            )
            .await?;
        tx.finish().await?;
        self.notifications.committed(&instance.id, since).await;
        Ok(instance)
    }

    /// Applies `writes` and starts `flow` in one transaction: the records
    /// and their approval are made together or not at all. An empty
    /// `subject_id` names the record of the first write. The caller has
    /// checked that the applicant reaches `org`.
    #[allow(clippy::too_many_arguments)]
    pub async fn start_with(
        &self,
        storage: &Storage,
        scope: &Scope,
        applicant: &str,
        org: &str,
        flow: &str,
        subject_id: &str,
        title: &str,
        form: &str,
        writes: Vec<Write>,
    ) -> std::result::Result<(Instance, Vec<Option<Record>>), StartWithError> {
        storage
            .validate_all(scope, &writes)
            .map_err(|(i, e)| StartWithError::Write(i, e))?;
        let since = now();
        let mut tx = self.audit.begin().await.map_err(ServiceError::from)?;
        let records = storage
            .transact_in(&mut tx, scope, writes)
            .await
            .map_err(|(i, e)| StartWithError::Write(i, e))?;
        let subject = match subject_id {
            "" => records
                .first()
                .and_then(|r| r.as_ref())
                .map(|r| r.id.clone())
                .ok_or_else(|| {
                    invalid(
                        "subject_id",
                        "an empty subject names the first write's record; the first write is a delete",
                    )
                })?,
            id => id.to_string(),
        };
        let instance = self
            .start_in(
                &mut tx,
                &scope.plugin,
                applicant,
                org,
                flow,
                &subject,
                title,
                form,
            )
            .await?;
        tx.finish().await.map_err(ServiceError::from)?;
        self.notifications.committed(&instance.id, since).await;
        Ok((instance, records))
    }

    /// [`start`](Self::start) inside a write the caller commits, so that
    /// records and their approval are made together (`approvals.start-with`).
    #[allow(clippy::too_many_arguments)]
    pub async fn start_in(
        &self,
        tx: &mut Tx<'_>,
        plugin: &str,
        applicant: &str,
        org: &str,
        flow: &str,
        subject_id: &str,
        title: &str,
        form: &str,
    ) -> Result<Instance> {
        if subject_id.is_empty() || subject_id.len() > 128 {
            return Err(invalid("subject_id", "1-128 bytes"));
        }
        let title = title.trim();
        if title.is_empty() || title.chars().count() > 200 {
            return Err(invalid("title", "1-200 characters"));
        }
        if form.len() > MAX_FORM_BYTES {
            return Err(invalid(
                "form",
                format!("at most {MAX_FORM_BYTES} bytes of JSON"),
            ));
        }
        let form: Value = serde_json::from_str(form)
            .ok()
            .filter(Value::is_object)
            .ok_or_else(|| invalid("form", "a JSON object"))?;
        if !self.authz.orgs().is_active(org) {
            return Err(invalid(
                "org",
                format!("org {org} does not exist or is inactive"),
            ));
        }
        let row = sqlx::query(
            "SELECT title, steps FROM approval_flows WHERE plugin_id = $1 AND name = $2",
        )
        .bind(plugin)
        .bind(flow)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| invalid("flow", format!("{plugin} has no flow {flow:?}")))?;
        let flow_title: String = row.get(0);
        let steps_json: String = row.get(1);
        let steps: Vec<Step> = serde_json::from_str(&steps_json)
            .map_err(|e| invalid("flow", format!("stored flow unreadable: {e}")))?;
        let t = now();
        let mut instance = Instance {
            id: crate::core::ids::new_record_id(),
            plugin: plugin.to_string(),
            flow: flow.to_string(),
            flow_title,
            subject_id: subject_id.to_string(),
            title: title.to_string(),
            org: org.to_string(),
            applicant: applicant.to_string(),
            status: "running".into(),
            current_step: 1,
            round: 0,
            steps,
            form,
            created_at: t,
            updated_at: t,
        };
        sqlx::query(
            "INSERT INTO approval_instances (id, plugin_id, flow, flow_title, subject_id, title, org_id,
                 applicant, form, steps, status, current_step, round, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'running', 1, 0, $11, $11)",
        )
        .bind(&instance.id)
        .bind(plugin)
        .bind(flow)
        .bind(&instance.flow_title)
        .bind(subject_id)
        .bind(&instance.title)
        .bind(org)
        .bind(applicant)
        .bind(instance.form.to_string())
        .bind(&steps_json)
        .bind(t)
        .execute(&mut **tx)
        .await?;
        self.timeline(tx, &instance.id, applicant, "started", 0, None, json!({}))
            .await?;
        self.refuse_self_only_steps(tx, &instance).await?;
        self.enter_step(tx, &mut instance, 1).await?;
        tx.record(
            Entry::new(applicant, "approval.start", "ok")
                .org(org)
                .target(&instance.id)
                .detail(json!({ "plugin": plugin, "flow": flow, "subject_id": subject_id })),
        );
        Ok(instance)
    }

    pub async fn get(&self, id: &str) -> Result<Option<Instance>> {
        let sql = format!("SELECT {INSTANCE_COLUMNS} FROM approval_instances WHERE id = $1");
        Ok(sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.db)
            .await?
            .map(|r| instance_of(&r)))
    }

    pub async fn list_for_subject(&self, plugin: &str, subject_id: &str) -> Result<Vec<Instance>> {
        let sql = format!(
            "SELECT {INSTANCE_COLUMNS} FROM approval_instances WHERE plugin_id = $1 AND subject_id = $2
             ORDER BY created_at DESC, id DESC LIMIT 100"
        );
        Ok(sqlx::query(&sql)
            .bind(plugin)
            .bind(subject_id)
            .fetch_all(&self.db)
            .await?
            .iter()
            .map(instance_of)
            .collect())
    }

    /// Whether `user` took part (applicant, any task) or was copied in.
    pub async fn is_participant(&self, id: &str, user: &str) -> Result<bool> {
        let n: i64 = sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM approval_instances WHERE id = $1 AND applicant = $2)
                  + (SELECT COUNT(*) FROM approval_tasks WHERE instance_id = $1 AND assignee = $2)
                  + (SELECT COUNT(*) FROM approval_copies WHERE instance_id = $1 AND user_id = $2)",
        )
        .bind(id)
        .bind(user)
        .fetch_one(&self.db)
        .await?;
        Ok(n > 0)
    }

    /// The org where step `step`'s approvers sit.
    async fn target_org(&self, tx: &mut Tx<'_>, org: &str, level: Level) -> Result<String> {
        let orgs = self.authz.orgs();
        let mut levels = std::collections::HashMap::new();
        for candidate in orgs.ancestors_and_self(org) {
            let level: Option<String> = sqlx::query_scalar("SELECT level FROM orgs WHERE id = $1")
                .bind(&candidate)
                .fetch_optional(&mut **tx)
                .await?;
            if let Some(level) = level {
                levels.insert(candidate, level);
            }
        }
        step_org(&orgs, org, level, |o| levels.get(o).cloned())
    }

    /// Users holding `role` by a binding at exactly `org`, active only.
    async fn holders(&self, tx: &mut Tx<'_>, role: &str, org: &str) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT b.user_id FROM bindings b JOIN users u ON u.id = b.user_id
             WHERE b.role = $1 AND b.org_id = $2 AND u.disabled = 0 ORDER BY b.user_id",
        )
        .bind(role)
        .bind(org)
        .fetch_all(&mut **tx)
        .await?)
    }

    /// Makes `step` (1-based) current with fresh tasks for its approvers.
    async fn enter_step(&self, tx: &mut Tx<'_>, inst: &mut Instance, step: i64) -> Result<()> {
        let def = inst.steps[(step - 1) as usize].clone();
        let at = self.target_org(tx, &inst.org, def.level).await?;
        let mut approvers = self.holders(tx, &def.role, &at).await?;
        // Separation of duties: the applicant is never an approver of their
        // own instance, unless the platform administrator allowed it for
        // this flow (a one-person unit). A step only they could approve
        // refuses, rather than letting them sign off their own request.
        if approvers.contains(&inst.applicant) && !self.self_approval_allowed(tx, inst).await? {
            approvers.retain(|u| *u != inst.applicant);
            if approvers.is_empty() {
                return Err(ServiceError::ApplicantOnly(format!(
                    "step {step} ({}) has no approver but the applicant: only they hold {} at org {at}; \
                     another person must approve, or the platform administrator must allow self-approval for flow {}",
                    def.name, def.role, inst.flow
                )));
            }
        }
        if approvers.is_empty() {
            return Err(ServiceError::NoApprover(format!(
                "step {step} ({}) has no approver: nobody holds {} at org {at}",
                def.name, def.role
            )));
        }
        inst.current_step = step;
        // A new round per entry: tasks of an earlier visit to this step
        // (before a rejection sent it back) stay in their own round.
        inst.round += 1;
        inst.updated_at = now();
        sqlx::query(
            "UPDATE approval_instances SET current_step = $2, round = $3, updated_at = $4 WHERE id = $1",
        )
        .bind(&inst.id)
        .bind(step)
        .bind(inst.round)
        .bind(inst.updated_at)
        .execute(&mut **tx)
        .await?;
        for (user, away) in self.stand_ins(tx, inst, approvers).await? {
            match away {
                None => self.add_task(tx, inst, &user, "resolved").await?,
                Some(away) => {
                    self.add_task(tx, inst, &user, "delegated").await?;
                    let (id, step) = (inst.id.clone(), inst.current_step);
                    self.timeline(
                        tx,
                        &id,
                        "system",
                        "delegated",
                        step,
                        None,
                        json!({ "from": away, "to": user }),
                    )
                    .await?;
                }
            }
        }
        Ok(())
    }

    /// Refuses at start a flow with a step only the applicant could
    /// approve, so it never stalls at that step after others approved.
    /// (Approvers are resolved again when each step is entered.)
    async fn refuse_self_only_steps(&self, tx: &mut Tx<'_>, inst: &Instance) -> Result<()> {
        if self.self_approval_allowed(tx, inst).await? {
            return Ok(());
        }
        for (i, def) in inst.steps.iter().enumerate() {
            let Ok(at) = self.target_org(tx, &inst.org, def.level).await else {
                continue;
            };
            let holders = self.holders(tx, &def.role, &at).await?;
            if !holders.is_empty() && holders.iter().all(|u| *u == inst.applicant) {
                return Err(ServiceError::ApplicantOnly(format!(
                    "step {} ({}) has no approver but the applicant: only they hold {} at org {at}; \
                     another person must approve, or the platform administrator must allow self-approval for flow {}",
                    i + 1,
                    def.name,
                    def.role,
                    inst.flow
                )));
            }
        }
        Ok(())
    }

    /// Whether the platform administrator allowed the applicant to approve
    /// their own instances of this flow.
    async fn self_approval_allowed(&self, tx: &mut Tx<'_>, inst: &Instance) -> Result<bool> {
        let allowed: Option<i64> = sqlx::query_scalar(
            "SELECT allow_self_approval FROM approval_flows WHERE plugin_id = $1 AND name = $2",
        )
        .bind(&inst.plugin)
        .bind(&inst.flow)
        .fetch_optional(&mut **tx)
        .await?;
        Ok(allowed.unwrap_or(0) != 0)
    }

    /// Refuses to hand the applicant a task on their own instance.
    async fn ensure_not_applicant(
        &self,
        tx: &mut Tx<'_>,
        inst: &Instance,
        user: &str,
        field: &'static str,
    ) -> Result<()> {
        if user == inst.applicant && !self.self_approval_allowed(tx, inst).await? {
            return Err(ServiceError::ApplicantOnly(format!(
                "{field}: the applicant cannot approve their own application"
            )));
        }
        Ok(())
    }

    /// Sets whether applicants may approve their own instances of
    /// `plugin`'s flow `name`; the caller has checked that the platform
    /// administrator asks. Plugins cannot: `define_flow` leaves it alone.
    pub async fn set_self_approval(
        &self,
        plugin: &str,
        name: &str,
        allowed: bool,
        actor: &str,
    ) -> Result<()> {
        self.set_flow_flag(plugin, name, FlowFlag::SelfApproval, allowed, actor)
            .await
    }

    /// Sets one of a flow's platform-administrator switches, audited.
    pub(super) async fn set_flow_flag(
        &self,
        plugin: &str,
        name: &str,
        flag: FlowFlag,
        on: bool,
        actor: &str,
    ) -> Result<()> {
        let (column, action) = match flag {
            FlowFlag::SelfApproval => ("allow_self_approval", "approval.flow.self_approval"),
            FlowFlag::AutoApproveRepeat => {
                ("auto_approve_repeat", "approval.flow.auto_approve_repeat")
            }
        };
        let mut tx = self.audit.begin().await?;
        let n = sqlx::query(&format!(
            "UPDATE approval_flows SET {column} = $1 WHERE plugin_id = $2 AND name = $3"
        ))
        .bind(i64::from(on))
        .bind(plugin)
        .bind(name)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(ServiceError::NotFound("approval".into()));
        }
        tx.commit(
            &Entry::new(actor, action, "ok")
                .target(format!("{plugin}/{name}"))
                .detail(json!({ column: on })),
        )
        .await?;
        Ok(())
    }

    /// Every flow, with its separation-of-duties setting, for the
    /// platform administrator.
    pub async fn flows(&self) -> Result<Vec<Value>> {
        let rows = sqlx::query(
            "SELECT plugin_id, name, title, allow_self_approval, auto_approve_repeat FROM approval_flows
             ORDER BY plugin_id, name",
        )
        .fetch_all(&self.db)
        .await?;
        Ok(rows
            .iter()
            .map(|r| {
                json!({
                    "plugin": r.get::<String, _>(0),
                    "name": r.get::<String, _>(1),
                    "title": r.get::<String, _>(2),
                    "allow_self_approval": r.get::<i64, _>(3) != 0,
                    "auto_approve_repeat": r.get::<i64, _>(4) != 0,
                })
            })
            .collect())
    }

    async fn add_task(
        &self,
        tx: &mut Tx<'_>,
        inst: &Instance,
        user: &str,
        origin: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO approval_tasks (id, instance_id, step, round, assignee, status, origin, created_at)
             VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7)",
        )
        .bind(crate::core::ids::new_record_id())
        .bind(&inst.id)
        .bind(inst.current_step)
        .bind(inst.round)
        .bind(user)
        .bind(origin)
        .bind(now())
        .execute(&mut **tx)
        .await?;
        self.notifications
            .add(
                tx,
                &Note {
                    user,
                    kind: Kind::Todo,
                    title: &inst.title,
                    plugin: &inst.plugin,
                    subject: &inst.id,
                    actor: Some(&inst.applicant),
                    detail: json!({ "step": inst.current_step }),
                },
            )
            .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn timeline(
        &self,
        tx: &mut Tx<'_>,
        id: &str,
        actor: &str,
        action: &str,
        step: i64,
        comment: Option<&str>,
        detail: Value,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO approval_timeline (instance_id, at, actor, action, step, comment, detail)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id)
        .bind(now())
        .bind(actor)
        .bind(action)
        .bind(step)
        .bind(comment)
        .bind(detail.to_string())
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    async fn finish(&self, tx: &mut Tx<'_>, inst: &mut Instance, status: &str) -> Result<()> {
        sqlx::query(
            "UPDATE approval_tasks SET status = 'cancelled', acted_at = $2
             WHERE instance_id = $1 AND status IN ('pending', 'held', 'lent')",
        )
        .bind(&inst.id)
        .bind(now())
        .execute(&mut **tx)
        .await?;
        inst.status = status.to_string();
        inst.current_step = 0;
        inst.updated_at = now();
        self.notifications.settle(tx, &inst.id, None).await?;
        // The applicant learns the outcome; one who withdrew knows it.
        if status != "withdrawn" {
            self.notifications
                .add(
                    tx,
                    &Note {
                        user: &inst.applicant,
                        kind: Kind::Decided,
                        title: &inst.title,
                        plugin: &inst.plugin,
                        subject: &inst.id,
                        actor: None,
                        detail: json!({ "status": status }),
                    },
                )
                .await?;
        }
        sqlx::query(
            "UPDATE approval_instances SET status = $2, current_step = 0, updated_at = $3 WHERE id = $1",
        )
        .bind(&inst.id)
        .bind(status)
        .bind(inst.updated_at)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Queues `kernel.approval.<outcome>` for the owning plugin.
    async fn notify(
        &self,
        tx: &mut Tx<'_>,
        inst: &Instance,
        outcome: &str,
        actor: &str,
        comment: Option<&str>,
    ) -> Result<()> {
        // The plugin shows who decided by name, without a lookup of its own.
        let actor_name: Option<String> =
            sqlx::query_scalar("SELECT display_name FROM users WHERE id = $1")
                .bind(actor)
                .fetch_optional(&mut **tx)
                .await?;
        let payload = json!({
            "instance_id": inst.id,
            "flow": inst.flow,
            "subject_id": inst.subject_id,
            "outcome": outcome,
            "status": inst.status,
            "current_step": inst.current_step,
            "actor": actor,
            "actor_name": actor_name,
            "comment": comment,
        });
        self.messaging
            .enqueue_in(
                tx,
                &inst.plugin,
                Message {
                    topic: format!("kernel.approval.{outcome}"),
                    key: Some(inst.id.clone()),
                    org: Some(inst.org.clone()),
                    payload: payload.to_string().into_bytes(),
                    idempotency_key: None,
                },
            )
            .await?;
        Ok(())
    }

    async fn lock_instance(&self, tx: &mut Tx<'_>, id: &str) -> Result<Instance> {
        // SQLite's BEGIN IMMEDIATE already serialises writers; PostgreSQL
        // needs the row lock so two approvers cannot both finish a step.
        let lock = self.dialect.for_update();
        let sql = format!("SELECT {INSTANCE_COLUMNS} FROM approval_instances WHERE id = $1{lock}");
        sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?
            .map(|r| instance_of(&r))
            .ok_or(ServiceError::NotFound("approval".into()))
    }

    /// The caller's pending task on the current step, or why there is none.
    async fn own_pending_task(
        &self,
        tx: &mut Tx<'_>,
        inst: &Instance,
        user: &str,
    ) -> Result<String> {
        if !inst.running() {
            return Err(decided(inst));
        }
        let pending: Option<String> = sqlx::query_scalar(
            "SELECT id FROM approval_tasks WHERE instance_id = $1 AND assignee = $2
               AND status = 'pending' AND step = $3 AND round = $4 ORDER BY id LIMIT 1",
        )
        .bind(&inst.id)
        .bind(user)
        .bind(inst.current_step)
        .bind(inst.round)
        .fetch_optional(&mut **tx)
        .await?;
        if let Some(task) = pending {
            return Ok(task);
        }
        // Claimed by a colleague (签收) or lent out (委派): the task is his
        // still, not his to act on now.
        let parked: Option<String> = sqlx::query_scalar(
            "SELECT status FROM approval_tasks WHERE instance_id = $1 AND assignee = $2
               AND status IN ('held', 'lent') LIMIT 1",
        )
        .bind(&inst.id)
        .bind(user)
        .fetch_optional(&mut **tx)
        .await?;
        match parked.as_deref() {
            Some("held") => {
                return Err(ServiceError::rule(
                    ErrorCode::ApprovalClaimed,
                    "a colleague has claimed this step (签收); it comes back if they unclaim it",
                ));
            }
            Some(_) => {
                return Err(ServiceError::rule(
                    ErrorCode::ApprovalLent,
                    "you delegated this step (委派); it comes back with your colleague's opinion",
                ));
            }
            None => {}
        }
        let had: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM approval_tasks WHERE instance_id = $1 AND assignee = $2",
        )
        .bind(&inst.id)
        .bind(user)
        .fetch_one(&mut **tx)
        .await?;
        if had > 0 {
            Err(ServiceError::rule(
                ErrorCode::ApprovalActed,
                "you have no pending task on this approval's current step; you acted already",
            ))
        } else {
            Err(ServiceError::rule(
                ErrorCode::ApprovalNotApprover,
                "you are not an approver of this approval's current step",
            ))
        }
    }

    /// For a task delegated (委派) to its holder, the owner's task it goes
    /// back to.
    async fn lent_from(&self, tx: &mut Tx<'_>, task: &str) -> Result<Option<String>> {
        let origin: Option<String> =
            sqlx::query_scalar("SELECT origin FROM approval_tasks WHERE id = $1")
                .bind(task)
                .fetch_optional(&mut **tx)
                .await?;
        Ok(origin.and_then(|o| o.strip_prefix("delegate:").map(str::to_string)))
    }

    /// Whether the current step is complete after an approval on it: its
    /// mode is any-one, or nobody's task is left. A complete step's other
    /// tasks are moot and cancelled.
    async fn step_done(&self, tx: &mut Tx<'_>, inst: &Instance, step: i64) -> Result<bool> {
        let mode = inst.steps[(step - 1) as usize].mode;
        let remaining: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM approval_tasks WHERE instance_id = $1 AND status = 'pending'",
        )
        .bind(&inst.id)
        .fetch_one(&mut **tx)
        .await?;
        if mode != Mode::Any && remaining > 0 {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE approval_tasks SET status = 'cancelled', acted_at = $2
             WHERE instance_id = $1 AND status IN ('pending', 'held', 'lent')",
        )
        .bind(&inst.id)
        .bind(now())
        .execute(&mut **tx)
        .await?;
        // The colleagues' to-dos of a step one of them did are moot.
        self.notifications.settle(tx, &inst.id, None).await?;
        Ok(true)
    }

    async fn close_task(
        &self,
        tx: &mut Tx<'_>,
        task: &str,
        status: &str,
        comment: Option<&str>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE approval_tasks SET status = $2, comment = $3, acted_at = $4 WHERE id = $1",
        )
        .bind(task)
        .bind(status)
        .bind(comment)
        .bind(now())
        .execute(&mut **tx)
        .await?;
        // Acting on a to-do answers its notifications.
        let row = sqlx::query("SELECT instance_id, assignee FROM approval_tasks WHERE id = $1")
            .bind(task)
            .fetch_one(&mut **tx)
            .await?;
        let (instance, assignee): (String, String) = (row.get(0), row.get(1));
        self.notifications
            .settle(tx, &instance, Some(&assignee))
            .await
    }

    async fn active_user(
        &self,
        tx: &mut Tx<'_>,
        user: &str,
        field: &'static str,
    ) -> Result<String> {
        // Accept an id or a username: people name colleagues by username.
        let id: Option<String> = sqlx::query_scalar(
            "SELECT id FROM users WHERE (id = $1 OR username = $1) AND disabled = 0",
        )
        .bind(user)
        .fetch_optional(&mut **tx)
        .await?;
        id.ok_or_else(|| {
            ServiceError::rule(
                ErrorCode::ApprovalUnknownUser,
                format!("no active user {user:?}"),
            )
            .on_field(field)
        })
    }

    /// Applies `action` by `user` to instance `id`. The caller has checked
    /// that `user` may see the instance; this decides whether they may do
    /// this to it.
    pub async fn act(&self, id: &str, user: &str, action: Action) -> Result<Instance> {
        let name = action.name();
        let since = now();
        let mut tx = self.audit.begin().await?;
        let mut inst = self.lock_instance(&mut tx, id).await?;
        let step = inst.current_step;
        let mut detail = json!({});
        let mut outcome: Option<(&str, Option<String>)> = None;
        match action {
            Action::Approve { comment } => {
                let comment = clean_comment(comment)?;
                let task = self.own_pending_task(&mut tx, &inst, user).await?;
                if let Some(owner_task) = self.lent_from(&mut tx, &task).await? {
                    // 委派: the colleague's opinion goes back to the owner,
                    // whose task it still is; the step does not move.
                    self.close_task(&mut tx, &task, "approved", comment.as_deref())
                        .await?;
                    sqlx::query(
                        "UPDATE approval_tasks SET status = 'pending' WHERE id = $1 AND status = 'lent'",
                    )
                    .bind(&owner_task)
                    .execute(&mut *tx)
                    .await?;
                    self.timeline(
                        &mut tx,
                        id,
                        user,
                        "delegate_resolved",
                        step,
                        comment.as_deref(),
                        json!({}),
                    )
                    .await?;
                } else {
                    self.close_task(&mut tx, &task, "approved", comment.as_deref())
                        .await?;
                    self.timeline(
                        &mut tx,
                        id,
                        user,
                        "approved",
                        step,
                        comment.as_deref(),
                        json!({}),
                    )
                    .await?;
                    if self.step_done(&mut tx, &inst, step).await? {
                        let finished = if (step as usize) < inst.steps.len() {
                            self.enter_step(&mut tx, &mut inst, step + 1).await?;
                            self.approve_repeats(&mut tx, &mut inst, user).await?
                        } else {
                            true
                        };
                        if finished {
                            self.finish(&mut tx, &mut inst, "approved").await?;
                            outcome = Some(("approved", comment));
                        }
                    }
                }
            }
            Action::Reject { to_step, comment } => {
                let comment = clean_comment(comment)?;
                let target = to_step.unwrap_or(0);
                if target < 0 || target >= step {
                    return Err(invalid(
                        "to_step",
                        format!("0 (the applicant) or an earlier step, 1 to {}", step - 1),
                    ));
                }
                let task = self.own_pending_task(&mut tx, &inst, user).await?;
                if self.lent_from(&mut tx, &task).await?.is_some() {
                    return Err(ServiceError::rule(
                        ErrorCode::ApprovalDelegateOpinionOnly,
                        "a delegate gives an opinion (approve); sending back is the owner's decision",
                    ));
                }
                // Sending back without a reason leaves the applicant guessing.
                if comment.as_deref().is_none_or(|c| c.trim().is_empty()) {
                    return Err(ServiceError::ReasonRequired { field: "comment" });
                }
                self.close_task(&mut tx, &task, "rejected", comment.as_deref())
                    .await?;
                detail = json!({ "to_step": target });
                self.timeline(
                    &mut tx,
                    id,
                    user,
                    "rejected",
                    step,
                    comment.as_deref(),
                    detail.clone(),
                )
                .await?;
                if target == 0 {
                    self.finish(&mut tx, &mut inst, "rejected").await?;
                    outcome = Some(("rejected", comment));
                } else {
                    sqlx::query(
                        "UPDATE approval_tasks SET status = 'cancelled', acted_at = $2
                         WHERE instance_id = $1 AND status IN ('pending', 'held', 'lent')",
                    )
                    .bind(id)
                    .bind(now())
                    .execute(&mut *tx)
                    .await?;
                    self.notifications.settle(&mut tx, id, None).await?;
                    self.enter_step(&mut tx, &mut inst, target).await?;
                    outcome = Some(("returned", comment));
                }
            }
            Action::Withdraw { comment } => {
                let comment = clean_comment(comment)?;
                if inst.applicant != user {
                    return Err(ServiceError::rule(
                        ErrorCode::ApprovalApplicantAction,
                        "only the applicant may withdraw an approval",
                    ));
                }
                if !inst.running() {
                    return Err(decided(&inst));
                }
                self.timeline(
                    &mut tx,
                    id,
                    user,
                    "withdrawn",
                    step,
                    comment.as_deref(),
                    json!({}),
                )
                .await?;
                self.finish(&mut tx, &mut inst, "withdrawn").await?;
                outcome = Some(("withdrawn", comment));
            }
            Action::Reassign { to, comment } => {
                let comment = clean_comment(comment)?;
                let task = self.own_pending_task(&mut tx, &inst, user).await?;
                let to = self.active_user(&mut tx, &to, "to").await?;
                self.ensure_not_applicant(&mut tx, &inst, &to, "to").await?;
                self.ensure_not_pending(&mut tx, &inst, &to, "to").await?;
                self.close_task(&mut tx, &task, "reassigned", comment.as_deref())
                    .await?;
                self.add_task(&mut tx, &inst, &to, "reassigned").await?;
                detail = json!({ "to": to });
                self.timeline(
                    &mut tx,
                    id,
                    user,
                    "reassigned",
                    step,
                    comment.as_deref(),
                    detail.clone(),
                )
                .await?;
            }
            Action::AddApprover {
                user: added,
                comment,
            } => {
                let comment = clean_comment(comment)?;
                self.own_pending_task(&mut tx, &inst, user).await?;
                let added = self.active_user(&mut tx, &added, "user").await?;
                self.ensure_not_applicant(&mut tx, &inst, &added, "user")
                    .await?;
                self.ensure_not_pending(&mut tx, &inst, &added, "user")
                    .await?;
                self.add_task(&mut tx, &inst, &added, "added").await?;
                detail = json!({ "user": added });
                self.timeline(
                    &mut tx,
                    id,
                    user,
                    "approver_added",
                    step,
                    comment.as_deref(),
                    detail.clone(),
                )
                .await?;
            }
            Action::CopyTo { users } => {
                if users.is_empty() || users.len() > MAX_COPIES {
                    return Err(invalid("users", format!("1 to {MAX_COPIES} users")));
                }
                self.ensure_takes_part(&mut tx, &inst, user).await?;
                let mut added = Vec::new();
                for u in users {
                    let u = self.active_user(&mut tx, &u, "users").await?;
                    // 抄送 is de-duplicated: copying twice changes nothing.
                    let n = sqlx::query(
                        "INSERT INTO approval_copies (instance_id, user_id, copied_by, copied_at)
                         VALUES ($1, $2, $3, $4) ON CONFLICT (instance_id, user_id) DO NOTHING",
                    )
                    .bind(id)
                    .bind(&u)
                    .bind(user)
                    .bind(now())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if n > 0 {
                        self.notifications
                            .add(
                                &mut tx,
                                &Note {
                                    user: &u,
                                    kind: Kind::Copied,
                                    title: &inst.title,
                                    plugin: &inst.plugin,
                                    subject: &inst.id,
                                    actor: Some(user),
                                    detail: json!({}),
                                },
                            )
                            .await?;
                        added.push(u);
                    }
                }
                detail = json!({ "users": added });
                self.timeline(&mut tx, id, user, "copied", step, None, detail.clone())
                    .await?;
            }
            Action::Comment { text } => {
                let text = clean_comment(Some(text))?
                    .ok_or_else(|| invalid("text", "a comment needs text"))?;
                // Participants and copied users may comment (a comment
                // changes no state); admins who merely read may not.
                self.ensure_participant(&mut tx, &inst, user).await?;
                self.timeline(&mut tx, id, user, "commented", step, Some(&text), json!({}))
                    .await?;
            }
            Action::Attach {
                reference,
                name: file,
            } => {
                let reference = reference.trim().to_string();
                let file = file.trim().to_string();
                if reference.is_empty() || reference.len() > 200 {
                    return Err(invalid("ref", "a file reference of 1-200 bytes"));
                }
                if file.is_empty() || file.chars().count() > 255 {
                    return Err(invalid("name", "a file name of 1-255 characters"));
                }
                self.ensure_takes_part(&mut tx, &inst, user).await?;
                detail = json!({ "ref": reference, "name": file });
                self.timeline(&mut tx, id, user, "attached", step, None, detail.clone())
                    .await?;
            }
            Action::Delegate { to, comment } => {
                let comment = clean_comment(comment)?;
                let task = self.own_pending_task(&mut tx, &inst, user).await?;
                if self.lent_from(&mut tx, &task).await?.is_some() {
                    return Err(ServiceError::rule(
                        ErrorCode::ApprovalDelegateOpinionOnly,
                        "a task delegated to you goes back to its owner; it is not delegated on",
                    ));
                }
                let to = self.active_user(&mut tx, &to, "to").await?;
                if to == user {
                    return Err(invalid("to", "name someone else"));
                }
                self.ensure_not_applicant(&mut tx, &inst, &to, "to").await?;
                self.ensure_not_pending(&mut tx, &inst, &to, "to").await?;
                sqlx::query("UPDATE approval_tasks SET status = 'lent' WHERE id = $1")
                    .bind(&task)
                    .execute(&mut *tx)
                    .await?;
                self.add_task(&mut tx, &inst, &to, &format!("delegate:{task}"))
                    .await?;
                detail = json!({ "to": to });
                self.timeline(
                    &mut tx,
                    id,
                    user,
                    "delegated_out",
                    step,
                    comment.as_deref(),
                    detail.clone(),
                )
                .await?;
            }
            Action::Read => {
                let n = sqlx::query(
                    "UPDATE approval_copies SET read_at = $3
                     WHERE instance_id = $1 AND user_id = $2 AND read_at IS NULL",
                )
                .bind(id)
                .bind(user)
                .bind(now())
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if n == 0 {
                    let copied: i64 = sqlx::query_scalar(
                        "SELECT COUNT(*) FROM approval_copies WHERE instance_id = $1 AND user_id = $2",
                    )
                    .bind(id)
                    .bind(user)
                    .fetch_one(&mut *tx)
                    .await?;
                    if copied == 0 {
                        return Err(ServiceError::rule(
                            ErrorCode::ApprovalNotCopied,
                            "the approval was not copied to you",
                        ));
                    }
                    // Read before: nothing changes, nothing to record.
                    return Ok(inst);
                }
                self.timeline(&mut tx, id, user, "read", step, None, json!({}))
                    .await?;
            }
            Action::Claim | Action::Unclaim => {
                let claim = matches!(action, Action::Claim);
                self.own_pending_task(&mut tx, &inst, user).await?;
                if claim && inst.steps[(step - 1) as usize].mode != Mode::Any {
                    return Err(ServiceError::rule(
                        ErrorCode::ApprovalNotClaimable,
                        "a step every approver signs (会签) is not claimed",
                    ));
                }
                let (from, to) = if claim {
                    ("pending", "held")
                } else {
                    ("held", "pending")
                };
                let moved = sqlx::query(
                    "UPDATE approval_tasks SET status = $5
                     WHERE instance_id = $1 AND step = $2 AND round = $3 AND assignee <> $4 AND status = $6",
                )
                .bind(id)
                .bind(step)
                .bind(inst.round)
                .bind(user)
                .bind(to)
                .bind(from)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if moved == 0 {
                    return Err(if claim {
                        ServiceError::rule(
                            ErrorCode::ApprovalNotClaimable,
                            "nobody else approves this step: there is nothing to claim",
                        )
                    } else {
                        ServiceError::rule(ErrorCode::ApprovalNotClaimed, "the step is not claimed")
                    });
                }
                let what = if claim { "claimed" } else { "unclaimed" };
                self.timeline(
                    &mut tx,
                    id,
                    user,
                    what,
                    step,
                    None,
                    json!({ "tasks": moved }),
                )
                .await?;
            }
            Action::Urge { comment } => {
                let comment = clean_comment(comment)?;
                if inst.applicant != user {
                    return Err(ServiceError::rule(
                        ErrorCode::ApprovalApplicantAction,
                        "only the applicant urges the approvers",
                    ));
                }
                if !inst.running() {
                    return Err(decided(&inst));
                }
                let last: Option<i64> = sqlx::query_scalar(
                    "SELECT MAX(at) FROM approval_timeline WHERE instance_id = $1 AND action = 'urged'",
                )
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
                if last.is_some_and(|at| now() - at < URGE_INTERVAL_SECS) {
                    return Err(ServiceError::rule(
                        ErrorCode::ApprovalUrgedRecently,
                        "urged within the hour already; the approvers have it on their lists",
                    ));
                }
                sqlx::query(
                    "UPDATE approval_tasks SET urged_at = $2 WHERE instance_id = $1 AND status = 'pending'",
                )
                .bind(id)
                .bind(now())
                .execute(&mut *tx)
                .await?;
                let urged: Vec<String> = sqlx::query_scalar(
                    "SELECT DISTINCT assignee FROM approval_tasks WHERE instance_id = $1 AND status = 'pending'",
                )
                .bind(id)
                .fetch_all(&mut *tx)
                .await?;
                for approver in &urged {
                    self.notifications
                        .add(
                            &mut tx,
                            &Note {
                                user: approver,
                                kind: Kind::Urged,
                                title: &inst.title,
                                plugin: &inst.plugin,
                                subject: &inst.id,
                                actor: Some(user),
                                detail: json!({ "comment": comment }),
                            },
                        )
                        .await?;
                }
                self.timeline(
                    &mut tx,
                    id,
                    user,
                    "urged",
                    step,
                    comment.as_deref(),
                    json!({}),
                )
                .await?;
            }
        }
        if let Some((outcome, comment)) = &outcome {
            self.notify(&mut tx, &inst, outcome, user, comment.as_deref())
                .await?;
        }
        sqlx::query("UPDATE approval_instances SET updated_at = $2 WHERE id = $1")
            .bind(id)
            .bind(now())
            .execute(&mut *tx)
            .await?;
        tx.commit(
            &Entry::new(user, &format!("approval.{name}"), "ok")
                .org(&inst.org)
                .target(id)
                .detail(json!({ "step": step, "detail": detail, "status": inst.status })),
        )
        .await?;
        if outcome.is_some() {
            self.messaging.wake();
        }
        self.notifications.committed(id, since).await;
        Ok(inst)
    }

    async fn ensure_not_pending(
        &self,
        tx: &mut Tx<'_>,
        inst: &Instance,
        user: &str,
        field: &'static str,
    ) -> Result<()> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM approval_tasks WHERE instance_id = $1 AND assignee = $2 AND status IN ('pending', 'held', 'lent')",
        )
        .bind(&inst.id)
        .bind(user)
        .fetch_one(&mut **tx)
        .await?;
        if n > 0 {
            return Err(ServiceError::rule(
                ErrorCode::ApprovalAlreadyApprover,
                "that user is already an approver of the current step",
            )
            .on_field(field));
        }
        Ok(())
    }

    async fn ensure_participant(&self, tx: &mut Tx<'_>, inst: &Instance, user: &str) -> Result<()> {
        let copied: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM approval_copies WHERE instance_id = $1 AND user_id = $2",
        )
        .bind(&inst.id)
        .bind(user)
        .fetch_one(&mut **tx)
        .await?;
        if copied > 0 {
            return Ok(());
        }
        self.ensure_takes_part(tx, inst, user).await
    }

    /// Applicant or approver (past or present): copied users only read.
    async fn ensure_takes_part(&self, tx: &mut Tx<'_>, inst: &Instance, user: &str) -> Result<()> {
        if inst.applicant == user {
            return Ok(());
        }
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM approval_tasks WHERE instance_id = $1 AND assignee = $2",
        )
        .bind(&inst.id)
        .bind(user)
        .fetch_one(&mut **tx)
        .await?;
        if n == 0 {
            return Err(ServiceError::rule(
                ErrorCode::ApprovalNotParticipant,
                "only the applicant and approvers may do this",
            ));
        }
        Ok(())
    }

    /// Tasks, copies and timeline of one instance, with user names.
    pub async fn detail(&self, inst: &Instance, viewer: &str) -> Result<Value> {
        let tasks = sqlx::query(
            "SELECT t.id, t.step, t.round, t.assignee, u.display_name, t.status, t.origin, t.comment,
                    t.created_at, t.acted_at
             FROM approval_tasks t LEFT JOIN users u ON u.id = t.assignee
             WHERE t.instance_id = $1 ORDER BY t.created_at, t.id",
        )
        .bind(&inst.id)
        .fetch_all(&self.db)
        .await?;
        let tasks: Vec<Value> = tasks
            .iter()
            .map(|r| {
                json!({
                    "id": r.get::<String, _>(0),
                    "step": r.get::<i64, _>(1),
                    "round": r.get::<i64, _>(2),
                    "assignee": r.get::<String, _>(3),
                    "assignee_name": r.get::<Option<String>, _>(4),
                    "status": r.get::<String, _>(5),
                    "origin": r.get::<String, _>(6),
                    "comment": r.get::<Option<String>, _>(7),
                    "created_at": r.get::<i64, _>(8),
                    "acted_at": r.get::<Option<i64>, _>(9),
                })
            })
            .collect();
        let timeline = sqlx::query(
            "SELECT l.seq, l.at, l.actor, u.display_name, l.action, l.step, l.comment, l.detail
             FROM approval_timeline l LEFT JOIN users u ON u.id = l.actor
             WHERE l.instance_id = $1 ORDER BY l.seq",
        )
        .bind(&inst.id)
        .fetch_all(&self.db)
        .await?;
        let timeline: Vec<Value> = timeline
            .iter()
            .map(|r| {
                json!({
                    "seq": r.get::<i64, _>(0),
                    "at": r.get::<i64, _>(1),
                    "actor": r.get::<String, _>(2),
                    "actor_name": r.get::<Option<String>, _>(3),
                    "action": r.get::<String, _>(4),
                    "step": r.get::<i64, _>(5),
                    "comment": r.get::<Option<String>, _>(6),
                    "detail": serde_json::from_str::<Value>(&r.get::<String, _>(7)).unwrap_or(Value::Null),
                })
            })
            .collect();
        let copies = sqlx::query(
            "SELECT c.user_id, u.display_name, c.copied_by, c.copied_at, c.read_at
             FROM approval_copies c LEFT JOIN users u ON u.id = c.user_id
             WHERE c.instance_id = $1 ORDER BY c.copied_at, c.user_id",
        )
        .bind(&inst.id)
        .fetch_all(&self.db)
        .await?;
        let copies: Vec<Value> = copies
            .iter()
            .map(|r| {
                json!({
                    "user": r.get::<String, _>(0),
                    "user_name": r.get::<Option<String>, _>(1),
                    "copied_by": r.get::<String, _>(2),
                    "copied_at": r.get::<i64, _>(3),
                    "read_at": r.get::<Option<i64>, _>(4),
                })
            })
            .collect();
        let my_task = tasks
            .iter()
            .any(|t| t["assignee"] == viewer && t["status"] == "pending");
        Ok(json!({
            "approval": inst,
            "tasks": tasks,
            "timeline": timeline,
            "copies": copies,
            "can_act": my_task,
            "can_withdraw": inst.running() && inst.applicant == viewer,
        }))
    }

    /// Instances still running at `orgs` (one org's subtree): the wall's
    /// "approvals in flight". Counted per org in SQL and filtered here, as
    /// a subtree can be thousands of orgs.
    pub async fn running_count(&self, orgs: &std::collections::HashSet<String>) -> Result<u64> {
        let rows = sqlx::query(
            "SELECT org_id, COUNT(*) FROM approval_instances WHERE status = 'running' GROUP BY org_id",
        )
        .fetch_all(&self.db)
        .await?;
        Ok(rows
            .iter()
            .filter(|r| orgs.contains(&r.get::<String, _>(0)))
            .map(|r| r.get::<i64, _>(1).max(0) as u64)
            .sum())
    }

    /// One page of a user's list: pending tasks, copies, or applications.
    pub async fn todos(
        &self,
        user: &str,
        kind: TodoKind,
        limit: i64,
        offset: i64,
    ) -> Result<Value> {
        let cols = "i.id, i.plugin_id, i.flow, i.flow_title, i.subject_id, i.title, i.org_id, \
                    i.applicant, i.status, i.current_step, i.round, i.steps, i.form, i.created_at, i.updated_at";
        let (sql, count) = match kind {
            TodoKind::Pending => (
                format!(
                    "SELECT {cols}, t.id, t.created_at, t.urged_at, CAST(NULL AS BIGINT) FROM approval_tasks t
                     JOIN approval_instances i ON i.id = t.instance_id
                     WHERE t.assignee = $1 AND t.status = 'pending'
                     ORDER BY t.created_at DESC, t.id DESC LIMIT $2 OFFSET $3"
                ),
                "SELECT COUNT(*) FROM approval_tasks WHERE assignee = $1 AND status = 'pending'",
            ),
            TodoKind::Copied => (
                format!(
                    "SELECT {cols}, NULL, c.copied_at, CAST(NULL AS BIGINT), c.read_at FROM approval_copies c
                     JOIN approval_instances i ON i.id = c.instance_id
                     WHERE c.user_id = $1
                     ORDER BY c.copied_at DESC, i.id DESC LIMIT $2 OFFSET $3"
                ),
                "SELECT COUNT(*) FROM approval_copies WHERE user_id = $1",
            ),
            TodoKind::Started => (
                format!(
                    "SELECT {cols}, NULL, i.created_at, CAST(NULL AS BIGINT), CAST(NULL AS BIGINT) FROM approval_instances i
                     WHERE i.applicant = $1
                     ORDER BY i.created_at DESC, i.id DESC LIMIT $2 OFFSET $3"
                ),
                "SELECT COUNT(*) FROM approval_instances WHERE applicant = $1",
            ),
        };
        let rows = sqlx::query(&sql)
            .bind(user)
            .bind(limit)
            .bind(offset)
            .fetch_all(&self.db)
            .await?;
        let total: i64 = sqlx::query_scalar(count)
            .bind(user)
            .fetch_one(&self.db)
            .await?;
        let items: Vec<Value> = rows
            .iter()
            .map(|r| {
                let inst = instance_of(r);
                let step_name = (inst.current_step > 0)
                    .then(|| inst.steps.get((inst.current_step - 1) as usize))
                    .flatten()
                    .map(|s| s.name.clone());
                json!({
                    "task_id": r.get::<Option<String>, _>(15),
                    "since": r.get::<i64, _>(16),
                    // When the applicant last urged (催办), if he did.
                    "urged_at": r.get::<Option<i64>, _>(17),
                    // A copy (抄送) read, 已阅; null while 待阅.
                    "read_at": r.get::<Option<i64>, _>(18),
                    "step_name": step_name,
                    "approval": inst,
                })
            })
            .collect();
        let next = offset + items.len() as i64;
        // 待阅: how many copies the user has not read yet.
        let unread: Option<i64> = match kind {
            TodoKind::Copied => Some(
                sqlx::query_scalar(
                    "SELECT COUNT(*) FROM approval_copies WHERE user_id = $1 AND read_at IS NULL",
                )
                .bind(user)
                .fetch_one(&self.db)
                .await?,
            ),
            _ => None,
        };
        Ok(json!({
            "items": items,
            "total": total,
            "unread": unread,
            "next_offset": (next < total).then_some(next),
        }))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TodoKind {
    Pending,
    Copied,
    Started,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// region ← prefecture ← county ← unit, and a second county.
    fn tree() -> (
        crate::core::scope::OrgIndex,
        impl Fn(&str) -> Option<String>,
    ) {
        let mut orgs = crate::core::scope::OrgIndex::default();
        for (id, parent) in [
            ("r", None),
            ("p", Some("r")),
            ("c", Some("p")),
            ("u", Some("c")),
            ("c2", Some("p")),
        ] {
            orgs.insert(id.into(), parent.map(str::to_string), true);
        }
        let level_of = |o: &str| {
            Some(
                match o {
                    "r" => "region",
                    "p" => "prefecture",
                    "c" | "c2" => "county",
                    _ => "unit",
                }
                .to_string(),
            )
        };
        (orgs, level_of)
    }

    #[test]
    fn a_step_names_the_applicants_own_enclosing_org_at_its_level() {
        let (orgs, level_of) = tree();
        let at = |level| step_org(&orgs, "u", level, &level_of).unwrap();
        assert_eq!(at(Level::SelfOrg), "u");
        assert_eq!(at(Level::Parent), "c");
        assert_eq!(at(Level::County), "c");
        assert_eq!(at(Level::Prefecture), "p");
        assert_eq!(at(Level::Region), "r");
    }

    #[test]
    fn a_step_above_the_applicants_tree_or_below_their_level_is_refused() {
        let (orgs, level_of) = tree();
        // A prefecture is within no county; the region has no parent.
        assert!(step_org(&orgs, "p", Level::County, &level_of).is_err());
        assert!(step_org(&orgs, "r", Level::Parent, &level_of).is_err());
        // The other county is never an approver of this unit.
        assert_ne!(
            step_org(&orgs, "u", Level::County, &level_of).unwrap(),
            "c2"
        );
    }

    fn step(role: &str) -> Step {
        Step {
            name: "review".into(),
            role: role.into(),
            level: Level::County,
            mode: Mode::Any,
        }
    }

    #[test]
    fn flows_may_only_use_kernel_roles_or_their_own() {
        let flow = |role: &str| Flow {
            name: "purchase".into(),
            title: "Purchase".into(),
            steps: vec![step(role)],
        };
        assert!(validate_flow("assets", &flow("assets.approver")).is_ok());
        assert!(validate_flow("assets", &flow("org-admin")).is_ok());
        assert!(validate_flow("assets", &flow("vehicles.approver")).is_err());
        assert!(validate_flow("assets", &flow("assetsx.approver")).is_err());
        assert!(validate_flow("assets", &flow("assets.")).is_err());
    }

    #[test]
    fn flows_need_a_name_and_steps() {
        let mut flow = Flow {
            name: "Bad Name".into(),
            title: "x".into(),
            steps: vec![step("member")],
        };
        assert!(validate_flow("p", &flow).is_err());
        flow.name = "ok".into();
        assert!(validate_flow("p", &flow).is_ok());
        flow.steps.clear();
        assert!(validate_flow("p", &flow).is_err());
    }

    #[test]
    fn levels_read_as_people_write_them() {
        let s: Step = serde_json::from_value(
            json!({"name": "n", "role": "member", "level": "self", "mode": "all"}),
        )
        .unwrap();
        assert_eq!(s.level, Level::SelfOrg);
        assert_eq!(s.mode, Mode::All);
    }
}
