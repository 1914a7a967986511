//! Delegation while away (出差代理): a user names a colleague of the same
//! unit and the days he is away; every step entered in those days hands
//! the colleague the task the user would have had, for every plugin's
//! flows. Tasks already waiting stay where they are (their holder can
//! reassign them), and the applicant never becomes his own approver
//! through a delegation.

use serde::Serialize;
use serde_json::json;
use sqlx::Row;

use super::{Approvals, Instance, Result, Tx};
use crate::audit::Entry;
use crate::core::calendar::{days_from_civil, now};
use crate::core::error::{ErrorCode, ServiceError};

/// The region's offset from UTC: days are the region's days.
const REGION_OFFSET_SECS: i64 = 8 * 3600;

/// The longest delegation taken, in days.
pub const MAX_DAYS: i64 = 180;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Delegation {
    pub delegate: String,
    pub delegate_name: String,
    /// `YYYY-MM-DD`, the first and last day away (region time).
    pub from: String,
    pub until: String,
    pub note: Option<String>,
    /// Whether today is one of those days.
    pub active: bool,
}

/// Seconds at the start of a region day `YYYY-MM-DD`.
fn day_start(field: &'static str, date: &str) -> Result<i64> {
    let bad = || ServiceError::rule(ErrorCode::DateInvalid, "a date as YYYY-MM-DD").on_field(field);
    let mut parts = date.splitn(3, '-');
    let (y, m, d) = (
        parts.next().and_then(|p| p.parse::<i64>().ok()),
        parts.next().and_then(|p| p.parse::<u32>().ok()),
        parts.next().and_then(|p| p.parse::<u32>().ok()),
    );
    let (Some(y), Some(m), Some(d)) = (y, m, d) else {
        return Err(bad());
    };
    if date.len() != 10 || !(1..=12).contains(&m) || d == 0 || d > 31 {
        return Err(bad());
    }
    let days = days_from_civil(y, m, d);
    // 2026-02-30 is no day: it would read as March 2nd.
    if crate::core::calendar::civil_from_days(days) != (y, m, d) {
        return Err(bad());
    }
    Ok(days * 86_400 - REGION_OFFSET_SECS)
}

impl Approvals {
    /// `user`'s delegation, if one is set and not over.
    pub async fn delegation_of(&self, user: &str) -> Result<Option<Delegation>> {
        let row = sqlx::query(
            "SELECT d.delegate_id, u.display_name, d.starts_on, d.ends_on, d.note, d.starts_at, d.ends_at
             FROM approval_delegations d JOIN users u ON u.id = d.delegate_id
             WHERE d.user_id = $1 AND d.ends_at > $2",
        )
        .bind(user)
        .bind(now())
        .fetch_optional(&self.db)
        .await?;
        Ok(row.map(|r| {
            let (starts, ends): (i64, i64) = (r.get(5), r.get(6));
            let t = now();
            Delegation {
                delegate: r.get(0),
                delegate_name: r.get(1),
                from: r.get(2),
                until: r.get(3),
                note: r.get(4),
                active: starts <= t && t < ends,
            }
        }))
    }

