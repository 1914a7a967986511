//! The documents, their vocabularies and the pure parts — validation of
//! the GB/T 9704 elements, marked changes between two versions of a body,
//! search snippets — kept free of host calls so they test on the host.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tianshan_sdk::document::Timeline;
use tianshan_sdk::vocab::{Term, Vocab};
use tianshan_sdk::{Error, Result};

/// The 15 types of the 2012 regulations (党政机关公文处理工作条例, art. 8).
pub const DOC_TYPE: Vocab = Vocab::new(
    "doc_type",
    &[
        Term::new("resolution", "决议", "Resolution"),
        Term::new("decision", "决定", "Decision"),
        Term::new("order", "命令（令）", "Order"),
        Term::new("communique", "公报", "Communiqué"),
        Term::new("announcement", "公告", "Announcement"),
        Term::new("public_notice", "通告", "Public notice"),
        Term::new("opinion", "意见", "Opinion"),
        Term::new("notice", "通知", "Notice"),
        Term::new("bulletin", "通报", "Bulletin"),
        Term::new("report", "报告", "Report"),
        Term::new("request", "请示", "Request for instructions"),
        Term::new("reply", "批复", "Reply"),
        Term::new("motion", "议案", "Motion"),
        Term::new("letter", "函", "Letter"),
        Term::new("minutes", "纪要", "Minutes"),
    ],
);

/// 上行文: addressed to a superior, so GB/T 9704 prints the 签发人.
pub fn upward(doc_type: &str) -> bool {
    matches!(doc_type, "report" | "request")
}

pub const URGENCY: Vocab = Vocab::new(
    "urgency",
    &[
        Term::new("normal", "平件", "Normal"),
        Term::new("urgent", "加急", "Urgent"),
        Term::new("very_urgent", "特急", "Very urgent"),
    ],
);

pub const PUBLICITY: Vocab = Vocab::new(
    "publicity",
    &[
        Term::new("public", "主动公开", "Public"),
        Term::new("on_request", "依申请公开", "On request"),
        Term::new("not_public", "不予公开", "Not public"),
    ],
);

pub const OUT_STATUS: Vocab = Vocab::new(
    "out_status",
    &[
        Term::new("draft", "拟稿", "Draft"),
        Term::new("reviewing", "审核中", "In review"),
        Term::new("issued", "已印发", "Issued"),
        Term::new("archived", "已归档", "Archived"),
    ],
);

pub const IN_STATUS: Vocab = Vocab::new(
    "in_status",
    &[
        Term::new("registered", "已登记", "Registered"),
        Term::new("proposed", "已拟办", "Proposed"),
        Term::new("instructed", "已批办", "Instructed"),
        Term::new("handling", "承办中", "Being handled"),
        Term::new("completed", "已办结", "Completed"),
        Term::new("archived", "已归档", "Archived"),
    ],
);

/// Retention periods of GB/T 18894 and the archives rules: 永久, 30 and 10 years.
pub const RETENTION: Vocab = Vocab::new(
    "retention",
    &[
        Term::new("permanent", "永久", "Permanent"),
        Term::new("y30", "30年", "30 years"),
        Term::new("y10", "10年", "10 years"),
    ],
);

pub const AUDIENCE: Vocab = Vocab::new(
    "audience",
    &[
        Term::new("all", "全体人员", "Everyone"),
        Term::new("leaders", "领导", "Leaders"),
        Term::new("office", "办公室", "The office"),
    ],
);

pub const MATTER_STATUS: Vocab = Vocab::new(
    "matter_status",
    &[
        Term::new("open", "督办中", "Open"),
        Term::new("completed", "已办结", "Completed"),
    ],
);

pub const VOCABS: &[&Vocab] = &[
    &DOC_TYPE,
    &URGENCY,
    &PUBLICITY,
    &OUT_STATUS,
    &IN_STATUS,
    &RETENTION,
    &AUDIENCE,
    &MATTER_STATUS,
];

/// The permission an audience narrows a notice to, if any.
pub fn audience_permission(audience: &str) -> Option<&'static str> {
    match audience {
        "leaders" => Some("office.instruct"),
        "office" => Some("office.clerk"),
        _ => None,
    }
}

/// Filing data once archived.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Archive {
    /// 归档类别, e.g. `文书-综合`.
    pub category: String,
    pub retention: String,
    /// 档号: org code, year, retention, sequence.
    pub archive_no: String,
    pub archived_on: String,
}

