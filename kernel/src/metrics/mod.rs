//! `/metrics` in the Prometheus text format: per-plugin request counts,
//! errors and latency histograms, plus runtime counters.

use std::sync::Mutex;

pub mod ops;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The counters `/metrics` shows for the stream.
#[derive(Clone, Default)]
pub struct StreamStats {
    /// Events this node's relay published (acknowledged by the stream).
    pub published: Counter,
    /// Events this node took from the shared consumer.
    pub received: Counter,
    /// 1 while this node's consumer receives from the stream.
    pub live: Gauge,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub plugin: String,
    pub version: String,
    /// `2xx`, `4xx`, `5xx`…
    pub class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub plugin: String,
    pub code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginLabels {
    pub plugin: String,
}

pub struct Metrics {
    registry: Mutex<Registry>,
    pub plugin_requests: Family<RequestLabels, Counter>,
    pub plugin_errors: Family<ErrorLabels, Counter>,
    pub plugin_latency: Family<PluginLabels, Histogram>,
    pub plugins_installed: Gauge,
    pub compilations: Counter,
    pub compile_cache_hits: Counter,
    pub plugin_log_dropped: Family<PluginLabels, Counter>,
    pub bus_signals_received: Counter,
    pub stream: StreamStats,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("tianshan");
        let plugin_requests = Family::<RequestLabels, Counter>::default();
        let plugin_errors = Family::<ErrorLabels, Counter>::default();
        let plugin_latency = Family::<PluginLabels, Histogram>::new_with_constructor(|| {
            // 50 µs … ~26 s
            Histogram::new(exponential_buckets(0.00005, 2.0, 20))
        });
        let plugins_installed = Gauge::default();
        let compilations = Counter::default();
        let compile_cache_hits = Counter::default();
        registry.register(
            "plugin_requests",
            "Requests routed to plugins, by plugin, version and status class",
            plugin_requests.clone(),
        );
        registry.register(
            "plugin_errors",
            "Plugin calls that failed, by plugin and error code",
            plugin_errors.clone(),
        );
        registry.register(
            "plugin_request_duration_seconds",
            "Time from routing to the plugin's answer",
            plugin_latency.clone(),
        );
        registry.register(
            "plugins_installed",
            "Plugins installed on this node",
            plugins_installed.clone(),
        );
        registry.register(
            "plugin_compilations",
            "Plugin components compiled from WebAssembly",
            compilations.clone(),
        );
        registry.register(
            "plugin_compile_cache_hits",
            "Plugin components loaded from the compiled-code cache",
            compile_cache_hits.clone(),
        );
        let plugin_log_dropped = Family::<PluginLabels, Counter>::default();
        registry.register(
            "plugin_log_lines_dropped",
            "Plugin log lines dropped over the per-plugin log rate limit",
            plugin_log_dropped.clone(),
        );
        let bus_signals_received = Counter::default();
        registry.register(
            "bus_signals_received",
            "Wake-up signals from other nodes received over NATS",
            bus_signals_received.clone(),
        );
        let stream = StreamStats::default();
        registry.register(
            "events_streamed",
            "Events this node published to the JetStream stream",
            stream.published.clone(),
        );
        registry.register(
            "events_stream_received",
            "Events this node took from the JetStream stream to deliver",
            stream.received.clone(),
        );
        registry.register(
            "events_stream_live",
            "1 while this node receives events from JetStream, 0 while it polls only",
            stream.live.clone(),
        );
        Metrics {
            bus_signals_received,
            stream,
            registry: Mutex::new(registry),
            plugin_requests,
            plugin_errors,
            plugin_latency,
            plugins_installed,
            compilations,
            compile_cache_hits,
            plugin_log_dropped,
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().expect("metrics registry lock");
        prometheus_client::encoding::text::encode(&mut out, &registry)
            .expect("writing to a String cannot fail");
        out
    }
}

pub fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_per_plugin_series() {
        let m = Metrics::new();
        m.plugin_requests
            .get_or_create(&RequestLabels {
                plugin: "hello".into(),
                version: "0.1.0".into(),
                class: status_class(200),
            })
            .inc();
        m.plugin_latency
            .get_or_create(&PluginLabels {
                plugin: "hello".into(),
            })
            .observe(0.001);
        let text = m.render();
        assert!(
            text.contains(
                r#"tianshan_plugin_requests_total{plugin="hello",version="0.1.0",class="2xx"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains("tianshan_plugin_request_duration_seconds_bucket"));
    }
}
