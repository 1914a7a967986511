//! What the LED wall (`/wall/`, docs/wall.md) shows of one org, in one
//! answer: the plan's progress there, each plan indicator's values for the
//! orgs one level below (rankings and the map) and trend series by year and
//! by month — and what tells its live stream that values changed.
//!
//! Computed here, not in the browser, so a wall gets the same roll-ups as
//! every other reader and one call stays bounded by the data center's own
//! limits. The caller has checked the org against the viewer's reach.

use std::sync::Arc;

use serde::Serialize;
use tokio::sync::{broadcast, watch};

use super::{DataCenter, Granularity, GroupBy, Progress, Result, Row, ValueQuery};
use crate::core::scope::OrgIndex;
use crate::core::streams::{StreamSlot, StreamSlots};

/// Monthly series one overview carries at most: a wall has room for a few.
pub const MAX_MONTHLY_TRENDS: usize = 6;
/// Queries one overview runs at once.
const PARALLEL_READS: usize = 3;
/// Months each monthly series keeps, newest last.
pub const MONTHS: usize = 24;
/// Changes a slow stream may fall behind before it is told to re-read
/// everything (`broadcast` drops the oldest).
const BACKLOG: usize = 256;

/// Values of `code` were written for `orgs` (on this node).
#[derive(Debug, Clone)]
pub struct Change {
    pub code: String,
    pub orgs: Vec<String>,
}

/// The wall streams' wake-ups, and their slots per user on this node
/// with the node's shutdown (`core/streams.rs`).
pub struct Live {
    changes: broadcast::Sender<Arc<Change>>,
    slots: Arc<StreamSlots>,
}

/// One open wall stream of one user; frees itself when dropped.
pub type Slot = StreamSlot;

impl Live {
    pub fn new() -> Self {
        Live {
            changes: broadcast::channel(BACKLOG).0,
            slots: Arc::new(StreamSlots::default()),
        }
    }

    pub(super) fn changed(&self, code: &str, orgs: Vec<String>) {
        // No receiver is no wall open: nothing to tell.
        let _ = self.changes.send(Arc::new(Change {
            code: code.to_string(),
            orgs,
        }));
    }
}

impl Default for Live {
    fn default() -> Self {
        Self::new()
    }
}

/// One org's value of an indicator, for a ranking.
#[derive(Debug, Clone, Serialize)]
pub struct Ranked {
    pub org: String,
    pub value: f64,
}

/// A plan indicator at the orgs one level below, best first by value (the
/// wall decides what "best" means per target kind).
#[derive(Debug, Clone, Serialize)]
pub struct Ranking {
    pub code: String,
    /// The latest year any org below has a value for, up to the asked one.
    pub period: Option<String>,
    pub rows: Vec<Ranked>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TrendPoint {
    pub period: String,
    pub value: f64,
}

impl From<Row> for TrendPoint {
    fn from(r: Row) -> Self {
        TrendPoint {
            period: r.period,
            value: r.value,
        }
    }
}

/// One indicator at the org over time.
#[derive(Debug, Clone, Serialize)]
pub struct Trend {
    pub code: String,
    pub name: std::collections::BTreeMap<String, String>,
    pub unit: String,
    pub per: Granularity,
    pub points: Vec<TrendPoint>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    pub org: String,
    pub progress: Vec<Progress>,
    pub rankings: Vec<Ranking>,
    /// Every plan indicator per year, then up to [`MAX_MONTHLY_TRENDS`]
    /// monthly indicators of the catalogue that have values here.
    pub trends: Vec<Trend>,
}

impl DataCenter {
    /// Values written on this node from now on.
    pub fn changes(&self) -> broadcast::Receiver<Arc<Change>> {
        self.live.changes.subscribe()
    }

    /// A stream slot for `user`; none when they hold `max` already or the
    /// node is shutting down.
    pub fn open_stream(&self, user: &str, max: u32) -> Option<Slot> {
        self.live.slots.open(user, max)
    }

    /// The node is shutting down: every wall stream ends.
    pub fn close_streams(&self) {
        self.live.slots.close();
    }

    pub fn closing(&self) -> watch::Receiver<bool> {
        self.live.slots.closing()
    }

