//! The year of documents `tianshan up` seeds: the regional administration
//! and each prefecture's issue notices, opinions, reports and letters
//! through the year, each distributed to the administrations below (or
//! reported up), so every administration has an incoming box at every
//! stage of handling; notices and matters under supervision besides.
//! Ids follow from the org and the index, so seeding twice adds nothing.

use serde::Deserialize;
use serde_json::Value;
use tianshan_sdk::prelude::*;
use tianshan_sdk::storage::{Write, collection};

use crate::model::{Delivery, Incoming, Matter, Notice, Outgoing, document_no};

pub fn routes(router: Router) -> Router {
    router.post("/demo/seed", seed)
}

#[derive(Deserialize)]
struct Name {
    #[serde(rename = "zh-CN")]
    zh: String,
}

#[derive(Deserialize)]
struct DemoOrg {
    id: String,
    #[serde(default)]
    parent_id: Option<String>,
    level: String,
    name: Name,
}

#[derive(Deserialize)]
struct Seed {
    orgs: Vec<DemoOrg>,
}

/// (type, title pattern, body): `{}` takes a subject.
const KINDS: &[(&str, &str, &str)] = &[
    (
        "notice",
        "关于做好{}工作的通知",
        "各单位：为切实做好{}工作，现将有关事项通知如下。一、提高思想认识，明确工作责任。二、细化工作措施，按时报送材料。三、加强督促检查，确保取得实效。请各单位于规定时限内将落实情况报送。",
    ),
    (
        "opinion",
        "关于进一步加强{}的实施意见",
        "为贯彻落实自治区党委、人民政府有关部署，进一步加强{}，结合工作实际，提出如下意见。一、总体要求。二、主要任务。三、保障措施。",
    ),
    (
        "report",
        "关于{}情况的报告",
        "现将本单位{}有关情况报告如下。一、基本情况。二、主要做法和成效。三、存在的问题。四、下一步工作打算。",
    ),
    (
        "letter",
        "关于商请协助做好{}的函",
        "为做好{}，现商请贵单位予以协助。具体事项如下，请予支持为盼。",
    ),
    (
        "bulletin",
        "关于{}检查情况的通报",
        "根据年度工作安排，对{}进行了检查。现将检查情况通报如下。总体情况良好，个别单位存在台账不全等问题，请对照整改。",
    ),
];

const SUBJECTS: &[&str] = &[
    "公共机构节能",
    "办公用房清理整改",
    "公务用车管理",
    "国有资产清查",
    "机关运行成本统计",
    "节约型机关创建",
    "公物仓调剂使用",
    "生活垃圾分类",
    "安全生产检查",
    "机关食堂反食品浪费",
    "公务接待管理",
    "办公设备配置",
];

const IN_STAGES: &[&str] = &[
    "completed",
    "archived",
    "completed",
    "handling",
    "instructed",
    "proposed",
    "registered",
];

