//! Dashboards as data (docs/wall.md "Dashboards"): a dashboard is a stored
//! definition — a name, the org it belongs to, how fast its pages turn,
//! and panels, each one indicator shown one way — drawn by the LED wall at
//! `/wall/?dashboard=<id>` and edited in the portal. Business plugins offer
//! ready-made panels in their manifest (`[[panels]]`), so a prefecture's
//! local module can put its own figures on a wall.
//!
//! The kernel computes every panel's data in one answer with the data
//! center's own roll-ups, as it does for the wall's overview; a panel
//! whose indicator is gone (its plugin uninstalled) answers "no data"
//! instead of failing the dashboard.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::Row as _;

use super::overview::{MONTHS, TrendPoint};
use super::{DataCenter, Granularity, Indicator, Result, ValueQuery, valid_code};
use crate::audit;
use crate::core::error::ServiceError;
use crate::core::scope::OrgIndex;
use crate::core::text::LocalizedText;
use crate::db::now;

/// Panels one dashboard holds at most: four full pages of a 16:9 wall.
pub const MAX_PANELS: usize = 24;
/// Characters of a name or a panel's title, per language.
pub const MAX_TITLE_CHARS: usize = 60;
/// Seconds a page stays; 0 stops the turning.
pub const MIN_ROTATE_SECS: u32 = 5;
pub const MAX_ROTATE_SECS: u32 = 3600;

/// What a panel shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PanelKind {
    /// The plan's indicators against their targets (no indicator).
    Plan,
    /// One indicator's latest value at the org, with its target if any.
    Value,
    /// One indicator at the orgs one level below, best first.
    Ranking,
    /// One indicator at the org over time.
    Trend,
    /// One indicator at the orgs below, as the region's schematic map.
    Map,
    /// Approvals running in the org's subtree (no indicator).
    Approvals,
    /// The newest positions of one plugin's terminals in the org's subtree
    /// on the region's map, with their newest alerts (no indicator;
    /// `plugin` names whose).
    Positions,
}

/// How a panel draws its data; each kind allows some.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Chart {
    Cards,
    Number,
    Bar,
    Line,
    Table,
    Tiles,
    Points,
}

impl PanelKind {
    pub fn needs_indicator(self) -> bool {
        !matches!(
            self,
            PanelKind::Plan | PanelKind::Approvals | PanelKind::Positions
        )
    }

    /// The charts this kind can draw, its default first.
    pub fn charts(self) -> &'static [Chart] {
        match self {
            PanelKind::Plan => &[Chart::Cards],
            PanelKind::Value | PanelKind::Approvals => &[Chart::Number],
            PanelKind::Ranking => &[Chart::Bar, Chart::Table],
            PanelKind::Trend => &[Chart::Line, Chart::Bar, Chart::Table],
            PanelKind::Map => &[Chart::Tiles],
            PanelKind::Positions => &[Chart::Points],
        }
    }
}

/// One panel of a dashboard (and of a plugin's `[[panels]]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Panel {
    pub kind: PanelKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub indicator: Option<String>,
    /// The kind's default when none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart: Option<Chart>,
    /// Buckets of a trend, ranking or value; the indicator's granularity
    /// when none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per: Option<Granularity>,
    /// The indicator's name when none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<LocalizedText>,
    /// Whose terminals a positions panel shows (a plugin id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
    /// Columns of the wall's grid the panel takes, 1 (none) to
    /// [`MAX_SPAN`]: a map or a ranking may want room.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span: Option<u8>,
}

/// The widest a panel is: a 16:9 wall's grid has three columns.
pub const MAX_SPAN: u8 = 3;

