//! Terminals (车载终端): a vehicle's JT/T 808 terminal is a device of the
//! kernel's telemetry service, known by its phone number, so its positions
//! land in the kernel's track and on the live maps (the wall's positions
//! panel, `GET /api/v1/telemetry/positions?plugin=vehicles`), and the
//! compliance rules below raise alerts as the kernel evaluates them.

use tianshan_sdk::prelude::*;
use tianshan_sdk::telemetry::{self, Channel, Condition, Device, Rule};

use crate::model::Vehicle;

/// Faster than any road in the region allows an official car.
pub const OVERSPEED_KMH: f64 = 120.0;
/// Moving outside 07:00-21:00 (region time) without a trip.
pub const WORKING_HOURS: (u8, u8) = (7, 21);
/// A terminal silent this long is offline.
pub const OFFLINE_MINUTES: u32 = 30;

/// The plugin's rules, over every terminal; run on install and upgrade.
pub fn define_rules() -> Result<()> {
    for rule in [
        Rule::new(
            "overspeed",
            Condition::Above(("speed_kmh".into(), OVERSPEED_KMH)),
        ),
        Rule::new("outside_hours", Condition::OutsideHours(WORKING_HOURS)),
        Rule::new("offline", Condition::Offline(OFFLINE_MINUTES)),
    ] {
        telemetry::define_rule(&rule)?;
    }
    Ok(())
}

/// The terminal device of vehicle `id` at `org`.
fn device(id: &str, org: &str, v: &Vehicle) -> Device {
    let name = if v.plate.is_empty() {
        format!("{} {}", v.brand, v.model)
    } else {
        v.plate.clone()
    };
    Device::vehicle_terminal(id, &name, &v.terminal_id)
        .org(org)
        .channel(Channel::level("speed_kmh", "km/h").range(0.0, 250.0))
        .channel(Channel::counter("mileage_km", "km").max_step(500.0))
}

/// Makes the kernel's device follow the vehicle: registered (or renamed,
/// moved) while it names a terminal, removed when it names none.
pub fn bind(id: &str, org: &str, v: &Vehicle) -> Result<()> {
    if v.terminal_id.is_empty() {
        telemetry::remove(id)?;
        return Ok(());
    }
    telemetry::register(&device(id, org, v))
        .map(|_| ())
        .map_err(|e| match e.status() {
            409 => e
                .with_code("terminal_taken")
                .with_field("terminal_id")
                .with_param("terminal", v.terminal_id.clone()),
            _ => e,
        })
}

/// A terminal's phone number: 11 to 20 digits (JT/T 808-2013 sends 12 as
/// BCD, 2019 sends 20).
pub fn check_terminal(terminal: &str) -> Result<()> {
    if terminal.is_empty()
        || ((11..=20).contains(&terminal.len()) && terminal.bytes().all(|b| b.is_ascii_digit()))
    {
        return Ok(());
    }
    Err(
        Error::validation("terminal_id", "a terminal's number is 11 to 20 digits")
            .with_code("terminal_invalid"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_terminal_number_is_digits() {
        assert!(check_terminal("").is_ok());
        assert!(check_terminal("013912345678").is_ok());
        assert!(check_terminal("13912345678").is_ok());
        for bad in [
            "1391234567",
            "0139-1234567",
            "013912345678901234567",
            "abcdefghijkl",
        ] {
            assert_eq!(
                check_terminal(bad).unwrap_err().code(),
                "terminal_invalid",
                "{bad}"
            );
        }
    }
}
