//! The `approvals` import (contract 1.2; `start-with` since 1.3): a plugin defines its flows and
//! starts, reads and withdraws instances for its own records. Who the
//! applicant is and which orgs they reach come from the kernel's scope of
//! the call, never from the plugin; approving and the rest happen through
//! the kernel API, not through plugins.

use crate::core::error::ServiceError;
use crate::runtime::bindings::tianshan::plugin::approvals;
use crate::runtime::host::HostState;
use crate::services::approvals::{Flow, Instance, Level, Mode, StartWithError, Step};

/// Adds the `approvals` import to the plugins' linker.
pub fn add_to_linker(linker: &mut wasmtime::component::Linker<HostState>) -> wasmtime::Result<()> {
    approvals::add_to_linker::<HostState, wasmtime::component::HasSelf<HostState>>(linker, |s| s)
}

fn unavailable() -> approvals::ApprovalError {
    approvals::ApprovalError::Unavailable("approvals are not available in this kernel".into())
}

/// The one mapping of a service error onto the `approvals` interface's.
fn to_wit_error(e: ServiceError) -> approvals::ApprovalError {
    match e {
        ServiceError::NotFound(_) => approvals::ApprovalError::NotFound,
        ServiceError::Forbidden(m) => approvals::ApprovalError::Forbidden(m),
        ServiceError::Conflict(m) => approvals::ApprovalError::Conflict(m),
        ServiceError::Invalid {
            field: Some(field),
            message,
        } => approvals::ApprovalError::Invalid(format!("{field}: {message}")),
        // The stable code leads, so the plugin can tell the applicant why.
        ServiceError::ApplicantOnly(m) => {
            approvals::ApprovalError::Invalid(format!("approval_applicant_only: {m}"))
        }
        ServiceError::NoApprover(m) => {
            approvals::ApprovalError::Invalid(format!("approval_no_approver: {m}"))
        }
        // The code leads here too; the SDK gives it back to the page.
        ServiceError::Refused(r) => {
            let m = format!("{}: {}", r.code.as_str(), r.message);
            match r.code.status().as_u16() {
                403 => approvals::ApprovalError::Forbidden(m),
                409 => approvals::ApprovalError::Conflict(m),
                _ => approvals::ApprovalError::Invalid(m),
            }
        }
        ServiceError::Unavailable(m) => approvals::ApprovalError::Unavailable(m),
        e => approvals::ApprovalError::Invalid(e.to_string()),
    }
}

fn to_wit(i: Instance) -> approvals::Instance {
    approvals::Instance {
        step_count: i.steps.len() as u32,
        id: i.id,
        flow: i.flow,
        subject_id: i.subject_id,
        title: i.title,
        org: i.org,
        applicant: i.applicant,
        status: i.status,
        current_step: i.current_step.max(0) as u32,
        created_at: i.created_at,
        updated_at: i.updated_at,
    }
}

fn from_wit(flow: approvals::Flow) -> Flow {
    Flow {
        name: flow.name,
        title: flow.title,
        steps: flow
            .steps
            .into_iter()
            .map(|s| Step {
                name: s.name,
                role: s.role,
                level: match s.level {
                    approvals::Level::SelfOrg => Level::SelfOrg,
                    approvals::Level::Parent => Level::Parent,
                    approvals::Level::County => Level::County,
                    approvals::Level::Prefecture => Level::Prefecture,
                    approvals::Level::Region => Level::Region,
                },
                mode: match s.mode {
                    approvals::Mode::AnyOne => Mode::Any,
                    approvals::Mode::All => Mode::All,
                },
            })
            .collect(),
    }
}

impl approvals::Host for HostState {
    async fn define_flow(&mut self, flow: approvals::Flow) -> Result<(), approvals::ApprovalError> {
        let (scope, services) = self.scope().ok_or_else(unavailable)?;
        let actor = scope.actor.as_deref().unwrap_or(&scope.actor_name);
        services
            .approvals
            .define_flow(&scope.plugin, actor, &from_wit(flow))
            .await
            .map_err(to_wit_error)
    }

