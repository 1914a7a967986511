//! `tianshan`: the kernel server and its operator and plugin-author CLI.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use tianshan_kernel::Kernel;
use tianshan_kernel::core::config::Config;
use tianshan_kernel::identity::orgs;
use tianshan_kernel::plugins::tooling;
use tianshan_kernel::services::telemetry;

#[derive(Parser)]
#[command(
    name = "tianshan",
    version,
    about = "Tianshan: the government offices administration platform"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the kernel.
    Serve(ServeArgs),
    /// Demo start: build and install every bundled plugin, seed the demo org
    /// tree, then serve.
    Up(ServeArgs),
    /// Write, build, pack and manage plugins.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Inspect the audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Write a consistent backup of a data dir (database, file content,
    /// installed packages) to one archive, while the kernel serves.
    Backup {
        #[command(flatten)]
        common: CommonArgs,
        /// The archive to write (must not exist), e.g. tianshan-2026-12-01.tar.gz.
        #[arg(long)]
        out: PathBuf,
    },
    /// Restore a backup into a new, empty data dir (and, for a PostgreSQL
    /// backup, into the empty database given by --database-url).
    Restore {
        /// The archive `tianshan backup` wrote.
        #[arg(long)]
        from: PathBuf,
        #[command(flatten)]
        common: CommonArgs,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the keyed hash chain (and, given anchors, that its tail was not
    /// cut); exits non-zero naming the first bad record.
    Verify {
        #[command(flatten)]
        common: CommonArgs,
        /// Anchor file to check against [default: the configured anchor
        /// file, when it exists].
        #[arg(long)]
        anchors: Option<PathBuf>,
    },
}

#[derive(Args, Clone)]
struct ServeArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long)]
    listen: Option<SocketAddr>,
}

#[derive(Args, Clone)]
struct CommonArgs {
    /// Config file (see deploy/tianshan.toml).
    #[arg(long, env = "TIANSHAN_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory [default: ./data].
    #[arg(long, env = "TIANSHAN_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Database URL [default: sqlite://DATA_DIR/tianshan.db].
    #[arg(long, env = "TIANSHAN_DATABASE_URL")]
    database_url: Option<String>,
    /// NATS server for multi-node deployments, e.g. nats://127.0.0.1:4222.
    #[arg(long, env = "TIANSHAN_NATS_URL")]
    nats_url: Option<String>,
    /// MQTT broker telemetry readings come from, e.g. mqtt://127.0.0.1:1883.
    #[arg(long, env = "TIANSHAN_MQTT_URL")]
    mqtt_url: Option<String>,
    /// Where JT/T 808 vehicle terminals connect, e.g. 0.0.0.0:7808.
    #[arg(long, env = "TIANSHAN_JT808_LISTEN")]
    jt808_listen: Option<std::net::SocketAddr>,
    /// This node's name in logs and job claims [default: HOST:PID].
    #[arg(long, env = "TIANSHAN_NODE_ID")]
    node_id: Option<String>,
    /// The audit chain's HMAC key file [default: tianshan-audit.key beside
    /// the data dir; created at first start].
    #[arg(long, env = "TIANSHAN_AUDIT_KEY_FILE")]
    audit_key_file: Option<PathBuf>,
}