/// Only the kernel (no caller) seeds; a signed-in user is refused.
fn seed(req: &Request) -> Result<Response> {
    if identity::caller().is_some() {
        return Err(Error::forbidden("the demo is seeded by the kernel"));
    }
    let seed: Seed = req.json()?;
    let level = |id: &Option<String>| {
        seed.orgs
            .iter()
            .find(|o| Some(&o.id) == id.as_ref())
            .map(|o| o.level.as_str())
            .unwrap_or("")
    };
    // The offices administrations: units right under the region and each
    // prefecture.
    let admins: Vec<&DemoOrg> = seed
        .orgs
        .iter()
        .filter(|o| o.level == "unit" && matches!(level(&o.parent_id), "region" | "prefecture"))
        .collect();
    let Some(region) = admins
        .iter()
        .copied()
        .find(|o| level(&o.parent_id) == "region")
    else {
        return Ok(Response::json(&json!({ "outgoing": 0 })));
    };
    let prefectures: Vec<&DemoOrg> = admins
        .iter()
        .copied()
        .filter(|o| o.id != region.id)
        .collect();
    let year = crate::common::this_year();
    let (mut out_made, mut in_made) = (0, 0);
    let mut in_seq: std::collections::HashMap<(String, i32), i64> = Default::default();
    // The region issues 48 a year to every prefecture; each prefecture 12,
    // two of them reports up to the region.
    let mut plan: Vec<(&DemoOrg, &str, Vec<&DemoOrg>, usize)> = Vec::new();
    for i in 0..48 {
        plan.push((region, "新机管发", prefectures.clone(), i));
    }
    for (p, &prefecture) in prefectures.iter().enumerate() {
        for i in 0..12 {
            let to = if i % 6 == 5 {
                vec![region]
            } else {
                vec![prefectures[(p + 1) % prefectures.len()]]
            };
            plan.push((prefecture, "机管发", to, i + p));
        }
    }
    // Each org's documents spread over the last year up to today; numbers
    // run per org and year, as registration gives them.
    let mut totals: std::collections::HashMap<&str, usize> = Default::default();
    for (from, ..) in &plan {
        *totals.entry(from.id.as_str()).or_insert(0) += 1;
    }
    let today = dates::today();
    let (ty, tm, td) = dates::parse_date(&today).unwrap_or((year, 12, 1));
    let today_days = dates::days_from_civil(ty, tm, td);
    let mut position: std::collections::HashMap<&str, usize> = Default::default();
    let mut counts: std::collections::HashMap<(String, i32), i64> = Default::default();
    let mut volumes: std::collections::BTreeMap<(&str, String, String), f64> = Default::default();
    for (from, code, to, i) in plan {
        let k = {
            let p = position.entry(from.id.as_str()).or_insert(0);
            *p += 1;
            *p - 1
        };
        let n = totals[from.id.as_str()];
        let days_ago = ((n - 1 - k) * 360 / n) as i64;
        let on = dates::date_text(dates::civil_from_days(today_days - days_ago));
        let doc_year: i32 = on[..4].parse().unwrap_or(year);
        let seq = {
            let c = counts.entry((from.id.clone(), doc_year)).or_insert(0);
            *c += 1;
            *c
        };
        let due = dates::date_text(dates::civil_from_days(today_days - days_ago + 30));
        let (doc_type, title, body) = KINDS[if to.len() == 1 && to[0].id == region.id {
            2
        } else {
            [0, 1, 0, 3, 4][i % 5]
        }];
        let subject = SUBJECTS[i % SUBJECTS.len()];
        let id = format!(
            "demo-{}-{doc_year}-{seq}",
            from.id.trim_start_matches("org-")
        );
        if crate::outgoing::outgoing().get::<Value>(&id)?.is_some() {
            continue;
        }
        let no = document_no(code, doc_year, seq);
        let mut doc = Outgoing {
            doc_type: doc_type.into(),
            classification: "none".into(),
            urgency: if i % 9 == 0 { "urgent" } else { "normal" }.into(),
            organ_mark: format!("{}文件", from.name.zh),
            organ_code: code.into(),
            no: no.clone(),
            seq,
            year: doc_year,
            signer: if doc_type == "report" {
                "王建国".into()
            } else {
                String::new()
            },
            title: title.replace("{}", subject),
            main_recipients: if to.len() > 1 {
                "各地、州、市机关事务管理局".into()
            } else {
                to[0].name.zh.clone()
            },
            body: body.replace("{}", subject),
            issuing_organ: from.name.zh.clone(),
            issued_on: on.clone(),
            period: crate::indicators::period_of(&on),
            printing_organ: format!("{}办公室", from.name.zh),
            printed_on: on.clone(),
            distribute_to: to.iter().map(|o| o.id.clone()).collect(),
            publicity: "not_public".into(),
            status: if days_ago > 180 { "archived" } else { "issued" }.into(),
            drafter_name: "办公室".into(),
            sealed: true,
            ..Outgoing::default()
        };
        doc.timeline
            .push_as(&on, "system", "registered", Some(Value::from(no.clone())));
        let mut writes = Vec::new();
        for recipient in &to {
            let n = in_seq.entry((recipient.id.clone(), doc_year)).or_insert(0);
            *n += 1;
            let copy_id = format!("in-{id}-{}", recipient.id.trim_start_matches("org-"));
            let stage = IN_STAGES[(i + *n as usize) % IN_STAGES.len()];
            let open = !matches!(stage, "completed" | "archived");
            let mut copy = Incoming {
                no: format!("收〔{doc_year}〕{n}号"),
                source_organ: from.name.zh.clone(),
                source_org: from.id.clone(),
                source_id: id.clone(),
                source_no: no.clone(),
                doc_type: doc_type.into(),
                title: doc.title.clone(),
                urgency: doc.urgency.clone(),
                body: doc.body.clone(),
                received_on: on.clone(),
                period: crate::indicators::period_of(&on),
                deadline: if open { due.clone() } else { String::new() },
                status: stage.into(),
                proposal: if stage == "registered" {
                    String::new()
                } else {
                    "拟请分管领导阅示，由综合科办理。".into()
                },
                instruction: if matches!(stage, "registered" | "proposed") {
                    String::new()
                } else {
                    "同意，请综合科抓好落实。".into()
                },
                lead: if matches!(stage, "registered" | "proposed") {
                    String::new()
                } else {
                    "综合科".into()
                },
                completion: if open {
                    String::new()
                } else {
                    "已按要求落实并报送。".into()
                },
                ..Incoming::default()
            };
            copy.timeline
                .push_as(&on, "system", "received", Some(Value::from(no.clone())));
            doc.deliveries.push(Delivery {
                org: recipient.id.clone(),
                org_name: recipient.name.zh.clone(),
                incoming_id: copy_id.clone(),
                no: copy.no.clone(),
            });
            writes.push(Write::insert_with(
                "incoming",
                Some(&copy_id),
                Some(&recipient.id),
                &copy,
            )?);
            in_made += 1;
        }
        writes.insert(
            0,
            Write::insert_with("outgoing", Some(&id), Some(&from.id), &doc)?,
        );
        storage::transact(writes)?;
        out_made += 1;
        let period = crate::indicators::period_of(&on);
        *volumes
            .entry((crate::indicators::ISSUED, from.id.clone(), period.clone()))
            .or_insert(0.0) += 1.0;
        for recipient in &to {
            *volumes
                .entry((
                    crate::indicators::RECEIVED,
                    recipient.id.clone(),
                    period.clone(),
                ))
                .or_insert(0.0) += 1.0;
        }
    }
    // The counters continue from the demo's numbers.
    for ((org, y), next) in counts {
        let series = series_fw(
            if org == region.id {
                "新机管发"
            } else {
                "机管发"
            },
            y,
        );
        set_counter(&series, &org, next + 1)?;
    }
    for ((org, y), next) in &in_seq {
        set_counter(&format!("SW{y}"), org, next + 1)?;
    }
    for code in [crate::indicators::ISSUED, crate::indicators::RECEIVED] {
        let points: Vec<_> = volumes
            .iter()
            .filter(|((c, ..), _)| *c == code)
            .map(|((_, org, period), n)| datacenter::value(Some(org), period, *n))
            .collect();
        crate::indicators::publish_all(code, &points)?;
    }
    let made_notices = notices_and_matters(region, &prefectures, year)?;
    Ok(Response::json(&json!({
        "outgoing": out_made, "incoming": in_made, "notices": made_notices,
    })))
}

