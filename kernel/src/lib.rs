//! The Tianshan kernel. See `docs/architecture.md` for the path of one
//! request through these modules.

pub mod api;
pub mod audit;
pub mod auth;
pub mod authz;
pub mod config;
pub mod db;
pub mod error;
pub mod gateway;
pub mod metrics;
pub mod orgs;
pub mod package;
pub mod plugins;
pub mod runtime;
pub mod tooling;
pub mod users;

use std::sync::Arc;

use crate::config::Config;
use crate::db::Db;
use crate::metrics::Metrics;
use crate::runtime::{Runtime, RuntimeStats};

/// Everything one kernel process holds. Cheap to share (`Arc<Kernel>`).
pub struct Kernel {
    pub config: Config,
    pub db: Db,
    pub runtime: Arc<Runtime>,
    pub plugins: plugins::Plugins,
    pub auth: auth::Auth,
    pub authz: Arc<authz::Authz>,
    pub audit: audit::Audit,
    pub throttle: users::Throttle,
    pub metrics: Arc<Metrics>,
    pub root_org: String,
}

/// What opening a kernel found or created.
pub struct Opened {
    pub kernel: Arc<Kernel>,
    /// Set on first start when the admin password was generated: print it once.
    pub generated_admin_password: Option<String>,
}

impl Kernel {
    /// Opens the data dir: database (migrated), runtime, installed plugins,
    /// bootstrap admin.
    pub async fn open(config: Config) -> anyhow::Result<Opened> {
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|e| anyhow::anyhow!("creating data dir {}: {e}", config.data_dir.display()))?;
        let db = db::connect(&config.database_url()).await?;
        let metrics = Arc::new(Metrics::new());
        let stats = RuntimeStats {
            compilations: metrics.compilations.clone(),
            cache_hits: metrics.compile_cache_hits.clone(),
        };
        let runtime = Arc::new(Runtime::new(
            config.runtime.clone(),
            config.cache_dir(),
            stats,
        )?);
        let root_org = orgs::ensure_root(&db).await?;
        let auth = auth::Auth::new(db.clone(), config.auth.clone());
        let bootstrap = auth.ensure_bootstrap_admin(&root_org).await?;
        let audit = audit::Audit::new(db.clone());
        if bootstrap.is_some() {
            audit
                .record(
                    audit::Entry::new("system", "user.bootstrap", "ok")
                        .org(&root_org)
                        .target("admin")
                        .detail(serde_json::json!({ "role": authz::PLATFORM_ADMIN })),
                )
                .await;
        }
        let generated_admin_password = bootstrap.flatten();
        let authz = Arc::new(authz::Authz::new(db.clone()).await?);
        runtime.set_access_policy(Arc::new(authz::PluginAccess(authz.clone())));
        let plugins = plugins::Plugins::new(
            db.clone(),
            runtime.clone(),
            authz.clone(),
            config.max_package_bytes,
        );
        let loaded = plugins.load_installed().await?;
        tracing::info!(plugins = loaded, data_dir = %config.data_dir.display(), "kernel opened");
        Ok(Opened {
            kernel: Arc::new(Kernel {
                audit,
                config,
                db,
                runtime,
                plugins,
                auth,
                authz,
                throttle: users::Throttle::default(),
                metrics,
                root_org,
            }),
            generated_admin_password,
        })
    }

    pub fn router(self: &Arc<Self>) -> axum::Router {
        gateway::router(self.clone())
    }

    /// Serves the gateway on `listener` until `shutdown` resolves; in-flight
    /// requests finish first.
    pub async fn serve(
        self: &Arc<Self>,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let app = self
            .router()
            .into_make_service_with_connect_info::<std::net::SocketAddr>();
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await?;
        Ok(())
    }
}
