//! The `telemetry` import (contract 1.3): a plugin's devices, the readings
//! it records itself, roll-ups, latest values, track points and alert
//! rules, in the scope the kernel decided for the call.

use crate::core::error::ServiceError;
use crate::runtime::bindings::tianshan::plugin::telemetry as wit;
use crate::runtime::host::HostState;
use crate::services::telemetry as tm;

/// Adds the `telemetry` import to the plugins' linker.
pub fn add_to_linker(linker: &mut wasmtime::component::Linker<HostState>) -> wasmtime::Result<()> {
    wit::add_to_linker::<HostState, wasmtime::component::HasSelf<HostState>>(linker, |s| s)
}

fn unavailable() -> wit::TelemetryError {
    wit::TelemetryError::Unavailable("telemetry is not available in this kernel".into())
}

/// The one mapping of a service error onto the `telemetry` interface's.
fn to_wit_error(e: ServiceError) -> wit::TelemetryError {
    match e {
        ServiceError::NotFound(_) => wit::TelemetryError::NotFound,
        ServiceError::OutsideReach(org) => wit::TelemetryError::ForbiddenOrg(org),
        ServiceError::Conflict(m) => wit::TelemetryError::Conflict(m),
        ServiceError::Invalid {
            field: Some(field),
            message,
        } => wit::TelemetryError::Invalid(format!("{field}: {message}")),
        ServiceError::Unavailable(m) => wit::TelemetryError::Unavailable(m),
        e => wit::TelemetryError::Invalid(e.to_string()),
    }
}

fn kind_in(k: wit::DeviceKind) -> tm::DeviceKind {
    match k {
        wit::DeviceKind::Meter => tm::DeviceKind::Meter,
        wit::DeviceKind::VehicleTerminal => tm::DeviceKind::VehicleTerminal,
        wit::DeviceKind::ChargingPile => tm::DeviceKind::ChargingPile,
        wit::DeviceKind::Sensor => tm::DeviceKind::Sensor,
    }
}

fn kind_out(k: tm::DeviceKind) -> wit::DeviceKind {
    match k {
        tm::DeviceKind::Meter => wit::DeviceKind::Meter,
        tm::DeviceKind::VehicleTerminal => wit::DeviceKind::VehicleTerminal,
        tm::DeviceKind::ChargingPile => wit::DeviceKind::ChargingPile,
        tm::DeviceKind::Sensor => wit::DeviceKind::Sensor,
    }
}

fn protocol_in(p: wit::Protocol) -> tm::Protocol {
    match p {
        wit::Protocol::Mqtt => tm::Protocol::Mqtt,
        wit::Protocol::Jt808 => tm::Protocol::Jt808,
        wit::Protocol::Http => tm::Protocol::Http,
        wit::Protocol::Manual => tm::Protocol::Manual,
        wit::Protocol::Virtual => tm::Protocol::Virtual,
    }
}

fn protocol_out(p: tm::Protocol) -> wit::Protocol {
    match p {
        tm::Protocol::Mqtt => wit::Protocol::Mqtt,
        tm::Protocol::Jt808 => wit::Protocol::Jt808,
        tm::Protocol::Http => wit::Protocol::Http,
        tm::Protocol::Manual => wit::Protocol::Manual,
        tm::Protocol::Virtual => wit::Protocol::Virtual,
    }
}

fn channel_in(c: wit::Channel) -> tm::Channel {
    tm::Channel {
        name: c.name,
        unit: c.unit,
        kind: match c.kind {
            wit::ChannelKind::Cumulative => tm::ChannelKind::Cumulative,
            wit::ChannelKind::Instantaneous => tm::ChannelKind::Instantaneous,
        },
        min: c.min,
        max: c.max,
        max_step: c.max_step,
    }
}

fn channel_out(c: tm::Channel) -> wit::Channel {
    wit::Channel {
        name: c.name,
        unit: c.unit,
        kind: match c.kind {
            tm::ChannelKind::Cumulative => wit::ChannelKind::Cumulative,
            tm::ChannelKind::Instantaneous => wit::ChannelKind::Instantaneous,
        },
        min: c.min,
        max: c.max,
        max_step: c.max_step,
    }
}