/// What is wrong with a panel, as (field under the panel, message).
pub type PanelFault = (&'static str, String);

impl Panel {
    /// The rules that need no database: an indicator where the kind needs
    /// one (and none where it does not), a chart the kind can draw, a
    /// title of bounded length.
    pub fn check(&self) -> std::result::Result<(), PanelFault> {
        match (&self.indicator, self.kind.needs_indicator()) {
            (None, true) => {
                return Err((
                    "indicator",
                    "this kind of panel shows an indicator: name one".into(),
                ));
            }
            (Some(_), false) => {
                return Err(("indicator", "this kind of panel shows no indicator".into()));
            }
            (Some(code), true) if !valid_code(code) => {
                return Err(("indicator", format!("{code:?} is not an indicator code")));
            }
            _ => {}
        }
        match (&self.plugin, self.kind == PanelKind::Positions) {
            (None, true) => {
                return Err((
                    "plugin",
                    "a positions panel shows one plugin's terminals: name it".into(),
                ));
            }
            (Some(_), false) => {
                return Err(("plugin", "only a positions panel names a plugin".into()));
            }
            (Some(id), true) if !crate::core::ids::is_valid_id(id) => {
                return Err(("plugin", format!("{id:?} is not a plugin id")));
            }
            _ => {}
        }
        if let Some(chart) = self.chart
            && !self.kind.charts().contains(&chart)
        {
            return Err((
                "chart",
                format!("a {:?} panel draws {:?}", self.kind, self.kind.charts()),
            ));
        }
        if let Some(title) = &self.title {
            check_text(title).map_err(|m| ("title", m))?;
        }
        if let Some(span) = self.span
            && !(1..=MAX_SPAN).contains(&span)
        {
            return Err(("span", format!("a panel spans 1 to {MAX_SPAN} columns")));
        }
        Ok(())
    }
}

fn check_text(text: &LocalizedText) -> std::result::Result<(), String> {
    if text.zh_cn.trim().is_empty() {
        return Err("the Chinese text must not be empty".into());
    }
    if text.zh_cn.chars().count() > MAX_TITLE_CHARS || text.en.chars().count() > MAX_TITLE_CHARS {
        return Err(format!("at most {MAX_TITLE_CHARS} characters"));
    }
    Ok(())
}

/// What an editor sends.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    pub name: LocalizedText,
    /// Seconds per page; 30 when none, 0 to stop.
    #[serde(default)]
    pub rotate: Option<u32>,
    pub panels: Vec<Panel>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Dashboard {
    pub id: String,
    pub org: String,
    pub name: LocalizedText,
    pub rotate: u32,
    pub panels: Vec<Panel>,
    pub updated_at: i64,
    pub updated_by: String,
}

const COLUMNS: &str = "id, org_id, name_zh, name_en, rotate_secs, panels, updated_at, updated_by";

fn row_to_dashboard(r: &sqlx::any::AnyRow) -> Dashboard {
    let panels: String = r.get(5);
    Dashboard {
        id: r.get(0),
        org: r.get(1),
        name: LocalizedText {
            zh_cn: r.get(2),
            en: r.get(3),
        },
        rotate: r.get::<i64, _>(4) as u32,
        panels: serde_json::from_str(&panels).unwrap_or_default(),
        updated_at: r.get(6),
        updated_by: r.get(7),
    }
}

impl DataCenter {
    /// Checks a definition in full — every panel's rules and its indicator
    /// there — and fills what was left to defaults: the rotation, an empty
    /// English name from the Chinese one.
    async fn checked(&self, mut def: Definition) -> Result<Definition> {
        if def.name.en.trim().is_empty() {
            def.name.en = def.name.zh_cn.clone();
        }
        check_text(&def.name).map_err(|m| ServiceError::invalid("name", m))?;
        let rotate = def.rotate.unwrap_or(30);
        if rotate != 0 && !(MIN_ROTATE_SECS..=MAX_ROTATE_SECS).contains(&rotate) {
            return Err(ServiceError::invalid(
                "rotate",
                format!("0 (no turning) or {MIN_ROTATE_SECS} to {MAX_ROTATE_SECS} seconds"),
            ));
        }
        def.rotate = Some(rotate);
        if def.panels.is_empty() || def.panels.len() > MAX_PANELS {
            return Err(ServiceError::invalid(
                "panels",
                format!("a dashboard has 1 to {MAX_PANELS} panels"),
            ));
        }
        for (i, panel) in def.panels.iter().enumerate() {
            panel
                .check()
                .map_err(|(field, m)| ServiceError::invalid(format!("panels[{i}].{field}"), m))?;
            let Some(code) = &panel.indicator else {
                continue;
            };
            let ind = self.get(code).await?.ok_or_else(|| {
                ServiceError::invalid(
                    format!("panels[{i}].indicator"),
                    format!("no indicator {code} in the catalogue"),
                )
            })?;
            if let Some(per) = panel.per
                && per < ind.granularity
            {
                return Err(ServiceError::invalid(
                    format!("panels[{i}].per"),
                    format!(
                        "{code} has {} values: show them per {} or coarser",
                        ind.granularity.as_str(),
                        ind.granularity.as_str()
                    ),
                ));
            }
        }
        Ok(def)
    }

    pub async fn dashboards(&self) -> Result<Vec<Dashboard>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM dashboards ORDER BY updated_at DESC, id"
        ))
        .fetch_all(&self.db)
        .await?;
        Ok(rows.iter().map(row_to_dashboard).collect())
    }

    pub async fn dashboard(&self, id: &str) -> Result<Option<Dashboard>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM dashboards WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.db)
            .await?;
        Ok(row.as_ref().map(row_to_dashboard))
    }

    /// Stores a new dashboard of `org` (checked against the actor's reach
    /// by the caller), audited in the same transaction.
    pub async fn create_dashboard(
        &self,
        actor: &str,
        org: &str,
        def: Definition,
    ) -> Result<Dashboard> {
        let def = self.checked(def).await?;
        let id = format!("dash-{}", crate::core::ids::new_record_id().to_lowercase());
        let panels =
            serde_json::to_string(&def.panels).map_err(|e| ServiceError::refused(e.to_string()))?;
        let mut tx = self.audit.begin().await?;
        let at = now();
        sqlx::query(
            "INSERT INTO dashboards (id, org_id, name_zh, name_en, rotate_secs, panels, created_at, updated_at, updated_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8)",
        )
        .bind(&id)
        .bind(org)
        .bind(&def.name.zh_cn)
        .bind(&def.name.en)
        .bind(i64::from(def.rotate.unwrap_or(30)))
        .bind(&panels)
        .bind(at)
        .bind(actor)
        .execute(&mut *tx)
        .await?;
        let entry = audit::Entry::new(actor, "dashboard.create", "ok")
            .org(org.to_string())
            .target(id.clone())
            .detail(json!({ "panels": def.panels.len() }));
        tx.commit(&entry).await?;
        self.dashboard(&id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("dashboard {id}")))
    }

    /// Replaces a dashboard's definition (and moves it to `org`).
    pub async fn replace_dashboard(
        &self,
        id: &str,
        actor: &str,
        org: &str,
        def: Definition,
    ) -> Result<Dashboard> {
        let def = self.checked(def).await?;
        let panels =
            serde_json::to_string(&def.panels).map_err(|e| ServiceError::refused(e.to_string()))?;
        let mut tx = self.audit.begin().await?;
        let n = sqlx::query(
            "UPDATE dashboards SET org_id = $2, name_zh = $3, name_en = $4, rotate_secs = $5,
                 panels = $6, updated_at = $7, updated_by = $8 WHERE id = $1",
        )
        .bind(id)
        .bind(org)
        .bind(&def.name.zh_cn)
        .bind(&def.name.en)
        .bind(i64::from(def.rotate.unwrap_or(30)))
        .bind(&panels)
        .bind(now())
        .bind(actor)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(ServiceError::NotFound(format!("dashboard {id}")));
        }
        let entry = audit::Entry::new(actor, "dashboard.update", "ok")
            .org(org.to_string())
            .target(id.to_string())
            .detail(json!({ "panels": def.panels.len() }));
        tx.commit(&entry).await?;
        self.dashboard(id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("dashboard {id}")))
    }

    pub async fn delete_dashboard(&self, id: &str, actor: &str, org: &str) -> Result<()> {
        let mut tx = self.audit.begin().await?;
        let n = sqlx::query("DELETE FROM dashboards WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(ServiceError::NotFound(format!("dashboard {id}")));
        }
        let entry = audit::Entry::new(actor, "dashboard.delete", "ok")
            .org(org.to_string())
            .target(id.to_string());
        tx.commit(&entry).await?;
        Ok(())
    }

    /// What one panel shows at `org` (already checked against the
    /// viewer's reach), up to the year `period` when given. Approvals are
    /// the caller's to count (they need the approvals service): `null`.
    pub async fn panel_data(
        &self,
        orgs: &OrgIndex,
        org: &str,
        period: Option<&str>,
        panel: &Panel,
    ) -> Result<Value> {
        if panel.kind == PanelKind::Plan {
            return Ok(json!({ "progress": self.plan(orgs, org, period).await? }));
        }
        let Some(code) = &panel.indicator else {
            return Ok(Value::Null);
        };
        let Some(ind) = self.get(code).await? else {
            return Ok(json!({ "missing": code }));
        };
        let per = panel.per.unwrap_or(ind.granularity).max(ind.granularity);
        let to = period.map(|y| match per {
            Granularity::Year => y.to_string(),
            Granularity::Quarter => format!("{y}-Q4"),
            Granularity::Month => format!("{y}-12"),
        });
        let about = indicator_facts(&ind, per);
        match panel.kind {
            PanelKind::Value => {
                let until = period.and_then(super::Period::parse);
                if per == Granularity::Year {
                    let progress = self.progress_of(ind, orgs, org, until).await?;
                    return Ok(json!({ "indicator": about, "progress": progress }));
                }
                let rows = self
                    .query(
                        &ind,
                        orgs,
                        &ValueQuery {
                            org: org.to_string(),
                            to,
                            rollup: true,
                            per: Some(per),
                            ..ValueQuery::default()
                        },
                    )
                    .await?;
                let last = rows.last();
                Ok(json!({
                    "indicator": about,
                    "progress": {
                        "code": ind.code, "name": ind.name, "unit": ind.unit,
                        "latest": last.map(|r| r.value),
                        "latest_period": last.map(|r| r.period.clone()),
                        "target": null, "baseline": null, "change_pct": null, "met": null,
                    },
                }))
            }
            PanelKind::Ranking | PanelKind::Map | PanelKind::Trend => {
                let (ranking, mut own) = self.ranking_and_series(&ind, orgs, org, to, per).await?;
                if panel.kind == PanelKind::Trend {
                    let keep = if per == Granularity::Year { 10 } else { MONTHS };
                    own.drain(..own.len().saturating_sub(keep));
                    let points: Vec<TrendPoint> = own.into_iter().map(TrendPoint::from).collect();
                    Ok(json!({ "indicator": about, "points": points }))
                } else {
                    Ok(json!({ "indicator": about, "ranking": ranking }))
                }
            }
            PanelKind::Plan | PanelKind::Approvals | PanelKind::Positions => Ok(Value::Null),
        }
    }
}

