//! The demo fleet `tianshan up` seeds: a mixed-energy fleet for a few
//! counties of the demo tree, each in another prefecture, so the NEV share
//! is short of the target in some and the wall's map has them apart. Ids follow from the org and the index, so seeding twice adds
//! nothing.

use serde::Deserialize;
use tianshan_sdk::prelude::*;
use tianshan_sdk::storage::collection;

use crate::model::Vehicle;

pub fn routes(router: Router) -> Router {
    router.post("/demo/seed", seed)
}

#[derive(Deserialize)]
struct DemoOrg {
    id: String,
    #[serde(default)]
    parent_id: Option<String>,
    level: String,
}

#[derive(Deserialize)]
struct Seed {
    orgs: Vec<DemoOrg>,
}

const FLEET: &[(&str, &str, &str, f64, i64)] = &[
    ("比亚迪", "汉 EV", "bev", 0.0, 16_980_000),
    ("大众", "帕萨特", "gasoline", 1.4, 17_500_000),
    ("红旗", "H5", "gasoline", 1.5, 15_980_000),
    ("吉利", "星越L PHEV", "phev", 1.5, 16_500_000),
    ("丰田", "凯美瑞 双擎", "hev", 2.0, 17_980_000),
    ("长城", "哈弗H6", "diesel", 1.8, 12_000_000),
];

/// Only the kernel (no caller) seeds; a signed-in user is refused.
fn seed(req: &Request) -> Result<Response> {
    if identity::caller().is_some() {
        return Err(Error::forbidden("the demo is seeded by the kernel"));
    }
    let seed: Seed = req.json()?;
    let mut prefectures = std::collections::BTreeSet::new();
    let counties: Vec<&DemoOrg> = seed
        .orgs
        .iter()
        .filter(|o| o.level == "county" && prefectures.insert(o.parent_id.clone()))
        .take(4)
        .collect();
    let mut made = 0;
    for (c, county) in counties.iter().enumerate() {
        // The first county runs mostly on fuel, the others mostly electric.
        let count = 6;
        for i in 0..count {
            let (brand, model, energy, litres, price) = if c == 0 {
                FLEET[1 + i % 5]
            } else {
                FLEET[[0, 3, 0, 1, 3, 0][i]]
            };
            let mut v = Vehicle {
                plate: format!(
                    "新A{}{:04}{}",
                    (b'A' + c as u8) as char,
                    c * 10 + i,
                    if energy == "bev" { "D" } else { "" }
                ),
                vin: format!("LDEMV{:02}{:010}", c, i),
                engine_no: format!("E{c}{i:05}"),
                brand: brand.into(),
                model: model.into(),
                displacement_l: litres,
                energy_type: energy.into(),
                price,
                registered_on: format!("20{:02}-0{}-15", 18 + i, 1 + c),
                seats: 5,
                category: ["other", "law_enforcement", "emergency"][i % 3].into(),
                odometer_km: 12_000.0 * (i + 1) as f64,
                insurance_until: "2027-06-30".into(),
                inspection_due: "2027-03-31".into(),
                state: "in_service".into(),
                // Every demo vehicle carries a terminal; `tianshan up`
                // drives them on demo routes (kernel/src/node/demo_fleet.rs).
                terminal_id: format!("01399{c:02}{i:05}"),
                ..Vehicle::default()
            };
            v.normalise()?;
            let id = format!("demo-{}-{i}", county.id);
            match collection("vehicles").insert_with(Some(&id), Some(&county.id), &v) {
                Ok(_) => made += 1,
                Err(e) if e.code() == "conflict" => {}
                Err(e) => return Err(e),
            }
            crate::terminals::bind(&id, &county.id, &v)?;
        }
        crate::indicators::refresh(&county.id)?;
    }
    let at: Vec<&str> = counties.iter().map(|c| c.id.as_str()).collect();
    crate::piles::seed_demo(&at)?;
    Ok(Response::json(&json!({ "vehicles": made })))
}
