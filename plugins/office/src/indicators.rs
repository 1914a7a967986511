//! What the office feeds the data center: documents issued and received
//! per org and month (the §9.4 volumes), summed up the org tree by the
//! kernel, so a leader's screen compares prefectures without reading
//! anyone's documents.

use tianshan_sdk::datacenter::{self, Aggregation, Granularity, Indicator, Point, Sharing};
use tianshan_sdk::prelude::*;

pub const ISSUED: &str = "office.issued";
pub const RECEIVED: &str = "office.received";

pub fn define() -> Result<()> {
    for (code, zh, en) in [
        (ISSUED, "发文数", "Documents issued"),
        (RECEIVED, "收文数", "Documents received"),
    ] {
        Indicator::new(code, zh, en, "件")
            .aggregation(Aggregation::Sum)
            .granularity(Granularity::Month)
            .sharing(Sharing::Open)
            .define()?;
    }
    Ok(())
}

/// The `YYYY-MM` of a date.
pub fn period_of(date: &str) -> String {
    date.get(..7).unwrap_or_default().to_string()
}

/// Recounts one org's month of issued or received documents.
pub fn refresh(code: &'static str, org: &str, period: &str) -> Result<()> {
    let count = if code == ISSUED {
        crate::outgoing::outgoing()
            .find()
            .eq("org", org)
            .eq("period", period)
            .one_of("status", ["issued", "archived"])
            .count()?
    } else {
        crate::incoming::incoming()
            .find()
            .eq("org", org)
            .eq("period", period)
            .count()?
    };
    datacenter::publish(code, &[datacenter::value(Some(org), period, count as f64)])?;
    Ok(())
}

/// Values counted elsewhere (the demo), sent in the batches the kernel takes.
pub fn publish_all(code: &str, points: &[Point]) -> Result<()> {
    for chunk in points.chunks(1000) {
        datacenter::publish(code, chunk)?;
    }
    Ok(())
}