fn quality_in(q: wit::Quality) -> tm::Quality {
    match q {
        wit::Quality::Good => tm::Quality::Good,
        wit::Quality::Manual => tm::Quality::Manual,
        wit::Quality::Bill => tm::Quality::Bill,
        wit::Quality::Reset => tm::Quality::Reset,
        wit::Quality::Jump => tm::Quality::Jump,
        wit::Quality::Late => tm::Quality::Late,
    }
}

fn quality_out(q: tm::Quality) -> wit::Quality {
    match q {
        tm::Quality::Good => wit::Quality::Good,
        tm::Quality::Manual => wit::Quality::Manual,
        tm::Quality::Bill => wit::Quality::Bill,
        tm::Quality::Reset => wit::Quality::Reset,
        tm::Quality::Jump => wit::Quality::Jump,
        tm::Quality::Late => wit::Quality::Late,
    }
}

fn device_out(d: tm::Device) -> wit::DeviceInfo {
    wit::DeviceInfo {
        id: d.id,
        kind: kind_out(d.kind),
        org: d.org,
        protocol: protocol_out(d.protocol),
        external_id: d.external_id.unwrap_or_default(),
        name: d.name,
        channels: d.channels.into_iter().map(channel_out).collect(),
        formula: d
            .formula
            .into_iter()
            .map(|t| wit::Term {
                device: t.device,
                channel: t.channel,
                coefficient: t.coefficient,
            })
            .collect(),
        last_seen: d.last_seen,
    }
}

fn condition_in(c: wit::Condition) -> tm::Condition {
    match c {
        wit::Condition::Above((channel, limit)) => tm::Condition::Above { channel, limit },
        wit::Condition::Below((channel, limit)) => tm::Condition::Below { channel, limit },
        wit::Condition::RateAbove((channel, per_hour)) => {
            tm::Condition::RateAbove { channel, per_hour }
        }
        wit::Condition::OutsideCircle((latitude, longitude, radius_m)) => {
            tm::Condition::OutsideCircle {
                latitude,
                longitude,
                radius_m,
            }
        }
        wit::Condition::OutsidePolygon(vertices) => tm::Condition::OutsidePolygon { vertices },
        wit::Condition::Offline(minutes) => tm::Condition::Offline { minutes },
        wit::Condition::OutsideHours((from_hour, to_hour)) => {
            tm::Condition::OutsideHours { from_hour, to_hour }
        }
    }
}

impl wit::Host for HostState {
    async fn register(
        &mut self,
        device: wit::Device,
    ) -> Result<wit::DeviceInfo, wit::TelemetryError> {
        let (scope, services) = self.scope().ok_or_else(unavailable)?;
        let input = tm::DeviceInput {
            id: device.id,
            kind: kind_in(device.kind),
            org: device.org,
            protocol: protocol_in(device.protocol),
            external_id: device.external_id,
            name: device.name,
            channels: device.channels.into_iter().map(channel_in).collect(),
            formula: device
                .formula
                .into_iter()
                .map(|t| tm::Term {
                    device: t.device,
                    channel: t.channel,
                    coefficient: t.coefficient,
                })
                .collect(),
        };
        services
            .telemetry
            .register(&scope, input)
            .await
            .map(device_out)
            .map_err(to_wit_error)
    }

    async fn remove(&mut self, id: String) -> Result<bool, wit::TelemetryError> {
        let (scope, services) = self.scope().ok_or_else(unavailable)?;
        services
            .telemetry
            .remove(&scope, &id)
            .await
            .map_err(to_wit_error)
    }

    async fn get(&mut self, id: String) -> Result<Option<wit::DeviceInfo>, wit::TelemetryError> {
        let (scope, services) = self.scope().ok_or_else(unavailable)?;
        match services.telemetry.visible(&scope, &id).await {
            Ok(d) => Ok(Some(device_out(d))),
            Err(ServiceError::NotFound(_)) => Ok(None),
            Err(e) => Err(to_wit_error(e)),
        }
    }

    async fn devices(
        &mut self,
        within_org: Option<String>,
    ) -> Result<Vec<wit::DeviceInfo>, wit::TelemetryError> {
        let (scope, services) = self.scope().ok_or_else(unavailable)?;
        let org = within_org.unwrap_or_else(|| scope.acting_org.clone());
        services
            .telemetry
            .devices(&scope, &org)
            .await
            .map(|list| list.into_iter().map(device_out).collect())
            .map_err(to_wit_error)
    }

