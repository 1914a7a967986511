//! 审批人去重: with the flow's `auto_approve_repeat` on, a step entered
//! right after its approver approved the step before is approved for him
//! at once — the same person need not sign twice in a row (the checker
//! who is also the clerk). The platform administrator turns it on per
//! flow; it is off by default, so existing flows behave as before.

use serde_json::json;

use super::{Approvals, FlowFlag, Instance, Result, Tx};

/// The comment on a task approved for its holder.
const AUTO_COMMENT: &str = "自动通过：与上一步审批人相同 (approved already at the step before)";

impl Approvals {
    async fn auto_approve_on(&self, tx: &mut Tx<'_>, inst: &Instance) -> Result<bool> {
        let on: Option<i64> = sqlx::query_scalar(
            "SELECT auto_approve_repeat FROM approval_flows WHERE plugin_id = $1 AND name = $2",
        )
        .bind(&inst.plugin)
        .bind(&inst.flow)
        .fetch_optional(&mut **tx)
        .await?;
        Ok(on.unwrap_or(0) != 0)
    }

    /// After `user` completed a step and the next was entered: while the
    /// flow auto-approves repeats and `user` has a task on the new step,
    /// approves it for him and moves on. Answers whether that finished the
    /// last step (the caller then finishes the instance).
    pub(super) async fn approve_repeats(
        &self,
        tx: &mut Tx<'_>,
        inst: &mut Instance,
        user: &str,
    ) -> Result<bool> {
        if !self.auto_approve_on(tx, inst).await? {
            return Ok(false);
        }
        loop {
            let step = inst.current_step;
            let task: Option<String> = sqlx::query_scalar(
                "SELECT id FROM approval_tasks WHERE instance_id = $1 AND assignee = $2
                   AND status = 'pending' AND step = $3 AND round = $4 ORDER BY id LIMIT 1",
            )
            .bind(&inst.id)
            .bind(user)
            .bind(step)
            .bind(inst.round)
            .fetch_optional(&mut **tx)
            .await?;
            let Some(task) = task else {
                return Ok(false);
            };
            self.close_task(tx, &task, "approved", Some(AUTO_COMMENT))
                .await?;
            let id = inst.id.clone();
            self.timeline(
                tx,
                &id,
                "system",
                "auto_approved",
                step,
                None,
                json!({ "user": user }),
            )
            .await?;
            if !self.step_done(tx, inst, step).await? {
                return Ok(false);
            }
            if (step as usize) >= inst.steps.len() {
                return Ok(true);
            }
            self.enter_step(tx, inst, step + 1).await?;
        }
    }

    /// Turns 审批人去重 on or off for `plugin`'s flow `name`; the caller has
    /// checked that the platform administrator asks.
    pub async fn set_auto_approve_repeat(
        &self,
        plugin: &str,
        name: &str,
        on: bool,
        actor: &str,
    ) -> Result<()> {
        self.set_flow_flag(plugin, name, FlowFlag::AutoApproveRepeat, on, actor)
            .await
    }
}
