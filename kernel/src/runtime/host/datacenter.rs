//! The `datacenter` import (contract 1.2; ratios since 1.3): the kernel's data center as a
//! plugin sees it. The plugin's id and the orgs it may name come from the
//! store's scope, never from the plugin; sharing is checked by the
//! catalogue on every call.

use crate::core::error::ServiceError;
use crate::runtime::bindings::tianshan::plugin::datacenter as wit;
use crate::runtime::host::HostState;
use crate::services::datacenter::{self as dc, Reader};

/// Adds the `datacenter` import to the plugins' linker.
pub fn add_to_linker(linker: &mut wasmtime::component::Linker<HostState>) -> wasmtime::Result<()> {
    wit::add_to_linker::<HostState, wasmtime::component::HasSelf<HostState>>(linker, |s| s)
}

/// The one mapping of a service error onto the `datacenter` interface's.
fn to_wit_error(e: ServiceError) -> wit::DatacenterError {
    match e {
        ServiceError::NotFound(what) => wit::DatacenterError::NotFound(
            what.strip_prefix("indicator ").unwrap_or(&what).to_string(),
        ),
        ServiceError::OutsideReach(org) => wit::DatacenterError::ForbiddenOrg(org),
        ServiceError::Forbidden(m) => wit::DatacenterError::Forbidden(m),
        ServiceError::Invalid {
            field: Some(field),
            message,
        } => wit::DatacenterError::Invalid(format!("{field}: {message}")),
        ServiceError::Unavailable(m) => wit::DatacenterError::Unavailable(m),
        e => wit::DatacenterError::Invalid(e.to_string()),
    }
}

fn unavailable() -> wit::DatacenterError {
    wit::DatacenterError::Unavailable("the data center is not available in this kernel".into())
}

fn aggregation(a: wit::Aggregation) -> dc::Aggregation {
    match a {
        wit::Aggregation::Sum => dc::Aggregation::Sum,
        wit::Aggregation::Stock => dc::Aggregation::Stock,
        wit::Aggregation::Mean => dc::Aggregation::Mean,
    }
}

fn granularity(g: wit::Granularity) -> dc::Granularity {
    match g {
        wit::Granularity::Month => dc::Granularity::Month,
        wit::Granularity::Quarter => dc::Granularity::Quarter,
        wit::Granularity::Year => dc::Granularity::Year,
    }
}

fn sharing(s: wit::Sharing) -> dc::Sharing {
    match s {
        wit::Sharing::Private => dc::Sharing::Private,
        wit::Sharing::Shared => dc::Sharing::Shared,
        wit::Sharing::Open => dc::Sharing::Open,
    }
}

fn to_wit(i: dc::Indicator) -> wit::Indicator {
    wit::Indicator {
        name_zh: i.name.get("zh-CN").cloned().unwrap_or_default(),
        name_en: i.name.get("en").cloned().unwrap_or_default(),
        code: i.code,
        owner: i.owner,
        unit: i.unit,
        schema: i.schema.to_string(),
        aggregation: match i.aggregation {
            dc::Aggregation::Sum => wit::Aggregation::Sum,
            dc::Aggregation::Stock => wit::Aggregation::Stock,
            // 1.2's enum has no ratio; `ratio-of` tells a ratio apart.
            dc::Aggregation::Mean | dc::Aggregation::Ratio => wit::Aggregation::Mean,
        },
        granularity: match i.granularity {
            dc::Granularity::Month => wit::Granularity::Month,
            dc::Granularity::Quarter => wit::Granularity::Quarter,
            dc::Granularity::Year => wit::Granularity::Year,
        },
        sharing: match i.sharing {
            dc::Sharing::Private => wit::Sharing::Private,
            dc::Sharing::Shared => wit::Sharing::Shared,
            dc::Sharing::Open => wit::Sharing::Open,
        },
    }
}

impl wit::Host for HostState {
    async fn define_indicator(
        &mut self,
        definition: wit::Definition,
    ) -> Result<wit::Indicator, wit::DatacenterError> {
        let (scope, services) = self.scope().ok_or_else(unavailable)?;
        let def = dc::Definition {
            code: definition.code,
            name_zh: definition.name_zh,
            name_en: definition.name_en,
            unit: definition.unit,
            schema: definition.schema,
            aggregation: aggregation(definition.aggregation),
            granularity: granularity(definition.granularity),
            sharing: sharing(definition.sharing),
        };
        services
            .datacenter
            .define(&scope.plugin, &scope.actor_name, def)
            .await
            .map(to_wit)
            .map_err(to_wit_error)
    }

