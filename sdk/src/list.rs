//! List endpoints: `?limit=`/`?cursor=` paging parsed once, filters checked
//! against their allowed values (422 naming the field), a sort allowlist
//! (`?sort=name`, `?sort=-name`), the total, and the same query exported
//! as CSV or XLSX (`?format=`).
//!
//! ```ignore
//! use tianshan_sdk::list;
//! fn index(req: &Request) -> Result<Response> {
//!     let find = collection("rooms").find();
//!     let find = list::filter_vocab(find, req, "status", &STATUS)?;
//!     let find = list::sorted(find, req, &["name", "floor"], "name")?;
//!     list::respond(req, &find, "rooms", &[("名称 Name", "/data/name"), ("楼层 Floor", "/data/floor")])
//! }
//! ```

use crate::storage::Find;
use crate::vocab::Vocab;
use crate::{Error, Request, Response, Result, export};

/// The most a page may hold, and the default.
pub const MAX_LIMIT: u32 = 200;
pub const DEFAULT_LIMIT: u32 = 20;

/// `?limit=` (1–200, default 20) and `?cursor=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paging {
    pub limit: u32,
    pub cursor: Option<String>,
}

impl Paging {
    pub fn of(req: &Request) -> Result<Paging> {
        let limit = match req.query_param("limit").filter(|l| !l.is_empty()) {
            Some(l) => l
                .parse::<u32>()
                .ok()
                .filter(|l| (1..=MAX_LIMIT).contains(l))
                .ok_or_else(|| {
                    Error::validation("limit", format!("limit must be 1-{MAX_LIMIT}"))
                })?,
            None => DEFAULT_LIMIT,
        };
        Ok(Paging {
            limit,
            cursor: req.query_param("cursor").filter(|c| !c.is_empty()),
        })
    }

    /// `find` limited to this page.
    pub fn apply(&self, find: Find) -> Find {
        find.limit(self.limit).cursor(self.cursor.clone())
    }
}

/// `find` narrowed to `?{field}=` when the request gives one, refused with
/// a validation error naming `field` unless it is one of `allowed`.
pub fn filter_one_of(find: Find, req: &Request, field: &str, allowed: &[&str]) -> Result<Find> {
    match req.query_param(field).filter(|v| !v.is_empty()) {
        None => Ok(find),
        Some(v) if allowed.contains(&v.as_str()) => Ok(find.eq(field, v)),
        Some(_) => Err(Error::validation(
            field,
            format!("{field} is one of {}", allowed.join(", ")),
        )),
    }
}

/// Like [`filter_one_of`] with a vocabulary; a label (`在用`) means its code.
pub fn filter_vocab(find: Find, req: &Request, field: &str, vocab: &Vocab) -> Result<Find> {
    match req.query_param(field).filter(|v| !v.is_empty()) {
        None => Ok(find),
        Some(v) => match vocab.resolve(&v) {
            Some(code) => Ok(find.eq(field, code)),
            None => Err(vocab.refusal(field)),
        },
    }
}

/// `find` narrowed to `?{field}=` for each of `fields` the request gives:
/// free values such as ids, which no allowlist holds.
pub fn filter_eq(fields: &[&str], find: Find, req: &Request) -> Find {
    fields.iter().fold(find, |find, field| {
        match req.query_param(field).filter(|v| !v.is_empty()) {
            Some(v) => find.eq(field, v),
            None => find,
        }
    })
}

/// `find` within `?org=` (that org's subtree) when the request names one;
/// the kernel refuses an org out of the caller's reach.
pub fn within_org(find: Find, req: &Request) -> Find {
    find.within(req.query_param("org").filter(|o| !o.is_empty()))
}

/// `find` sorted by `?sort=` (`field` ascending, `-field` descending),
/// `default` when absent; a field outside `allowed` is refused.
pub fn sorted(find: Find, req: &Request, allowed: &[&str], default: &str) -> Result<Find> {
    let sort = req
        .query_param("sort")
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| default.to_string());
    let (field, descending) = match sort.strip_prefix('-') {
        Some(f) => (f, true),
        None => (sort.as_str(), false),
    };
    if !allowed.contains(&field) {
        return Err(Error::validation(
            "sort",
            format!("sort by one of {}", allowed.join(", ")),
        ));
    }
    Ok(if descending {
        find.sort_desc(field)
    } else {
        find.sort(field)
    })
}

/// A list endpoint's answer: the file when `?format=` asks for one
/// (columns as in [`export::records`]), else a page with the total
/// (`?total=false` skips counting).
pub fn respond(
    req: &Request,
    find: &Find,
    name: &str,
    columns: &[(&str, &str)],
) -> Result<Response> {
    if let Some(format) = export::wanted(req)? {
        return export::respond(&export::records(find, name, columns)?, format);
    }
    page(req, find)
}

/// One page of `find` as JSON, with the total unless `?total=false`.
pub fn page(req: &Request, find: &Find) -> Result<Response> {
    let mut find = Paging::of(req)?.apply(find.clone());
    if req.query_param("total").as_deref() != Some("false") {
        find = find.with_total();
    }
    Ok(Response::json(&find.page::<serde_json::Value>()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paging(query: &str) -> Result<Paging> {
        Paging::of(&Request::new("GET", "/rooms").with_query(query))
    }

    #[test]
    fn limit_and_cursor_are_read_once() {
        assert_eq!(
            paging("").unwrap(),
            Paging {
                limit: DEFAULT_LIMIT,
                cursor: None
            }
        );
        assert_eq!(
            paging("limit=50&cursor=abc%3D").unwrap(),
            Paging {
                limit: 50,
                cursor: Some("abc=".into())
            }
        );
        // Empty values are absent values (a form's blank field).
        assert_eq!(paging("limit=&cursor=").unwrap(), paging("").unwrap());
        assert_eq!(paging("limit=200").unwrap().limit, MAX_LIMIT);
    }

    #[test]
    fn free_filters_take_what_the_query_gives() {
        let req = Request::new("GET", "/items").with_query("warehouse_id=w1&card_org=&x=1");
        let find = filter_eq(
            &["warehouse_id", "card_org"],
            crate::storage::collection("items").find(),
            &req,
        );
        assert_eq!(
            find.conditions(),
            vec![("warehouse_id".to_string(), "\"w1\"".to_string())]
        );
    }

    #[test]
    fn a_bad_limit_names_the_field() {
        for bad in ["limit=0", "limit=201", "limit=ten", "limit=-1"] {
            let e = paging(bad).unwrap_err();
            assert_eq!((e.status(), e.field()), (422, Some("limit")), "{bad}");
        }
    }
}
