//! Charging piles (充电桩): each at a unit, with where it stands, its power
//! and current (AC or DC), and, when it is metered, its meter as a device
//! of the kernel's telemetry (MQTT, a `kwh` counter), so charging energy
//! rolls up like any reading. The count per org is this system's
//! `vehicles.charging_piles` and the plan's `plan.charging_piles`.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tianshan_sdk::prelude::*;
use tianshan_sdk::storage::{Collection, collection};
use tianshan_sdk::telemetry::{self, Channel, Device, DeviceKind};
use tianshan_sdk::vocab::{Term, Vocab};

pub fn routes(router: Router) -> Router {
    router
        .get("/piles", list_piles)
        .requires("vehicles.view")
        .post("/piles", create_pile)
        .requires("vehicles.manage")
}

pub fn piles() -> Collection {
    collection("piles")
}

pub const CURRENT: Vocab = Vocab::new(
    "current",
    &[
        Term::new("ac", "交流慢充", "AC"),
        Term::new("dc", "直流快充", "DC"),
    ],
);

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Pile {
    pub name: String,
    pub current: String,
    pub power_kw: f64,
    pub location: String,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    /// The meter's MQTT id (it reports to `tianshan/telemetry/<id>`); empty
    /// when not metered.
    pub meter_id: String,
    pub active: bool,
}

impl Pile {
    pub fn normalise(&mut self) -> Result<()> {
        self.name = self.name.trim().to_string();
        self.location = self.location.trim().to_string();
        self.meter_id = self.meter_id.trim().to_string();
        if self.name.is_empty() || self.name.chars().count() > 100 {
            return Err(Error::invalid(
                "name",
                "required",
                "a name of 1-100 characters",
            ));
        }
        CURRENT.check("current", &self.current)?;
        if !(self.power_kw > 0.0 && self.power_kw <= 1000.0) {
            return Err(Error::invalid(
                "power_kw",
                "power_invalid",
                "power in kW, above 0 and at most 1000",
            ));
        }
        match (self.latitude, self.longitude) {
            (Some(lat), Some(lon)) if lat.abs() <= 90.0 && lon.abs() <= 180.0 => {}
            (None, None) => {}
            _ => {
                return Err(Error::invalid(
                    "latitude",
                    "pile_position_invalid",
                    "latitude and longitude together, in degrees",
                ));
            }
        }
        Ok(())
    }
}

/// The count of one org's own active piles this year, into the data
/// center (the kernel rolls it up).
pub fn refresh(org: &str) -> Result<()> {
    let n = piles()
        .find()
        .within(Some(org.to_string()))
        .eq("org", org)
        .eq("active", true)
        .count()? as f64;
    let year = dates::current_period(datacenter::Granularity::Year);
    let at = [datacenter::value(Some(org), &year, n)];
    datacenter::publish("vehicles.charging_piles", &at)?;
    datacenter::publish_if_granted("plan.charging_piles", &at)?;
    Ok(())
}

/// Makes pile `id`'s meter a telemetry device when it names one.
fn bind_meter(id: &str, org: &str, pile: &Pile) -> Result<()> {
    if pile.meter_id.is_empty() {
        return Ok(());
    }
    let device = Device::meter(id, &pile.name, &pile.meter_id)
        .kind(DeviceKind::ChargingPile)
        .org(org)
        .channel(Channel::counter("kwh", "kWh").max_step(pile.power_kw * 24.0))
        .channel(Channel::level("power_kw", "kW").range(0.0, pile.power_kw * 1.2));
    telemetry::register(&device)
        .map(|_| ())
        .map_err(|e| match e.status() {
            409 => e
                .with_code("meter_taken")
                .with_field("meter_id")
                .with_param("meter", pile.meter_id.clone()),
            _ => e,
        })
}

/// `POST /piles` `{name, current: ac|dc, power_kw, location?, latitude?,
/// longitude?, meter_id?, org?}`.
fn create_pile(req: &Request) -> Result<Response> {
    let mut body: serde_json::Map<String, Value> = req.json()?;
    let org = orgs::target(
        "vehicles.manage",
        body.remove("org").as_ref().and_then(Value::as_str),
    )?;
    body.entry("active").or_insert(Value::Bool(true));
    let mut pile: Pile = serde_json::from_value(Value::Object(body))
        .map_err(|e| Error::validation("body", e.to_string()).with_code("invalid_body"))?;
    pile.normalise()?;
    let doc = piles().insert_with(None, org.as_deref(), &pile)?;
    if let Err(e) = bind_meter(&doc.id, &doc.org, &pile) {
        piles().delete(&doc.id, Some(doc.revision))?;
        return Err(e);
    }
    refresh(&doc.org)?;
    Ok(Response::json(&doc).with_status(201))
}

/// `GET /piles?current=&q=&sort=&format=csv|xlsx`.
fn list_piles(req: &Request) -> Result<Response> {
    let mut find = piles().find();
    if let Some(q) = req.query_param("q").filter(|q| !q.is_empty()) {
        find = find.contains("name", &q);
    }
    let find = list::filter_vocab(find, req, "current", &CURRENT)?;
    let find = list::sorted(find, req, &["name", "power_kw"], "name")?;
    list::respond(
        req,
        &find,
        "piles",
        &[
            ("名称 Name", "/data/name"),
            ("类型 Current", "/data/current"),
            ("功率 kW", "/data/power_kw"),
            ("位置 Location", "/data/location"),
            ("电表 Meter", "/data/meter_id"),
            ("单位 Org", "/org"),
        ],
    )
}

/// The demo's piles: two at each of these orgs, DC at the first.
pub fn seed_demo(orgs: &[&str]) -> Result<usize> {
    let mut made = 0;
    for org in orgs {
        for (i, (current, power)) in [("dc", 60.0), ("ac", 7.0)].iter().enumerate() {
            let id = format!("demo-pile-{org}-{i}");
            let pile = Pile {
                name: format!("{}号充电桩", i + 1),
                current: current.to_string(),
                power_kw: *power,
                location: "机关停车场".into(),
                active: true,
                ..Pile::default()
            };
            match piles().insert_with(Some(&id), Some(org), &pile) {
                Ok(_) => made += 1,
                Err(e) if e.code() == "conflict" => {}
                Err(e) => return Err(e),
            }
        }
        refresh(org)?;
    }
    Ok(made)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pile() -> Pile {
        Pile {
            name: " 1号桩 ".into(),
            current: "dc".into(),
            power_kw: 60.0,
            active: true,
            ..Pile::default()
        }
    }

    fn refused(change: impl Fn(&mut Pile)) -> String {
        let mut p = pile();
        change(&mut p);
        p.normalise().unwrap_err().code().to_string()
    }

    #[test]
    fn a_pile_names_its_current_power_and_a_whole_position() {
        let mut ok = pile();
        ok.normalise().unwrap();
        assert_eq!(ok.name, "1号桩");
        assert_eq!(
            refused(|p| p.current = "3phase".into()),
            "not_in_vocabulary"
        );
        assert_eq!(refused(|p| p.power_kw = 0.0), "power_invalid");
        assert_eq!(refused(|p| p.power_kw = 5000.0), "power_invalid");
        assert_eq!(
            refused(|p| p.latitude = Some(43.8)),
            "pile_position_invalid"
        );
        assert_eq!(refused(|p| p.name = "  ".into()), "required");
    }
}
