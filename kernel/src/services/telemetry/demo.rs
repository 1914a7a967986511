//! The demo's moving fleet (`tianshan up`): each demo vehicle's terminal
//! drives a loop around its prefecture's seat, one JT/T 808 location report
//! every few seconds, through the same handler the 808 server calls after
//! decoding a frame ([`Terminals808`]), so positions, speed readings and the
//! vehicles plugin's rules (an occasional over-speed) behave as with real
//! terminals. Nothing of this runs outside the demo.

use std::sync::Arc;
use std::time::Duration;

use sqlx::Row as _;

use super::jt808::{BatchKind, LocationReport, Terminals as _};
use super::{Result, Telemetry, Terminals808};
use crate::core::calendar;

/// One demo terminal: its phone number and the loop it drives.
#[derive(Debug, Clone)]
pub struct DemoTerminal {
    pub phone: String,
    /// (latitude, longitude) of the loop's centre.
    pub centre: (f64, f64),
    pub radius_km: f64,
    /// Where on the loop it starts, 0-1.
    pub phase: f64,
    /// Parked vehicles report speed 0 at their spot.
    pub parked: bool,
}

/// The `plugin`'s demo terminals (ids `demo-…`, JT/T 808), each with its
/// org, oldest first.
pub async fn demo_terminals(telemetry: &Telemetry, plugin: &str) -> Result<Vec<(String, String)>> {
    let rows = sqlx::query(
        "SELECT external_id, org_id FROM tm_devices
         WHERE plugin_id = $1 AND protocol = 'jt808' AND id LIKE 'demo-%' ORDER BY id",
    )
    .bind(plugin)
    .fetch_all(&telemetry.db)
    .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Where terminal `n` of `terminals` is `tick` steps on: its position,
/// speed and heading. Every eleventh report of every eighth one is fast.
pub fn step(t: &DemoTerminal, n: usize, tick: u64) -> (f64, f64, f64, u16) {
    if t.parked {
        return (t.centre.0, t.centre.1, 0.0, 0);
    }
    let turn = (t.phase + tick as f64 / 120.0).fract() * std::f64::consts::TAU;
    let (lat0, lon0) = t.centre;
    let lat = lat0 + t.radius_km / 111.0 * turn.sin();
    let lon = lon0 + t.radius_km / (111.0 * lat0.to_radians().cos()) * turn.cos();
    let speed = if n.is_multiple_of(8) && tick.is_multiple_of(11) {
        128.0
    } else {
        35.0 + 5.0 * (n % 5) as f64
    };
    let heading = ((360.0 - turn.to_degrees()) % 360.0) as u16;
    (lat, lon, speed, heading)
}

/// Reports each terminal's next position every `every`, until the process
/// ends; a failed report is logged and the next one tried.
pub async fn drive(telemetry: Arc<Telemetry>, terminals: Vec<DemoTerminal>, every: Duration) {
    let handler = Terminals808(telemetry);
    let mut tick: u64 = 0;
    loop {
        let at = calendar::now_ms() / 1000;
        for (n, t) in terminals.iter().enumerate() {
            let (latitude, longitude, speed_kmh, heading) = step(t, n, tick);
            let report = LocationReport {
                alarm: 0,
                status: if t.parked { 0 } else { 0b11 },
                latitude,
                longitude,
                altitude_m: 800,
                speed_kmh,
                heading,
                at,
                mileage_km: Some(12_000.0 + tick as f64 * speed_kmh / 360.0),
                signal: Some(25),
                satellites: Some(12),
                extras: Vec::new(),
            };
            if let Err(e) = handler
                .locations(&t.phone, BatchKind::Normal, vec![report])
                .await
            {
                tracing::debug!(phone = %t.phone, error = %e, "demo terminal report failed");
            }
        }
        tick += 1;
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_moving_terminal_keeps_to_its_loop_and_now_and_then_speeds() {
        let t = DemoTerminal {
            phone: "013990000001".into(),
            centre: (43.8, 87.6),
            radius_km: 5.0,
            phase: 0.25,
            parked: false,
        };
        let mut fast = 0;
        for tick in 0..120 {
            let (lat, lon, speed, _) = step(&t, 8, tick);
            let dy = (lat - 43.8) * 111.0;
            let dx = (lon - 87.6) * 111.0 * 43.8_f64.to_radians().cos();
            assert!(((dx * dx + dy * dy).sqrt() - 5.0).abs() < 0.01, "{tick}");
            if speed > 120.0 {
                fast += 1;
            }
        }
        assert!((10..=12).contains(&fast), "{fast}");
        assert!((0..120).all(|tick| step(&t, 3, tick).2 < 120.0));
        let parked = DemoTerminal { parked: true, ..t };
        assert_eq!(step(&parked, 0, 7), (43.8, 87.6, 0.0, 0));
    }
}