    /// Sets (or replaces) `user`'s delegation to `delegate` (an id or a
    /// username of an active colleague of the same unit) for the days
    /// `from` to `until`, both included.
    pub async fn set_delegation(
        &self,
        user: &str,
        delegate: &str,
        from: &str,
        until: &str,
        note: Option<String>,
    ) -> Result<Delegation> {
        let starts_at = day_start("from", from)?;
        let ends_at = day_start("until", until)? + 86_400;
        if ends_at <= starts_at {
            return Err(ServiceError::rule(
                ErrorCode::DelegationDaysOrder,
                "the last day comes on or after the first",
            )
            .on_field("until"));
        }
        if ends_at <= now() {
            return Err(ServiceError::rule(
                ErrorCode::DelegationDaysOver,
                "the days away are already over",
            )
            .on_field("until"));
        }
        if (ends_at - starts_at) / 86_400 > MAX_DAYS {
            return Err(ServiceError::rule(
                ErrorCode::DelegationTooLong,
                format!("a delegation lasts {MAX_DAYS} days at most"),
            )
            .on_field("until")
            .with_param("max", MAX_DAYS.to_string()));
        }
        let note = note
            .map(|n| n.trim().chars().take(200).collect::<String>())
            .filter(|n| !n.is_empty());
        let mut tx = self.audit.begin().await?;
        let delegate = self.active_user(&mut tx, delegate, "delegate").await?;
        if delegate == user {
            return Err(
                ServiceError::rule(ErrorCode::DelegationSelf, "name someone else")
                    .on_field("delegate"),
            );
        }
        let homes: Vec<(String, String)> =
            sqlx::query("SELECT id, org_id FROM users WHERE id = $1 OR id = $2")
                .bind(user)
                .bind(&delegate)
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
        let home = |id: &str| homes.iter().find(|(u, _)| u == id).map(|(_, o)| o.clone());
        if home(user).is_none() || home(user) != home(&delegate) {
            return Err(ServiceError::rule(
                ErrorCode::DelegationNotColleague,
                "the stand-in is a colleague of your own unit",
            )
            .on_field("delegate"));
        }
        sqlx::query("DELETE FROM approval_delegations WHERE user_id = $1")
            .bind(user)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO approval_delegations
                 (user_id, delegate_id, starts_on, ends_on, starts_at, ends_at, note, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(user)
        .bind(&delegate)
        .bind(from)
        .bind(until)
        .bind(starts_at)
        .bind(ends_at)
        .bind(&note)
        .bind(now())
        .execute(&mut *tx)
        .await?;
        tx.commit(
            &Entry::new(user, "approval.delegation.set", "ok")
                .target(&delegate)
                .detail(json!({ "from": from, "until": until })),
        )
        .await?;
        self.delegation_of(user)
            .await?
            .ok_or_else(|| ServiceError::Unavailable("the delegation".into()))
    }

    /// Ends `user`'s delegation; answers whether there was one.
    pub async fn clear_delegation(&self, user: &str) -> Result<bool> {
        let mut tx = self.audit.begin().await?;
        let n = sqlx::query("DELETE FROM approval_delegations WHERE user_id = $1")
            .bind(user)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit(&Entry::new(user, "approval.delegation.clear", "ok"))
            .await?;
        Ok(n > 0)
    }

    /// The step's approvers with those away replaced by their stand-ins:
    /// `(assignee, away)` where `away` is whom the task stands in for.
    /// A stand-in who is the applicant (unless the flow allows it) or is
    /// disabled leaves the task with the approver.
    pub(super) async fn stand_ins(
        &self,
        tx: &mut Tx<'_>,
        inst: &Instance,
        approvers: Vec<String>,
    ) -> Result<Vec<(String, Option<String>)>> {
        let mut out: Vec<(String, Option<String>)> = Vec::with_capacity(approvers.len());
        let t = now();
        for user in approvers {
            let stand_in: Option<String> = sqlx::query_scalar(
                "SELECT d.delegate_id FROM approval_delegations d JOIN users u ON u.id = d.delegate_id
                 WHERE d.user_id = $1 AND d.starts_at <= $2 AND d.ends_at > $2 AND u.disabled = 0",
            )
            .bind(&user)
            .bind(t)
            .fetch_optional(&mut **tx)
            .await?;
            let stand_in = match stand_in {
                Some(d) if d == inst.applicant && !self.self_approval_allowed(tx, inst).await? => {
                    None
                }
                other => other,
            };
            let entry = match stand_in {
                Some(d) => (d, Some(user)),
                None => (user, None),
            };
            // One task each: a stand-in who is an approver already, or
            // stands in for two, approves once.
            if !out.iter().any(|(a, _)| *a == entry.0) {
                out.push(entry);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_region_day_starts_at_its_midnight_in_utc_plus_8() {
        // 2026-12-02 00:00 in Ürümqi's official time is 2026-12-01 16:00 UTC.
        assert_eq!(day_start("from", "2026-12-02").unwrap(), 1_796_140_800);
        for bad in ["2026-02-30", "2026-13-01", "26-1-1", "2026-1-01", "soon"] {
            assert!(day_start("from", bad).is_err(), "{bad}");
        }
    }
}