/// Where an issued document went.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Delivery {
    pub org: String,
    pub org_name: String,
    pub incoming_id: String,
    /// The recipient's 收文号.
    pub no: String,
}

/// An outgoing document (发文) with the GB/T 9704-2012 elements.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Outgoing {
    pub doc_type: String,
    pub copy_no: String,
    pub classification: String,
    pub urgency: String,
    pub organ_mark: String,
    pub organ_code: String,
    /// 发文字号, given at registration.
    pub no: String,
    pub seq: i64,
    /// The year of the number; before registration, of the draft.
    pub year: i32,
    pub signer: String,
    pub title: String,
    pub main_recipients: String,
    pub body: String,
    pub attachments_note: String,
    pub attachments: Vec<String>,
    pub issuing_organ: String,
    pub issued_on: String,
    /// The month issued, `YYYY-MM`, which the data center counts by.
    pub period: String,
    pub notes: String,
    pub cc: String,
    pub printing_organ: String,
    pub printed_on: String,
    pub distribute_to: Vec<String>,
    pub publicity: String,
    pub status: String,
    pub drafter: String,
    pub drafter_name: String,
    pub department: String,
    /// 用印: the electronic seal applied at registration.
    pub sealed: bool,
    pub deliveries: Vec<Delivery>,
    pub archive: Option<Archive>,
    pub timeline: Timeline,
}

/// What a drafter writes; everything else the plugin decides.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutgoingInput {
    pub doc_type: String,
    pub copy_no: String,
    pub classification: String,
    pub urgency: String,
    pub organ_mark: String,
    pub organ_code: String,
    pub signer: String,
    pub title: String,
    pub main_recipients: String,
    pub body: String,
    pub attachments_note: String,
    pub attachments: Vec<String>,
    pub issuing_organ: String,
    pub notes: String,
    pub cc: String,
    pub printing_organ: String,
    pub distribute_to: Vec<String>,
    pub publicity: String,
    /// The revision a save was based on (PUT only).
    pub revision: Option<u64>,
}

/// The longest body taken: about a hundred pages.
pub const MAX_BODY: usize = 200_000;

fn invalid(field: &str, code: &'static str, message: &str) -> Error {
    Error::invalid(field, code, message)
}

impl OutgoingInput {
    /// Trims, fills defaults and checks every element; the first fault is
    /// refused naming its field. Recipients' orgs are checked by the caller
    /// (a host call).
    pub fn validated(mut self) -> Result<OutgoingInput> {
        for text in [
            &mut self.doc_type,
            &mut self.copy_no,
            &mut self.classification,
            &mut self.urgency,
            &mut self.organ_mark,
            &mut self.organ_code,
            &mut self.signer,
            &mut self.title,
            &mut self.main_recipients,
            &mut self.attachments_note,
            &mut self.issuing_organ,
            &mut self.notes,
            &mut self.cc,
            &mut self.printing_organ,
            &mut self.publicity,
        ] {
            *text = text.trim().to_string();
        }
        if self.urgency.is_empty() {
            self.urgency = "normal".into();
        }
        if self.classification.is_empty() {
            self.classification = "none".into();
        }
        if self.publicity.is_empty() {
            self.publicity = "not_public".into();
        }
        if self.title.is_empty() {
            return Err(invalid("title", "title_required", "a title is required"));
        }
        if self.title.chars().count() > 200 {
            return Err(invalid(
                "title",
                "title_too_long",
                "a title has 200 characters at most",
            ));
        }
        DOC_TYPE.check("doc_type", &self.doc_type)?;
        URGENCY.check("urgency", &self.urgency)?;
        PUBLICITY.check("publicity", &self.publicity)?;
        if self.classification != "none" {
            return Err(invalid(
                "classification",
                "classified_not_allowed",
                "classified documents are not handled on this system (涉密不上网)",
            ));
        }
        if !self.copy_no.is_empty()
            && (self.copy_no.len() > 6 || !self.copy_no.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(invalid(
                "copy_no",
                "copy_no_invalid",
                "a copy number is up to six digits",
            ));
        }
        if self.organ_code.is_empty() {
            return Err(invalid(
                "organ_code",
                "organ_code_required",
                "the issuing organ's code (机关代字) is required",
            ));
        }
        if self.organ_code.chars().count() > 12
            || self
                .organ_code
                .chars()
                .any(|c| c.is_whitespace() || "〔〕[]()".contains(c))
        {
            return Err(invalid(
                "organ_code",
                "organ_code_invalid",
                "an organ code is up to 12 characters without brackets or spaces",
            ));
        }
        if upward(&self.doc_type) && self.signer.is_empty() {
            return Err(invalid(
                "signer",
                "signer_required",
                "a report or request names its signer (签发人)",
            ));
        }
        if self.body.len() > MAX_BODY {
            return Err(invalid("body", "body_too_long", "the body is too long"));
        }
        let mut seen = Vec::new();
        for org in self.distribute_to.drain(..) {
            let org = org.trim().to_string();
            if !org.is_empty() && !seen.contains(&org) {
                seen.push(org);
            }
        }
        self.distribute_to = seen;
        Ok(self)
    }

