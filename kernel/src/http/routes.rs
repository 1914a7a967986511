//! The kernel API's routes, declared once: each module adds its handlers to
//! a [`Routes`], which builds the axum router and keeps the table of
//! (method, path template) that the OpenAPI document and the access-table
//! test read. No route can be served without being listed, or listed
//! without being served.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::handler::Handler;
use axum::routing::{MethodRouter, delete, get, patch, post, put};

use crate::node::Kernel;

type AppState = Arc<Kernel>;

#[derive(Default)]
pub struct Routes {
    paths: BTreeMap<&'static str, MethodRouter<AppState>>,
    table: Vec<(&'static str, String)>,
}

macro_rules! method {
    ($name:ident, $method:literal, $route:ident) => {
        pub fn $name<H, T>(self, path: &'static str, handler: H) -> Self
        where
            H: Handler<T, AppState>,
            T: 'static,
        {
            self.add($method, path, path.to_string(), $route(handler))
        }
    };
}

impl Routes {
    pub fn new() -> Self {
        Self::default()
    }

    method!(get, "GET", get);
    method!(post, "POST", post);
    method!(put, "PUT", put);
    method!(patch, "PATCH", patch);
    method!(delete, "DELETE", delete);

    /// One POST handler for a template whose last segment is one of
    /// `actions` (`/approvals/{id}/{action}`); the table lists each action.
    pub fn post_each<H, T>(
        mut self,
        template: &'static str,
        placeholder: &str,
        actions: &[&str],
        handler: H,
    ) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        for action in actions {
            self.table
                .push(("POST", template.replace(placeholder, action)));
        }
        self.merge_path(template, post(handler))
    }

    fn add(
        mut self,
        method: &'static str,
        path: &'static str,
        listed: String,
        route: MethodRouter<AppState>,
    ) -> Self {
        self.table.push((method, listed));
        self.merge_path(path, route)
    }

    fn merge_path(mut self, path: &'static str, route: MethodRouter<AppState>) -> Self {
        let merged = match self.paths.remove(path) {
            Some(existing) => existing.merge(route),
            None => route,
        };
        self.paths.insert(path, merged);
        self
    }

    /// Another module's routes next to these.
    pub fn merge(mut self, other: Routes) -> Self {
        self.table.extend(other.table);
        for (path, route) in other.paths {
            self = self.merge_path(path, route);
        }
        self
    }

    /// Every (method, path template) served, in declaration order.
    pub fn table(&self) -> Vec<(&'static str, String)> {
        self.table.clone()
    }

    pub fn into_router(self) -> Router<AppState> {
        self.paths
            .into_iter()
            .fold(Router::new(), |router, (path, route)| {
                router.route(path, route)
            })
    }
}