    /// The wall's one read of `org` (already checked against the caller's
    /// reach) up to `period` (a year; the latest when none).
    pub async fn overview(
        &self,
        orgs: &OrgIndex,
        org: &str,
        period: Option<&str>,
    ) -> Result<Overview> {
        // One query per plan indicator gives its ranking, its trend and
        // (from the trend: the same roll-up at the org) its progress. The
        // queries run a few at a time: on SQLite each hands its rows over
        // from its own connection's thread, so they overlap on two cores,
        // while one wall read takes at most PARALLEL_READS connections.
        use futures_util::{StreamExt as _, TryStreamExt as _};
        let until = super::plan_period(period)?;
        let catalogue = self.list().await?;
        let plan: Vec<&super::Indicator> =
            catalogue.iter().filter(|i| i.target.is_some()).collect();
        // Collected first: a stream over a closure is not `Send` for axum.
        let read: Vec<_> = plan
            .iter()
            .copied()
            .map(|ind| {
                self.ranking_and_series(ind, orgs, org, until.map(|p| p.label()), Granularity::Year)
            })
            .collect();
        let answers: Vec<(Ranking, Vec<Row>)> = futures_util::stream::iter(read)
            .buffered(PARALLEL_READS)
            .try_collect()
            .await?;
        let mut progress = Vec::new();
        let mut rankings = Vec::new();
        let mut trends = Vec::new();
        for (ind, (ranking, own)) in plan.into_iter().zip(answers) {
            progress.push(super::progress_from(ind.clone(), &own));
            rankings.push(ranking);
            trends.push(Trend {
                code: ind.code.clone(),
                name: ind.name.clone(),
                unit: ind.unit.clone(),
                per: Granularity::Year,
                points: own.into_iter().map(TrendPoint::from).collect(),
            });
        }
        // The first MAX_MONTHLY_TRENDS monthly indicators with values here,
        // and of each only the last MONTHS months: read from there, not
        // every month the catalogue holds; a few at a time until enough.
        let to = period.map(|y| format!("{y}-12"));
        let mut monthly = Vec::new();
        for ind in catalogue
            .iter()
            .filter(|i| i.target.is_none() && i.granularity == Granularity::Month)
        {
            if let Some(latest) = self.latest_stored(ind, to.as_deref()).await? {
                let from = super::Period::of_month(latest.months().1 - (MONTHS as i32 - 1));
                monthly.push((ind, from.label()));
            }
        }
        let wanted = trends.len() + MAX_MONTHLY_TRENDS;
        for batch in monthly.chunks(PARALLEL_READS) {
            if trends.len() >= wanted {
                break;
            }
            let read: Vec<_> = batch
                .iter()
                .map(|(ind, from)| {
                    let q = ValueQuery {
                        org: org.to_string(),
                        from: Some(from.clone()),
                        to: to.clone(),
                        rollup: true,
                        per: Some(Granularity::Month),
                        ..ValueQuery::default()
                    };
                    async move { self.query(ind, orgs, &q).await }
                })
                .collect();
            let series = futures_util::future::try_join_all(read).await?;
            for ((ind, _), mut rows) in batch.iter().zip(series) {
                if rows.is_empty() || trends.len() >= wanted {
                    continue;
                }
                rows.drain(..rows.len().saturating_sub(MONTHS));
                trends.push(Trend {
                    code: ind.code.clone(),
                    name: ind.name.clone(),
                    unit: ind.unit.clone(),
                    per: Granularity::Month,
                    points: rows.into_iter().map(TrendPoint::from).collect(),
                });
            }
        }
        Ok(Overview {
            org: org.to_string(),
            progress,
            rankings,
            trends,
        })
    }

    /// The latest period any org has a stored value of `ind` in (of its
    /// numerator, for a ratio), up to `to`.
    async fn latest_stored(
        &self,
        ind: &super::Indicator,
        to: Option<&str>,
    ) -> Result<Option<super::Period>> {
        let code = ind.ratio.as_ref().map_or(&ind.code, |r| &r.numerator);
        let latest: Option<String> = sqlx::query_scalar(
            "SELECT MAX(period) FROM dc_values WHERE code = $1 AND period <= $2",
        )
        .bind(code)
        .bind(to.unwrap_or("9999"))
        .fetch_one(&self.db)
        .await?;
        Ok(latest.as_deref().and_then(super::Period::parse))
    }

    /// `ind` per `per` at the orgs one level below `org`, best first at the
    /// latest period any of them has, and at `org` itself over time (oldest
    /// first) — one query for both, rolled up, up to `to`.
    pub async fn ranking_and_series(
        &self,
        ind: &super::Indicator,
        orgs: &OrgIndex,
        org: &str,
        to: Option<String>,
        per: Granularity,
    ) -> Result<(Ranking, Vec<Row>)> {
        let rows = self
            .query(
                ind,
                orgs,
                &ValueQuery {
                    org: org.to_string(),
                    to,
                    rollup: true,
                    group: GroupBy::Org,
                    per: Some(per),
                    ..ValueQuery::default()
                },
            )
            .await?;
        let (own, below): (Vec<_>, Vec<_>) = rows.into_iter().partition(|r| r.org == org);
        // Labels of one granularity sort as text.
        let latest = below.iter().map(|r| r.period.clone()).max();
        let mut ranked: Vec<Ranked> = below
            .into_iter()
            .filter(|r| Some(&r.period) == latest.as_ref())
            .map(|r| Ranked {
                org: r.org,
                value: r.value,
            })
            .collect();
        ranked.sort_by(|a, b| b.value.total_cmp(&a.value).then(a.org.cmp(&b.org)));
        Ok((
            Ranking {
                code: ind.code.clone(),
                period: latest,
                rows: ranked,
            },
            own,
        ))
    }
}