    /// The input onto a document, keeping what the plugin owns.
    pub fn apply(self, to: &mut Outgoing) {
        to.doc_type = self.doc_type;
        to.copy_no = self.copy_no;
        to.classification = self.classification;
        to.urgency = self.urgency;
        to.organ_mark = self.organ_mark;
        to.organ_code = self.organ_code;
        to.signer = self.signer;
        to.title = self.title;
        to.main_recipients = self.main_recipients;
        to.body = self.body;
        to.attachments_note = self.attachments_note;
        to.attachments = self.attachments;
        to.issuing_organ = self.issuing_organ;
        to.notes = self.notes;
        to.cc = self.cc;
        to.printing_organ = self.printing_organ;
        to.distribute_to = self.distribute_to;
        to.publicity = self.publicity;
    }
}

/// The 发文字号: `新机管发〔2026〕12号`.
pub fn document_no(organ_code: &str, year: i32, seq: i64) -> String {
    format!("{organ_code}〔{year}〕{seq}号")
}

/// An incoming document (收文).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Incoming {
    /// 收文号.
    pub no: String,
    pub source_organ: String,
    /// The sending org on the platform; empty for paper.
    pub source_org: String,
    /// The outgoing document it copies, when distributed on the platform.
    pub source_id: String,
    /// The sender's 发文字号.
    pub source_no: String,
    pub doc_type: String,
    pub title: String,
    pub urgency: String,
    pub body: String,
    pub attachments: Vec<String>,
    pub received_on: String,
    /// The month received, `YYYY-MM`.
    pub period: String,
    pub deadline: String,
    pub status: String,
    pub proposal: String,
    pub instruction: String,
    pub lead: String,
    pub assisting: Vec<String>,
    pub reports: Vec<Value>,
    /// 传阅: who was asked to read it and who has.
    pub readers: Vec<Reader>,
    pub completion: String,
    pub archive: Option<Archive>,
    pub timeline: Timeline,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Reader {
    pub user: String,
    pub name: String,
    /// When read, `YYYY-MM-DD`; empty while 待阅.
    pub read_on: String,
}

/// Which action the state of an incoming document allows, or the refusal.
pub fn incoming_next(status: &str, action: &str) -> Result<&'static str> {
    let next = match (status, action) {
        ("registered", "propose") => "proposed",
        ("registered" | "proposed", "instruct") => "instructed",
        ("instructed" | "handling", "report") => "handling",
        ("instructed" | "handling" | "proposed" | "registered", "circulate") => "",
        ("instructed" | "handling", "complete") => "completed",
        ("completed", "archive") => "archived",
        _ => {
            return Err(Error::new(
                409,
                "incoming_state",
                format!("{action} does not fit a document that is {status}"),
            )
            .with_param("status", status.to_string()));
        }
    };
    Ok(next)
}

/// A notice (通知公告), stored at its audience org.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Notice {
    pub title: String,
    pub body: String,
    pub audience: String,
    pub publisher: String,
    pub publisher_name: String,
    pub publisher_org: String,
    pub published_at: i64,
    pub published_on: String,
    pub attachments: Vec<String>,
}

/// That one user read one notice.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Receipt {
    pub notice_id: String,
    pub user: String,
    pub name: String,
    pub at: i64,
}