    async fn record_readings(
        &mut self,
        readings: Vec<wit::Reading>,
        quality: wit::Quality,
    ) -> Result<wit::Recorded, wit::TelemetryError> {
        let (scope, services) = self.scope().ok_or_else(unavailable)?;
        let quality = quality_in(quality);
        if !matches!(
            quality,
            tm::Quality::Good | tm::Quality::Manual | tm::Quality::Bill
        ) {
            return Err(wit::TelemetryError::Invalid(
                "quality: a plugin records good, manual or bill readings; the kernel flags the rest"
                    .into(),
            ));
        }
        let readings = readings
            .into_iter()
            .map(|r| (r.device, r.channel, r.at, r.value))
            .collect();
        services
            .telemetry
            .record(&scope, readings, quality)
            .await
            .map(|r| wit::Recorded {
                stored: r.stored,
                duplicates: r.duplicates,
                rejected: r.rejected,
            })
            .map_err(to_wit_error)
    }

    async fn aggregate(
        &mut self,
        query: wit::SeriesQuery,
    ) -> Result<Vec<wit::Bucket>, wit::TelemetryError> {
        let (scope, services) = self.scope().ok_or_else(unavailable)?;
        let q = tm::SeriesQuery {
            devices: query.devices,
            within_org: query.within_org.unwrap_or_else(|| scope.acting_org.clone()),
            channel: query.channel,
            from: query.from,
            to: query.to,
            span: match query.interval {
                wit::Interval::QuarterHour => tm::Span::QuarterHour,
                wit::Interval::Hour => tm::Span::Hour,
                wit::Interval::Day => tm::Span::Day,
                wit::Interval::Month => tm::Span::Month,
            },
            measure: match query.measure {
                wit::Measure::Sum => tm::Measure::Sum,
                wit::Measure::Avg => tm::Measure::Avg,
                wit::Measure::Min => tm::Measure::Min,
                wit::Measure::Max => tm::Measure::Max,
                wit::Measure::Last => tm::Measure::Last,
                wit::Measure::Count => tm::Measure::Count,
            },
            per_device: query.per_device,
        };
        services
            .telemetry
            .aggregate(&scope, &q)
            .await
            .map(|list| {
                list.into_iter()
                    .map(|b| wit::Bucket {
                        device: b.device,
                        start: b.start,
                        value: b.value,
                        count: b.count,
                    })
                    .collect()
            })
            .map_err(to_wit_error)
    }

    async fn latest(
        &mut self,
        devices: Vec<String>,
    ) -> Result<Vec<wit::LatestReading>, wit::TelemetryError> {
        let (scope, services) = self.scope().ok_or_else(unavailable)?;
        services
            .telemetry
            .latest(&scope, &devices)
            .await
            .map(|list| {
                list.into_iter()
                    .map(|l| wit::LatestReading {
                        device: l.device,
                        channel: l.channel,
                        at: l.at,
                        value: l.value,
                        quality: quality_out(l.quality),
                    })
                    .collect()
            })
            .map_err(to_wit_error)
    }

    async fn track(
        &mut self,
        device: String,
        from: i64,
        to: i64,
    ) -> Result<Vec<wit::TrackPoint>, wit::TelemetryError> {
        let (scope, services) = self.scope().ok_or_else(unavailable)?;
        services
            .telemetry
            .track(&scope, &device, from, to)
            .await
            .map(|list| {
                list.into_iter()
                    .map(|p| wit::TrackPoint {
                        at: p.at,
                        latitude: p.latitude,
                        longitude: p.longitude,
                        altitude_m: p.altitude_m,
                        speed_kmh: p.speed_kmh,
                        heading: p.heading,
                        alarm: p.alarm,
                        status: p.status,
                    })
                    .collect()
            })
            .map_err(to_wit_error)
    }

    async fn define_rule(&mut self, rule: wit::Rule) -> Result<(), wit::TelemetryError> {
        let (scope, services) = self.scope().ok_or_else(unavailable)?;
        let rule = tm::Rule {
            name: rule.name,
            devices: rule.devices,
            condition: condition_in(rule.condition),
        };
        services
            .telemetry
            .define_rule(&scope, rule)
            .await
            .map_err(to_wit_error)
    }

    async fn remove_rule(&mut self, name: String) -> Result<bool, wit::TelemetryError> {
        let (scope, services) = self.scope().ok_or_else(unavailable)?;
        services
            .telemetry
            .remove_rule(&scope, &name)
            .await
            .map_err(to_wit_error)
    }
}