fn indicator_facts(ind: &Indicator, per: Granularity) -> Value {
    json!({
        "code": ind.code,
        "name": ind.name,
        "unit": ind.unit,
        "owner": ind.owner,
        "per": per,
        "target": ind.target,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn panel(kind: PanelKind, indicator: Option<&str>, chart: Option<Chart>) -> Panel {
        Panel {
            plugin: None,
            span: None,
            kind,
            indicator: indicator.map(str::to_string),
            chart,
            per: None,
            title: None,
        }
    }

    #[test]
    fn a_panel_names_an_indicator_exactly_where_its_kind_shows_one() {
        assert!(
            panel(PanelKind::Trend, Some("plan.nev_count"), None)
                .check()
                .is_ok()
        );
        assert!(panel(PanelKind::Plan, None, None).check().is_ok());
        assert_eq!(
            panel(PanelKind::Trend, None, None).check().unwrap_err().0,
            "indicator"
        );
        assert_eq!(
            panel(PanelKind::Approvals, Some("plan.nev_count"), None)
                .check()
                .unwrap_err()
                .0,
            "indicator"
        );
        assert_eq!(
            panel(PanelKind::Value, Some("NOT A CODE"), None)
                .check()
                .unwrap_err()
                .0,
            "indicator"
        );
    }

    #[test]
    fn a_panel_spans_one_to_three_columns() {
        for (span, ok) in [(1, true), (3, true), (0, false), (4, false)] {
            let mut p = panel(PanelKind::Map, Some("plan.nev_count"), None);
            p.span = Some(span);
            assert_eq!(p.check().is_ok(), ok, "{span}");
            if !ok {
                assert_eq!(p.check().unwrap_err().0, "span");
            }
        }
    }

    #[test]
    fn a_panel_draws_only_what_its_kind_can() {
        assert!(
            panel(PanelKind::Ranking, Some("a.b"), Some(Chart::Table))
                .check()
                .is_ok()
        );
        assert_eq!(
            panel(PanelKind::Ranking, Some("a.b"), Some(Chart::Line))
                .check()
                .unwrap_err()
                .0,
            "chart"
        );
        let mut titled = panel(PanelKind::Plan, None, None);
        titled.title = Some(LocalizedText {
            zh_cn: "长".repeat(MAX_TITLE_CHARS + 1),
            en: String::new(),
        });
        assert_eq!(titled.check().unwrap_err().0, "title");
    }
}