/// A matter under supervision (督办事项).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Matter {
    pub title: String,
    pub owner: String,
    pub deadline: String,
    pub incoming_id: String,
    pub status: String,
    pub percent: u32,
    pub progress: Vec<Value>,
    pub completion: String,
    pub timeline: Timeline,
}

/// A deadline that has passed for something still open.
pub fn overdue(deadline: &str, today: &str, open: bool) -> bool {
    open && !deadline.is_empty() && deadline < today
}

/// One piece of marked changes between two texts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// `same`, `insert` or `delete`.
    pub op: &'static str,
    pub text: String,
}

/// Sentences and line breaks: the unit changes are first matched in, so
/// a long body stays cheap; characters within a changed stretch after.
fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, c) in text.char_indices() {
        if "。！？；\n".contains(c) || (c == '.' && text[i + 1..].starts_with(' ')) {
            let end = i + c.len_utf8();
            out.push(&text[start..end]);
            start = end;
        }
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

/// The longest common subsequence of `a` and `b` as aligned operations
/// (0 same, 1 insert from `b`, 2 delete from `a`), by dynamic programming:
/// callers keep the inputs small (sentences, or the characters of one
/// changed stretch).
fn align<T: PartialEq>(a: &[T], b: &[T]) -> Vec<(u8, usize)> {
    let (n, m) = (a.len(), b.len());
    let mut table = vec![0u32; (n + 1) * (m + 1)];
    let at = |i: usize, j: usize| i * (m + 1) + j;
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            table[at(i, j)] = if a[i] == b[j] {
                table[at(i + 1, j + 1)] + 1
            } else {
                table[at(i + 1, j)].max(table[at(i, j + 1)])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut ops = Vec::with_capacity(n + m);
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            ops.push((0, i));
            i += 1;
            j += 1;
        } else if j < m && (i == n || table[at(i, j + 1)] >= table[at(i + 1, j)]) {
            ops.push((1, j));
            j += 1;
        } else {
            ops.push((2, i));
            i += 1;
        }
    }
    ops
}

/// Past this many cells a changed stretch is shown as deleted and
/// inserted whole rather than aligned character by character.
const MAX_CELLS: usize = 4_000_000;

/// The marked changes (痕迹) that turn `old` into `new`: sentences aligned
/// first, then the characters of each changed stretch, adjacent pieces of
/// one kind merged.
pub fn diff(old: &str, new: &str) -> Vec<Change> {
    let (a, b) = (sentences(old), sentences(new));
    let mut out: Vec<Change> = Vec::new();
    let mut push = |op: &'static str, text: &str| {
        if text.is_empty() {
            return;
        }
        match out.last_mut() {
            Some(last) if last.op == op => last.text.push_str(text),
            _ => out.push(Change {
                op,
                text: text.to_string(),
            }),
        }
    };
    let ops = align(&a, &b);
    let mut k = 0;
    while k < ops.len() {
        if ops[k].0 == 0 {
            push("same", a[ops[k].1]);
            k += 1;
            continue;
        }
        // A stretch of changed sentences: align its characters.
        let (mut removed, mut added) = (String::new(), String::new());
        while k < ops.len() && ops[k].0 != 0 {
            match ops[k] {
                (1, j) => added.push_str(b[j]),
                (_, i) => removed.push_str(a[i]),
            }
            k += 1;
        }
        let x: Vec<char> = removed.chars().collect();
        let y: Vec<char> = added.chars().collect();
        if (x.len() + 1) * (y.len() + 1) > MAX_CELLS {
            push("delete", &removed);
            push("insert", &added);
            continue;
        }
        let mut pieces: Vec<(&'static str, String)> = Vec::new();
        for (op, index) in align(&x, &y) {
            let (kind, c) = match op {
                0 => ("same", x[index]),
                1 => ("insert", y[index]),
                _ => ("delete", x[index]),
            };
            match pieces.last_mut() {
                Some((k, text)) if *k == kind => text.push(c),
                _ => pieces.push((kind, c.to_string())),
            }
        }
        for (kind, text) in readable(pieces) {
            push(kind, &text);
        }
    }
    out
}