    async fn publish(
        &mut self,
        code: String,
        values: Vec<wit::Point>,
    ) -> Result<u32, wit::DatacenterError> {
        let (scope, services) = self.scope().ok_or_else(unavailable)?;
        // Unreadable and unknown look alike, so a private code does not leak.
        let indicator = services
            .datacenter
            .readable(&code, Reader::Plugin(&scope.plugin))
            .await
            .map_err(to_wit_error)?;
        if !indicator.publishable_by(&scope.plugin) {
            return Err(wit::DatacenterError::Forbidden(format!(
                "plugin {} may read {code} but not publish into it",
                scope.plugin
            )));
        }
        let mut points = Vec::with_capacity(values.len());
        for v in values {
            let org = v.org.unwrap_or_else(|| scope.acting_org.clone());
            if !scope.reaches(&org) {
                return Err(wit::DatacenterError::ForbiddenOrg(org));
            }
            points.push(dc::Point {
                org,
                period: v.period,
                value: v.value,
            });
        }
        services
            .datacenter
            .publish(
                &indicator,
                &scope.plugin,
                &scope.actor_name,
                &scope.acting_org,
                &points,
            )
            .await
            .map_err(to_wit_error)
    }

    async fn query(
        &mut self,
        query: wit::ValueQuery,
    ) -> Result<Vec<wit::Row>, wit::DatacenterError> {
        let (scope, services) = self.scope().ok_or_else(unavailable)?;
        let indicator = services
            .datacenter
            .readable(&query.code, Reader::Plugin(&scope.plugin))
            .await
            .map_err(to_wit_error)?;
        let org = query.org.unwrap_or_else(|| scope.acting_org.clone());
        if !scope.reaches(&org) {
            return Err(wit::DatacenterError::ForbiddenOrg(org));
        }
        let q = dc::ValueQuery {
            org,
            from: query.from,
            to: query.to,
            rollup: query.rollup,
            group: match query.group_by {
                wit::GroupBy::Period => dc::GroupBy::Period,
                wit::GroupBy::Org => dc::GroupBy::Org,
            },
            per: query.per.map(granularity),
        };
        let rows = services
            .datacenter
            .query(&indicator, &scope.orgs, &q)
            .await
            .map_err(to_wit_error)?;
        Ok(rows
            .into_iter()
            .map(|r| wit::Row {
                org: r.org,
                period: r.period,
                value: r.value,
                count: r.count,
            })
            .collect())
    }

    async fn define_ratio(
        &mut self,
        definition: wit::RatioDefinition,
    ) -> Result<wit::Indicator, wit::DatacenterError> {
        let (scope, services) = self.scope().ok_or_else(unavailable)?;
        let def = dc::RatioDefinition {
            code: definition.code,
            name_zh: definition.name_zh,
            name_en: definition.name_en,
            unit: definition.unit,
            schema: definition.schema,
            ratio: dc::Ratio {
                numerator: definition.numerator,
                denominator: definition.denominator,
                scale: definition.scale,
            },
            sharing: sharing(definition.sharing),
        };
        services
            .datacenter
            .define_ratio(&scope.plugin, &scope.actor_name, def)
            .await
            .map(to_wit)
            .map_err(to_wit_error)
    }

    async fn ratio_of(&mut self, code: String) -> Result<Option<wit::Ratio>, wit::DatacenterError> {
        let (scope, services) = self.scope().ok_or_else(unavailable)?;
        let indicator = services
            .datacenter
            .readable(&code, Reader::Plugin(&scope.plugin))
            .await
            .map_err(to_wit_error)?;
        Ok(indicator.ratio.map(|r| wit::Ratio {
            numerator: r.numerator,
            denominator: r.denominator,
            scale: r.scale,
        }))
    }

    async fn catalogue(&mut self) -> Result<Vec<wit::Indicator>, wit::DatacenterError> {
        let (scope, services) = self.scope().ok_or_else(unavailable)?;
        services
            .datacenter
            .catalogue(Reader::Plugin(&scope.plugin))
            .await
            .map(|list| list.into_iter().map(to_wit).collect())
            .map_err(to_wit_error)
    }
}
