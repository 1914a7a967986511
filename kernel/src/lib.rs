//! The Tianshan kernel. See `docs/architecture.md` for the path of one
//! request through these modules and the layer each folder sits at.
//!
//! Layers, lowest first; a module imports only modules at its own layer or
//! below (`tests/all/layers.rs` checks it):
//! 1. `core` — ids, calendar, localized text, the caller's scope, the error
//!    type, configuration;
//! 2. `db`, `metrics`, `cluster` — the database, counters, node signals;
//! 3. `audit` — the chain and the one audited write;
//! 4. `identity` — users, orgs, roles, sessions;
//! 5. `services` — storage, messaging, files, approvals, data center, jobs;
//! 6. `plugins`, `runtime` — packages and the registry; the wasm engine
//!    and each service's WIT face (`runtime/host/<service>.rs`);
//! 7. `node` — the [`Kernel`] one process holds and its background loops;
//! 8. `http` — the router, sessions, the plugin proxy, the kernel API and
//!    the services' kernel routes (`http/<service>.rs`).

pub mod audit;
pub mod cluster;
pub mod core;
pub mod db;
pub mod http;
pub mod identity;
pub mod metrics;
pub mod node;
pub mod plugins;
pub mod runtime;
pub mod services;

pub use node::{Kernel, Opened};

use std::sync::Arc;

use crate::core::config::Config;
use crate::http::routes::Routes;

/// One host service as the kernel assembles it: the kernel routes people
/// use it through (`http/<service>.rs`, if it has any) and the import
/// plugins use it through (`runtime/host/<service>.rs`). Adding a host
/// service is a folder under `services/`, its two faces, its interface in
/// `wit/plugin.wit`, and one line below (`docs/architecture.md`, "Adding a
/// host service").
pub struct HostService {
    pub name: &'static str,
    pub routes: Option<fn() -> Routes>,
    pub link: runtime::LinkHostService,
}

/// Every host service, in the order their routes and imports are added.
pub const HOST_SERVICES: &[HostService] = &[
    HostService {
        name: "storage",
        routes: None,
        link: runtime::host::storage::add_to_linker,
    },
    HostService {
        name: "messaging",
        routes: None,
        link: runtime::host::messaging::add_to_linker,
    },
    HostService {
        name: "files",
        routes: None,
        link: runtime::host::files::add_to_linker,
    },
    HostService {
        name: "approvals",
        routes: Some(http::approvals::routes),
        link: runtime::host::approvals::add_to_linker,
    },
    HostService {
        name: "datacenter",
        routes: Some(http::datacenter::routes),
        link: runtime::host::datacenter::add_to_linker,
    },
    HostService {
        name: "orgs",
        routes: None,
        link: runtime::host::orgs::add_to_linker,
    },
    HostService {
        name: "telemetry",
        routes: Some(http::telemetry::routes),
        link: runtime::host::telemetry::add_to_linker,
    },
];

/// The kernel API: its own routes and every host service's.
pub fn kernel_routes() -> Routes {
    HOST_SERVICES
        .iter()
        .filter_map(|service| service.routes)
        .fold(
            http::api::routes()
                .merge(http::notifications::routes())
                .merge(http::dashboards::routes()),
            |routes, service| routes.merge(service()),
        )
}

/// Every kernel API route as (method, path template), read off the routes
/// themselves: what the OpenAPI document lists and the access-table test
/// walks.
pub fn route_table() -> Vec<(&'static str, String)> {
    kernel_routes().table()
}

impl Kernel {
    /// Opens the data dir: database (migrated), runtime with every host
    /// service linked, installed plugins, bootstrap admin.
    pub async fn open(config: Config) -> anyhow::Result<Opened> {
        let links: Vec<runtime::LinkHostService> = HOST_SERVICES.iter().map(|s| s.link).collect();
        Kernel::assemble(config, &links).await
    }

    pub fn router(self: &Arc<Self>) -> axum::Router {
        // Every request on its own task, so a client hanging up cannot cut
        // a handler short (see `http::detach`).
        http::gateway::router(self.clone(), kernel_routes())
            .layer(axum::middleware::from_fn(http::detach::run_detached))
    }

    /// Serves the gateway on `listener` until `shutdown` resolves; in-flight
    /// requests finish first.
    pub async fn serve(
        self: &Arc<Self>,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        http::health::serve_metrics(self.clone()).await?;
        let app = self
            .router()
            .into_make_service_with_connect_info::<std::net::SocketAddr>();
        // Live streams never end by themselves: they end when shutdown
        // begins, so the in-flight requests can finish.
        let live = self.telemetry.live.clone();
        let datacenter = self.datacenter.clone();
        let notification_streams = self.notifications.streams.clone();
        let shutdown = async move {
            shutdown.await;
            live.close();
            datacenter.close_streams();
            notification_streams.close();
        };
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await?;
        Ok(())
    }
}