/// Character changes as a reader marks them: a kept character or two
/// between changes (`请于[+4][-3]月[+15日][-底]前`) counts as changed, and
/// each run of changes reads as what was struck, then what was written
/// (`请于[-3月底][+4月15日]前`).
fn readable(pieces: Vec<(&'static str, String)>) -> Vec<(&'static str, String)> {
    let n = pieces.len();
    let mut out: Vec<(&'static str, String)> = Vec::new();
    let (mut deleted, mut inserted) = (String::new(), String::new());
    for (i, (kind, text)) in pieces.into_iter().enumerate() {
        let short_gap = kind == "same" && i > 0 && i + 1 < n && text.chars().count() <= 2;
        match kind {
            "delete" => deleted.push_str(&text),
            "insert" => inserted.push_str(&text),
            _ if short_gap => {
                deleted.push_str(&text);
                inserted.push_str(&text);
            }
            _ => {
                for (k, t) in [("delete", &mut deleted), ("insert", &mut inserted)] {
                    if !t.is_empty() {
                        out.push((k, std::mem::take(t)));
                    }
                }
                out.push((kind, text));
            }
        }
    }
    for (k, t) in [("delete", deleted), ("insert", inserted)] {
        if !t.is_empty() {
            out.push((k, t));
        }
    }
    out
}

/// A piece of a search snippet; `hit` on the matched phrase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Piece {
    pub text: String,
    pub hit: bool,
}

/// Up to `context` characters either side of the first match of `phrase`
/// in `text`, every match within marked; `None` when it does not occur.
/// Case-insensitive for Latin letters, as the storage filter is.
pub fn snippet(text: &str, phrase: &str, context: usize) -> Option<Vec<Piece>> {
    let chars: Vec<char> = text.chars().collect();
    let needle: Vec<char> = phrase.chars().flat_map(char::to_lowercase).collect();
    if needle.is_empty() {
        return None;
    }
    let lower: Vec<char> = chars
        .iter()
        .map(|c| c.to_lowercase().next().unwrap_or(*c))
        .collect();
    let find_from = |from: usize| {
        (from..=lower.len().saturating_sub(needle.len()))
            .find(|&i| lower.len() >= needle.len() && lower[i..i + needle.len()] == needle[..])
    };
    let first = find_from(0)?;
    let start = first.saturating_sub(context);
    let end = (first + needle.len() + context).min(chars.len());
    let mut pieces = Vec::new();
    let mut plain = String::new();
    if start > 0 {
        plain.push('…');
    }
    let mut i = start;
    while i < end {
        if i + needle.len() <= end && lower[i..i + needle.len()] == needle[..] {
            if !plain.is_empty() {
                pieces.push(Piece {
                    text: std::mem::take(&mut plain),
                    hit: false,
                });
            }
            pieces.push(Piece {
                text: chars[i..i + needle.len()].iter().collect(),
                hit: true,
            });
            i += needle.len();
        } else {
            plain.push(chars[i]);
            i += 1;
        }
    }
    if end < chars.len() {
        plain.push('…');
    }
    if !plain.is_empty() {
        pieces.push(Piece {
            text: plain,
            hit: false,
        });
    }
    Some(pieces)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft() -> OutgoingInput {
        OutgoingInput {
            doc_type: "notice".into(),
            organ_code: "新机管发".into(),
            title: " 关于做好2027年度节能工作的通知 ".into(),
            body: "各单位：现将有关事项通知如下。".into(),
            distribute_to: vec!["org-a".into(), " org-a".into(), "org-b".into()],
            ..OutgoingInput::default()
        }
    }

    #[test]
    fn a_draft_is_trimmed_defaulted_and_its_recipients_deduplicated() {
        let d = draft().validated().unwrap();
        assert_eq!(d.title, "关于做好2027年度节能工作的通知");
        assert_eq!(
            (
                d.urgency.as_str(),
                d.classification.as_str(),
                d.publicity.as_str()
            ),
            ("normal", "none", "not_public")
        );
        assert_eq!(d.distribute_to, ["org-a", "org-b"]);
    }

    #[test]
    fn each_element_is_refused_naming_its_field() {
        let refused = |f: fn(&mut OutgoingInput)| {
            let mut d = draft();
            f(&mut d);
            let e = d.validated().unwrap_err();
            (e.code().to_string(), e.field().unwrap_or("").to_string())
        };
        let pair = |c: &str, f: &str| (c.to_string(), f.to_string());
        assert_eq!(
            refused(|d| d.title = " ".into()),
            pair("title_required", "title")
        );
        assert_eq!(
            refused(|d| d.title = "长".repeat(201)),
            pair("title_too_long", "title")
        );
        assert_eq!(
            refused(|d| d.doc_type = "memo".into()).1,
            "doc_type".to_string()
        );
        assert_eq!(
            refused(|d| d.classification = "secret".into()),
            pair("classified_not_allowed", "classification")
        );
        assert_eq!(
            refused(|d| d.copy_no = "12a".into()),
            pair("copy_no_invalid", "copy_no")
        );
        assert_eq!(
            refused(|d| d.organ_code = String::new()),
            pair("organ_code_required", "organ_code")
        );
        assert_eq!(
            refused(|d| d.organ_code = "新〔机〕".into()),
            pair("organ_code_invalid", "organ_code")
        );
        assert_eq!(
            refused(|d| d.doc_type = "request".into()),
            pair("signer_required", "signer")
        );
        assert_eq!(
            refused(|d| d.body = "字".repeat(MAX_BODY)),
            pair("body_too_long", "body")
        );
    }

    #[test]
    fn numbers_are_written_as_gbt_9704_has_them() {
        assert_eq!(document_no("新机管发", 2026, 7), "新机管发〔2026〕7号");
    }

    #[test]
    fn incoming_actions_follow_the_state() {
        assert_eq!(incoming_next("registered", "propose").unwrap(), "proposed");
        assert_eq!(incoming_next("proposed", "instruct").unwrap(), "instructed");
        assert_eq!(incoming_next("instructed", "report").unwrap(), "handling");
        assert_eq!(incoming_next("handling", "complete").unwrap(), "completed");
        assert_eq!(incoming_next("completed", "archive").unwrap(), "archived");
        let e = incoming_next("registered", "complete").unwrap_err();
        assert_eq!((e.status(), e.code()), (409, "incoming_state"));
        assert!(incoming_next("archived", "report").is_err());
    }

    fn render(changes: &[Change]) -> String {
        changes
            .iter()
            .map(|c| match c.op {
                "insert" => format!("[+{}]", c.text),
                "delete" => format!("[-{}]", c.text),
                _ => c.text.clone(),
            })
            .collect()
    }

    #[test]
    fn changes_are_marked_by_character_within_changed_sentences() {
        let old = "各单位：现将有关事项通知如下。请于3月底前报送。";
        let new = "各单位：现将有关事项通知如下。请于4月15日前报送材料。";
        assert_eq!(
            render(&diff(old, new)),
            "各单位：现将有关事项通知如下。请于[-3月底][+4月15日]前报送[+材料]。"
        );
        // Applying the changes gives both texts back.
        let changes = diff(old, new);
        let keep = |skip: &str| -> String {
            changes
                .iter()
                .filter(|c| c.op != skip)
                .map(|c| c.text.as_str())
                .collect()
        };
        assert_eq!((keep("insert"), keep("delete")), (old.into(), new.into()));
    }

    #[test]
    fn sentences_added_and_removed_whole() {
        assert_eq!(
            render(&diff("一。二。三。", "一。三。四。")),
            "一。[-二。]三。[+四。]"
        );
        assert!(diff("同", "同").iter().all(|c| c.op == "same"));
        assert_eq!(render(&diff("", "新")), "[+新]");
    }

    #[test]
    fn a_long_rewrite_stays_bounded() {
        let old = "甲".repeat(3000);
        let new = "乙".repeat(3000);
        let changes = diff(&old, &new);
        assert_eq!(changes.len(), 2, "{changes:?}");
    }

    #[test]
    fn snippets_mark_every_hit_around_the_first() {
        let pieces = snippet("关于节能的通知：各单位节能工作", "节能", 3).unwrap();
        let shown: String = pieces
            .iter()
            .map(|p| {
                if p.hit {
                    format!("<{}>", p.text)
                } else {
                    p.text.clone()
                }
            })
            .collect();
        assert_eq!(shown, "关于<节能>的通知…");
        assert_eq!(
            snippet("Energy SAVING", "saving", 20).unwrap()[1].text,
            "SAVING"
        );
        assert!(snippet("无关", "节能", 5).is_none());
    }

    #[test]
    fn overdue_only_while_open() {
        assert!(overdue("2026-01-01", "2026-02-01", true));
        assert!(!overdue("2026-01-01", "2026-02-01", false));
        assert!(!overdue("", "2026-02-01", true));
    }
}