impl CommonArgs {
    fn config(&self) -> anyhow::Result<Config> {
        let mut config = match &self.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        if let Some(dir) = &self.data_dir {
            config.data_dir = dir.clone();
        }
        if let Some(url) = &self.database_url {
            config.database_url = Some(url.clone());
        }
        if let Some(url) = &self.nats_url {
            config.nats_url = Some(url.clone());
        }
        if let Some(url) = &self.mqtt_url {
            config.telemetry.mqtt_url = Some(url.clone());
        }
        if let Some(addr) = self.jt808_listen {
            config.telemetry.jt808_listen = Some(addr);
        }
        if let Some(node) = &self.node_id {
            config.node_id = Some(node.clone());
        }
        if let Some(key) = &self.audit_key_file {
            config.audit.key_file = Some(key.clone());
        }
        Ok(config)
    }
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Create a working plugin from the template in ./NAME.
    New {
        name: String,
        /// Where the Tianshan SDK is [default: the sdk/ this binary was built from].
        #[arg(long)]
        sdk_path: Option<PathBuf>,
    },
    /// Build the plugin in the current (or given) folder for wasm32-wasip2.
    Build {
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Pack plugin.toml, the built component and ui/ into NAME-VERSION.tspkg.
    Pack {
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// The component to pack [default: what `tianshan plugin build` made].
        #[arg(long)]
        wasm: Option<PathBuf>,
        /// Output folder [default: the plugin folder].
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Install a package into a data dir (offline; restart a running kernel to pick it up).
    Install {
        package: PathBuf,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Upgrade an installed plugin from a package (offline).
    Upgrade {
        package: PathBuf,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// List installed plugins (offline).
    List {
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Enable a plugin (offline).
    Enable {
        id: String,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Disable a plugin (offline).
    Disable {
        id: String,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Uninstall a plugin (offline).
    Uninstall {
        id: String,
        #[command(flatten)]
        common: CommonArgs,
    },
}

fn init_tracing(config: &Config) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.log.filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    if config.log.format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve(args, false).await,
        Command::Up(args) => serve(args, true).await,
        Command::Plugin(command) => plugin(command).await,
        Command::Audit(AuditCommand::Verify { common, anchors }) => {
            audit_verify(&common, anchors).await
        }
        Command::Backup { common, out } => {
            let config = common.config()?;
            let manifest = tianshan_kernel::node::backup::backup(&config, &out).await?;
            let bytes: u64 = manifest.entries.iter().map(|e| e.size).sum();
            println!(
                "Backed up {} ({} database, schema {}, {} audit records, {} file(s), {} KiB before compression) to {}",
                config.data_dir.display(),
                manifest.database,
                manifest.schema_version,
                manifest.audit_records,
                manifest.entries.len() - 1,
                bytes / 1024,
                out.display()
            );
            if manifest.files_backend == "s3" {
                println!(
                    "File content is in the S3 bucket, not in this backup: back the bucket up."
                );
            }
            Ok(())
        }
        Command::Restore { from, common } => {
            let config = common.config()?;
            let manifest = tianshan_kernel::node::backup::restore(&from, &config).await?;
            println!(
                "Restored {} (taken {} by tianshan {}, {} audit records, {} file(s)) into {}; every checksum matched",
                from.display(),
                manifest.created_at,
                manifest.kernel_version,
                manifest.audit_records,
                manifest.entries.len() - 1,
                config.data_dir.display()
            );
            println!(
                "The audit key is not in backups: verify with the original key, e.g. \
                 tianshan audit verify --data-dir {} --audit-key-file {}",
                config.data_dir.display(),
                config.audit_key_file().display()
            );
            Ok(())
        }
    }
}

async fn serve(args: ServeArgs, demo: bool) -> anyhow::Result<()> {
    let mut config = args.common.config()?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    init_tracing(&config);
    let listen = config.listen;
    let opened = Kernel::open(config).await?;
    let kernel = opened.kernel;
    let mut demo_password = None;
    if demo {
        let seeded = orgs::seed_demo_tree(&kernel.db).await?;
        tracing::info!(orgs = seeded, "demo org tree in place");
        demo_password = orgs::seed_demo_users(&kernel.db)
            .await
            .map_err(|e| anyhow::anyhow!("seeding demo users: {}", e.message))?;
        kernel.authz.reload().await?;
        if demo_password.is_some() {
            let names: Vec<&str> = orgs::DEMO_USERS.iter().map(|u| u.0).collect();
            kernel
                .audit
                .record(
                    tianshan_kernel::audit::Entry::new("system", "demo.seed", "ok")
                        .org(&kernel.root_org)
                        .detail(serde_json::json!({ "users": names })),
                )
                .await;
        }
        install_bundled(&kernel).await?;
        // Less to show, not a failed start.
        if let Err(e) = seed_demo_dashboard(&kernel).await {
            tracing::warn!(error = %e, "demo dashboard skipped");
        }
        match demo_fleet(&kernel).await {
            Ok(terminals) if !terminals.is_empty() => {
                tracing::info!(terminals = terminals.len(), "demo terminals driving");
                tokio::spawn(telemetry::demo::drive(
                    kernel.telemetry.clone(),
                    terminals,
                    std::time::Duration::from_secs(5),
                ));
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "demo terminals stay parked"),
        }
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    if let Some(password) = &opened.generated_admin_password {
        println!();
        println!("  Tianshan first start: administrator account created");
        println!("    username: admin");
        println!("    password: {password}");
        println!("  (shown once; set TIANSHAN_ADMIN_PASSWORD before first start to choose it)");
        println!();
    }
    if let Some(password) = &demo_password {
        println!("  Demo accounts (password: {password}):");
        for (username, display, _, role) in orgs::DEMO_USERS {
            println!("    {username:<14} {role:<10} {display}");
        }
        println!();
    }
    let bound = listener.local_addr()?;
    println!("Tianshan is serving on http://{bound}/  (health: /healthz, metrics: /metrics)");
    kernel.start_background();
    kernel.serve(listener, shutdown_signal()).await
}

/// Builds every plugin under plugins/ and installs or upgrades it.
async fn install_bundled(kernel: &Kernel) -> anyhow::Result<()> {
    let bundled = tooling::bundled_plugins("plugins")?;
    if bundled.is_empty() {
        return Ok(());
    }
    let out = kernel.config.data_dir.join("bundled");
    let packages =
        tokio::task::spawn_blocking(move || tooling::build_and_pack_bundled(&bundled, &out, false))
            .await??;
    for path in packages {
        let bytes = std::fs::read(&path)?;
        let package = tianshan_kernel::plugins::package::Package::from_bytes(&bytes, usize::MAX)
            .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.message))?;
        let id = package.manifest.id.clone();
        let first_install = kernel.plugins.get(&id).is_none();
        let result = match kernel.plugins.get(&id) {
            None => kernel
                .plugins
                .install(&bytes, None)
                .await
                .map(|o| format!("installed {id} {}", o.version)),
            Some(current) if current.manifest.version < package.manifest.version => kernel
                .plugins
                .upgrade(
                    Some(&id),
                    &bytes,
                    tianshan_kernel::audit::Entry::new("system", "plugin.upgrade", "ok")
                        .org(&kernel.root_org),
                )
                .await
                .map(|o| format!("upgraded {id} to {}", o.version)),
            Some(current) => Ok(format!(
                "{id} {} already installed",
                current.manifest.version
            )),
        };
        match result {
            Ok(message) => tracing::info!("{message}"),
            Err(e) => anyhow::bail!("bundled plugin {id}: {}", e.message),
        }
        // Bundled plugins are the platform's own: their subscriptions are
        // granted as shipped.
        kernel
            .messaging
            .grant(&id, &package.manifest.subscribes, "system")
            .await?;
        // And the plan indicators the system feeds, once: an administrator
        // who later revokes a grant is not overruled at the next start.
        if first_install {
            let granted = kernel.datacenter.grant_plan_feeds(&id, "system").await?;
            if !granted.is_empty() {
                tracing::info!(plugin = %id, indicators = ?granted, "granted publishing into the plan");
            }
        }
        if let Some(route) = &package.manifest.demo_seed {
            seed_demo_data(kernel, &id, route).await;
        }
    }
    Ok(())
}

/// The demo's dashboard, once: the plan, approvals in flight and every
/// panel the bundled systems offer, for the region
/// (`/wall/?dashboard=…`, docs/wall.md "Dashboards").
async fn seed_demo_dashboard(kernel: &Kernel) -> anyhow::Result<()> {
    use tianshan_kernel::services::datacenter::dashboards::{
        Definition, MAX_PANELS, Panel, PanelKind,
    };
    if !kernel.datacenter.dashboards().await?.is_empty() {
        return Ok(());
    }
    let plain = |kind| Panel {
        kind,
        plugin: None,
        span: None,
        indicator: None,
        chart: None,
        per: None,
        title: None,
    };
    let mut panels = vec![plain(PanelKind::Plan), plain(PanelKind::Approvals)];
    for plugin in kernel.plugins.list() {
        let id = &plugin.manifest.id;
        panels.extend(plugin.manifest.panels.iter().map(|p| p.panel(id)));
    }
    panels.truncate(MAX_PANELS);
    let dashboard = kernel
        .datacenter
        .create_dashboard(
            "system",
            &kernel.root_org,
            Definition {
                name: tianshan_kernel::core::text::LocalizedText {
                    zh_cn: "自治区机关事务综合大屏".into(),
                    en: "Regional offices administration at a glance".into(),
                },
                rotate: Some(30),
                panels,
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("seeding the demo dashboard: {e}"))?;
    tracing::info!(id = %dashboard.id, panels = dashboard.panels.len(), "demo dashboard in place");
    Ok(())
}

/// The demo vehicles' terminals, each on a loop around the seat of its
/// prefecture as the region's map places it (the map's `cp` of the feature
/// whose name shares the longest beginning with the prefecture's); every
/// sixth vehicle parked.
async fn demo_fleet(kernel: &Kernel) -> anyhow::Result<Vec<telemetry::demo::DemoTerminal>> {
    use sqlx::Row as _;
    let terminals = telemetry::demo::demo_terminals(&kernel.telemetry, "vehicles").await?;
    if terminals.is_empty() {
        return Ok(Vec::new());
    }
    let rows = sqlx::query("SELECT id, parent_id, level, code, name_zh FROM orgs")
        .fetch_all(&kernel.db)
        .await?;
    let orgs: std::collections::HashMap<String, (Option<String>, String, String, String)> = rows
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2), r.get(3), r.get(4))))
        .collect();
    let province: String = orgs
        .get(&kernel.root_org)
        .map(|o| o.2.chars().take(2).collect())
        .unwrap_or_default();
    let map = tianshan_kernel::http::static_files::VENDOR_FILES
        .iter()
        .find(|f| f.name == format!("map-{province}.json"))
        .and_then(|f| serde_json::from_slice::<serde_json::Value>(f.bytes).ok());
    let seats: Vec<(String, (f64, f64))> = map
        .as_ref()
        .and_then(|m| m["features"].as_array())
        .map(|features| {
            features
                .iter()
                .filter_map(|f| {
                    let p = &f["properties"];
                    Some((
                        p["name"].as_str()?.to_string(),
                        (p["cp"][1].as_f64()?, p["cp"][0].as_f64()?),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    let prefecture_of = |org: &str| -> Option<String> {
        let mut org = org.to_string();
        loop {
            let (parent, level, _, name) = orgs.get(&org)?;
            if level == "prefecture" {
                return Some(name.clone());
            }
            org = parent.clone()?;
        }
    };
    // Ürümqi when a seat is not on the map.
    let fallback = (43.83, 87.62);
    Ok(terminals
        .into_iter()
        .enumerate()
        .map(|(n, (phone, org))| {
            let centre = prefecture_of(&org)
                .and_then(|name| {
                    seats
                        .iter()
                        .map(|(seat, at)| {
                            let shared = seat
                                .chars()
                                .zip(name.chars())
                                .take_while(|(a, b)| a == b)
                                .count();
                            (shared, *at)
                        })
                        .filter(|(shared, _)| *shared >= 2)
                        .max_by_key(|(shared, _)| *shared)
                        .map(|(_, at)| at)
                })
                .unwrap_or(fallback);
            telemetry::demo::DemoTerminal {
                phone,
                centre,
                radius_km: 2.0 + (n % 4) as f64 * 2.5,
                phase: (n as f64 * 0.37).fract(),
                parked: n % 6 == 5,
            }
        })
        .collect())
}

/// Calls a bundled plugin's demo-seed route as the kernel (no caller),
/// with the org tree as the body (`{"orgs": [{id, parent_id, level, code,
/// name, …}]}`, flat) since a plugin cannot list orgs itself. The plugin
/// makes it idempotent; a failure is logged, not fatal: the demo still
/// starts, just with less data.
async fn seed_demo_data(kernel: &Kernel, id: &str, route: &str) {
    let Some(plugin) = kernel.plugins.get(id) else {
        return;
    };
    let orgs = match orgs::tree(&kernel.db).await {
        Ok(tree) => {
            fn flatten(list: Vec<orgs::Org>, out: &mut Vec<orgs::Org>) {
                for mut org in list {
                    let children = std::mem::take(&mut org.children);
                    out.push(org);
                    flatten(children, out);
                }
            }
            let mut flat = Vec::new();
            flatten(tree, &mut flat);
            flat
        }
        Err(e) => {
            tracing::warn!(error = %e, "demo seed skipped: cannot read the org tree");
            return;
        }
    };
    let request = tianshan_kernel::runtime::PluginRequest {
        method: "POST".into(),
        path: route.to_string(),
        query: String::new(),
        headers: vec![("content-type".into(), "application/json".into())],
        body: serde_json::to_vec(&serde_json::json!({ "orgs": orgs })).unwrap_or_default(),
    };
    match kernel
        .runtime
        .handle_http(&plugin.component, None, request)
        .await
    {
        Ok(response) if response.status < 300 => tracing::info!(
            plugin = id,
            answer = %String::from_utf8_lossy(&response.body),
            "demo data seeded"
        ),
        Ok(response) => tracing::warn!(
            plugin = id,
            status = response.status,
            answer = %String::from_utf8_lossy(&response.body),
            "demo seed refused"
        ),
        Err(failure) => tracing::warn!(plugin = id, error = %failure.detail, "demo seed failed"),
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down; finishing in-flight requests");
}

async fn open_offline(common: &CommonArgs) -> anyhow::Result<std::sync::Arc<Kernel>> {
    let config = common.config()?;
    init_tracing(&Config {
        log: tianshan_kernel::core::config::LogConfig {
            filter: "warn".into(),
            ..config.log.clone()
        },
        ..config.clone()
    });
    Ok(Kernel::open(config).await?.kernel)
}

async fn plugin(command: PluginCommand) -> anyhow::Result<()> {
    match command {
        PluginCommand::New { name, sdk_path } => {
            let dir = tooling::new_plugin(&name, &std::env::current_dir()?, sdk_path.as_deref())?;
            println!("Created plugin {name} in {}", dir.display());
            println!("Next: cd {name} && tianshan plugin build && tianshan plugin pack");
        }
        PluginCommand::Build { dir } => {
            let wasm = tooling::build(&dir, &tooling::BuildOptions::default())?;
            let built = wasm.last().expect("build returns at least one component");
            let dest = tooling::built_component_path(&dir);
            std::fs::create_dir_all(dest.parent().expect("has parent"))?;
            std::fs::copy(built, &dest)?;
            let size = std::fs::metadata(&dest)?.len();
            println!("Built {} ({} KiB)", dest.display(), size / 1024);
        }
        PluginCommand::Pack { dir, wasm, out } => {
            let wasm = wasm.unwrap_or_else(|| tooling::built_component_path(&dir));
            if !wasm.exists() {
                anyhow::bail!(
                    "{} does not exist: run `tianshan plugin build` first",
                    wasm.display()
                );
            }
            let out = tooling::pack(&dir, &wasm, out.as_deref().unwrap_or(&dir))?;
            println!("Packed {}", out.display());
        }
        PluginCommand::Install { package, common } => {
            let kernel = open_offline(&common).await?;
            let bytes = std::fs::read(&package)
                .with_context(|| format!("reading {}", package.display()))?;
            let outcome = kernel
                .plugins
                .install_as(
                    &bytes,
                    None,
                    tianshan_kernel::plugins::Installer::Platform,
                    cli_record(&kernel, "plugin.install"),
                )
                .await
                .map_err(|e| anyhow::anyhow!("{}", e.message))?;
            println!("Installed {} {}", outcome.id, outcome.version);
        }
        PluginCommand::Upgrade { package, common } => {
            let kernel = open_offline(&common).await?;
            let bytes = std::fs::read(&package)
                .with_context(|| format!("reading {}", package.display()))?;
            let outcome = kernel
                .plugins
                .upgrade(None, &bytes, cli_record(&kernel, "plugin.upgrade"))
                .await
                .map_err(|e| anyhow::anyhow!("{}", e.message))?;
            println!(
                "Upgraded {} from {} to {}",
                outcome.id,
                outcome.previous_version.unwrap_or_default(),
                outcome.version
            );
        }
        PluginCommand::List { common } => {
            let kernel = open_offline(&common).await?;
            println!("{:<24} {:<12} {:<9} NAME", "ID", "VERSION", "STATE");
            for plugin in kernel.plugins.list() {
                let s = plugin.summary();
                println!(
                    "{:<24} {:<12} {:<9} {} / {}",
                    s.id, s.version, s.state, s.name.zh_cn, s.name.en
                );
            }
        }
        PluginCommand::Enable { id, common } => set_enabled(&id, &common, true).await?,
        PluginCommand::Disable { id, common } => set_enabled(&id, &common, false).await?,
        PluginCommand::Uninstall { id, common } => {
            let kernel = open_offline(&common).await?;
            kernel
                .plugins
                .uninstall(&id, cli_record(&kernel, "plugin.uninstall"))
                .await
                .map_err(|e| anyhow::anyhow!("{}", e.message))?;
            println!("Uninstalled {id}");
        }
    }
    Ok(())
}

async fn set_enabled(id: &str, common: &CommonArgs, enable: bool) -> anyhow::Result<()> {
    let kernel = open_offline(common).await?;
    let action = if enable {
        "plugin.enable"
    } else {
        "plugin.disable"
    };
    let s = kernel
        .plugins
        .set_enabled(id, enable, cli_record(&kernel, action))
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    println!("{} is now {}", s.id, s.state);
    Ok(())
}

async fn audit_verify(common: &CommonArgs, anchors: Option<PathBuf>) -> anyhow::Result<()> {
    use tianshan_kernel::audit;
    let config = common.config()?;
    let db = tianshan_kernel::db::connect(&config.database_url()).await?;
    // Verification never creates a key: a missing key fails keyed records.
    let key_file = config.audit_key_file();
    let keys = if key_file.exists() {
        vec![audit::AuditKey::load(&key_file)?]
    } else {
        eprintln!("note: no audit key at {}", key_file.display());
        Vec::new()
    };
    let anchor_file = anchors.or_else(|| {
        let default = config.audit_anchor_file();
        default.exists().then_some(default)
    });
    let anchors = match &anchor_file {
        Some(path) => audit::read_anchors(path)?,
        None => Vec::new(),
    };
    match audit::verify(&db, &keys, &anchors).await? {
        audit::Verdict::Intact {
            records,
            keyed,
            anchors,
        } => {
            println!(
                "audit chain intact: {records} records ({keyed} keyed), checked against {anchors} anchor(s){}",
                anchor_file
                    .map(|p| format!(" from {}", p.display()))
                    .unwrap_or_default()
            );
            Ok(())
        }
        audit::Verdict::Broken { seq, reason } => {
            eprintln!("audit chain broken at record {seq}: {reason}");
            std::process::exit(1);
        }
    }
}

/// Offline changes are audited like API ones, with the operator's OS user
/// as the actor; the change commits with this record.
fn cli_record(kernel: &Kernel, action: &str) -> tianshan_kernel::audit::Entry {
    let who = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    tianshan_kernel::audit::Entry::new(&format!("cli:{who}"), action, "ok").org(&kernel.root_org)
}