    async fn start(
        &mut self,
        flow: String,
        subject_id: String,
        title: String,
        org: Option<String>,
        form: String,
    ) -> Result<approvals::Instance, approvals::ApprovalError> {
        let (scope, services) = self.scope().ok_or_else(unavailable)?;
        // An application is always someone's: the kernel's own calls
        // (install, events, jobs) have nobody to apply.
        let applicant = scope.actor.clone().ok_or_else(|| {
            approvals::ApprovalError::Forbidden("starting an approval needs a calling user".into())
        })?;
        let org = org.unwrap_or_else(|| scope.acting_org.clone());
        if !scope.reaches(&org) {
            return Err(approvals::ApprovalError::Forbidden(format!(
                "org {org} is outside the caller's reach"
            )));
        }
        services
            .approvals
            .start(
                &scope.plugin,
                &applicant,
                &org,
                &flow,
                &subject_id,
                &title,
                &form,
            )
            .await
            .map(to_wit)
            .map_err(to_wit_error)
    }

    async fn start_with(
        &mut self,
        flow: String,
        subject_id: String,
        title: String,
        org: Option<String>,
        form: String,
        writes: Vec<approvals::Write>,
    ) -> Result<(approvals::Instance, Vec<Option<approvals::Record>>), approvals::StartWithError>
    {
        use approvals::StartWithError as E;
        let (scope, services) = self.scope().ok_or_else(|| E::Approval(unavailable()))?;
        let applicant = scope.actor.clone().ok_or_else(|| {
            E::Approval(approvals::ApprovalError::Forbidden(
                "starting an approval needs a calling user".into(),
            ))
        })?;
        let org = org.unwrap_or_else(|| scope.acting_org.clone());
        if !scope.reaches(&org) {
            return Err(E::Approval(approvals::ApprovalError::Forbidden(format!(
                "org {org} is outside the caller's reach"
            ))));
        }
        let writes = writes
            .into_iter()
            .map(super::storage::from_wit_write)
            .collect();
        match services
            .approvals
            .start_with(
                &services.storage,
                &scope,
                &applicant,
                &org,
                &flow,
                &subject_id,
                &title,
                &form,
                writes,
            )
            .await
        {
            Ok((instance, records)) => Ok((
                to_wit(instance),
                records
                    .into_iter()
                    .map(|r| r.map(super::storage::to_record))
                    .collect(),
            )),
            Err(StartWithError::Write(i, e)) => {
                Err(E::Write((i, super::storage::storage_error(e))))
            }
            Err(StartWithError::Approval(e)) => Err(E::Approval(to_wit_error(e))),
        }
    }

    async fn get(
        &mut self,
        id: String,
    ) -> Result<Option<approvals::Instance>, approvals::ApprovalError> {
        let (scope, services) = self.scope().ok_or_else(unavailable)?;
        let found = services.approvals.get(&id).await.map_err(to_wit_error)?;
        Ok(found
            .filter(|i| i.plugin == scope.plugin && scope.reaches(&i.org))
            .map(to_wit))
    }

    async fn list_for_subject(
        &mut self,
        subject_id: String,
    ) -> Result<Vec<approvals::Instance>, approvals::ApprovalError> {
        let (scope, services) = self.scope().ok_or_else(unavailable)?;
        let list = services
            .approvals
            .list_for_subject(&scope.plugin, &subject_id)
            .await
            .map_err(to_wit_error)?;
        Ok(list
            .into_iter()
            .filter(|i| scope.reaches(&i.org))
            .map(to_wit)
            .collect())
    }

    async fn withdraw(
        &mut self,
        id: String,
    ) -> Result<approvals::Instance, approvals::ApprovalError> {
        let (scope, services) = self.scope().ok_or_else(unavailable)?;
        let user = scope.actor.clone().ok_or_else(|| {
            approvals::ApprovalError::Forbidden("withdrawing needs a calling user".into())
        })?;
        let visible = services
            .approvals
            .get(&id)
            .await
            .map_err(to_wit_error)?
            .is_some_and(|i| i.plugin == scope.plugin && scope.reaches(&i.org));
        if !visible {
            return Err(approvals::ApprovalError::NotFound);
        }
        services
            .approvals
            .act(
                &id,
                &user,
                crate::services::approvals::Action::Withdraw { comment: None },
            )
            .await
            .map(to_wit)
            .map_err(to_wit_error)
    }
}