fn series_fw(code: &str, year: i32) -> String {
    crate::outgoing::series_id(&format!("FW{code}{year}"))
}

fn set_counter(series: &str, org: &str, next: i64) -> Result<()> {
    let id = format!("{series}.{}", org.trim_start_matches("org-"));
    match collection("counters").insert_with(Some(&id), Some(org), &json!({ "next": next })) {
        Ok(_) => Ok(()),
        Err(e) if e.status() == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

fn notices_and_matters(region: &DemoOrg, prefectures: &[&DemoOrg], year: i32) -> Result<usize> {
    let mut made = 0;
    let region_notices = [
        ("关于元旦、春节期间值班安排的通知", "all"),
        ("关于开展节能宣传周活动的通知", "all"),
        ("关于召开机关事务工作会议的通知", "leaders"),
    ];
    for (i, (title, audience)) in region_notices.iter().enumerate() {
        let id = format!("demo-notice-{i}");
        let notice = Notice {
            title: title.to_string(),
            body: format!("{title}。请各单位认真做好有关工作。"),
            audience: audience.to_string(),
            publisher_name: "自治区机关事务管理局办公室".into(),
            publisher_org: region.id.clone(),
            published_on: format!("{year}-{:02}-10", 3 + i * 3),
            ..Notice::default()
        };
        // Addressed to the whole region: stored at the region's root.
        let root = region
            .parent_id
            .clone()
            .unwrap_or_else(|| region.id.clone());
        if collection("notices")
            .insert_with(Some(&id), Some(&root), &notice)
            .is_ok()
        {
            made += 1;
        }
    }
    for (p, prefecture) in prefectures.iter().enumerate().take(6) {
        let id = format!("demo-matter-{p}");
        let mut matter = Matter {
            title: "办公用房清理整改落实情况".into(),
            owner: "综合科".into(),
            deadline: format!("{year}-{:02}-30", 4 + p),
            status: if p % 3 == 0 { "completed" } else { "open" }.into(),
            percent: if p % 3 == 0 { 100 } else { 20 * p as u32 },
            ..Matter::default()
        };
        matter
            .timeline
            .push_as(&format!("{year}-03-01"), "system", "assigned", None);
        let _ = collection("matters").insert_with(Some(&id), Some(&prefecture.id), &matter);
    }
    Ok(made)
}
