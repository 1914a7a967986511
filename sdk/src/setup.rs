//! One plugin, declared: its routes, what it defines on install and every
//! upgrade, and which of its functions hear which events. What every
//! business system wrote again by hand — `GET /`, `GET /vocab`, install
//! and upgrade running the same idempotent definitions, an `on_event`
//! sorting approval outcomes by flow — is said once here, so a plugin's
//! `lib.rs` names only its domain.
//!
//! ```ignore
//! fn plugin() -> Setup {
//!     Setup::new()
//!         .about("rooms.view")                   // GET /: id and version
//!         .vocab(model::VOCABS, "rooms.view")    // GET /vocab
//!         .routes(rooms::routes)
//!         .define(rooms::define_flows)           // install and every upgrade
//!         .on_flow(rooms::FLOW, rooms::decided)  // kernel.approval.* of that flow
//! }
//!
//! tianshan_sdk::export_plugin!(setup = plugin);
//! ```
//!
//! A plugin that needs more than this (a migration for one old version, a
//! route table built from data) implements [`crate::Plugin`] by hand
//! instead; both export the same component.

use crate::approvals::Outcome;
use crate::telemetry::Alert;
use crate::vocab::Vocab;
use crate::{Event, Request, Response, Result, Router};

/// A handler of one approval outcome.
pub type OutcomeHandler = fn(&Outcome) -> Result<()>;
/// A handler of one batch of telemetry alerts.
pub type AlertsHandler = fn(&[Alert]) -> Result<()>;

/// A plugin's parts; see the [module](self). Built on every call (the
/// kernel runs each request in a fresh instance), so it holds only
/// function pointers and is cheap to build.
#[derive(Default)]
pub struct Setup {
    about: Option<&'static str>,
    vocab: Option<(&'static [&'static Vocab], &'static str)>,
    routes: Vec<fn(Router) -> Router>,
    define: Vec<fn() -> Result<()>>,
    flows: Vec<(&'static str, OutcomeHandler)>,
    approvals: Option<OutcomeHandler>,
    alerts: Option<AlertsHandler>,
    events: Option<fn(&Event) -> Result<()>>,
}

impl Setup {
    pub fn new() -> Setup {
        Setup::default()
    }

    /// `GET /` answers `{plugin, version}` to holders of `permission`, so
    /// an operator (and a smoke test) can tell the plugin is installed and
    /// serving without knowing its routes.
    pub fn about(mut self, permission: &'static str) -> Setup {
        self.about = Some(permission);
        self
    }

    /// `GET /vocab` answers every code of `vocabs` with its labels
    /// ([`crate::vocab::respond`]) to holders of `permission`.
    pub fn vocab(mut self, vocabs: &'static [&'static Vocab], permission: &'static str) -> Setup {
        self.vocab = Some((vocabs, permission));
        self
    }

    /// Routes added by `add`, after those added before it (the first
    /// matching route wins, as in [`Router`]).
    pub fn routes(mut self, add: fn(Router) -> Router) -> Setup {
        self.routes.push(add);
        self
    }

    /// Runs `step` on install and on every upgrade, after the steps added
    /// before it; the first error stops the rest and aborts the install or
    /// upgrade, keeping the previous state. Every step must therefore be
    /// idempotent (defining flows and indicators is; seed with your own
    /// ids so a second run meets `conflict`).
    pub fn define(mut self, step: fn() -> Result<()>) -> Setup {
        self.define.push(step);
        self
    }

    /// Approval outcomes (`kernel.approval.*`) of the flow named `flow`.
    pub fn on_flow(mut self, flow: &'static str, handler: OutcomeHandler) -> Setup {
        self.flows.push((flow, handler));
        self
    }

    /// Approval outcomes of every flow no [`Setup::on_flow`] names.
    /// Without it those outcomes are acknowledged and dropped.
    pub fn on_approval(mut self, handler: OutcomeHandler) -> Setup {
        self.approvals = Some(handler);
        self
    }

    /// Each batch of alerts of the plugin's telemetry rules
    /// (`kernel.telemetry.alert`).
    pub fn on_alerts(mut self, handler: AlertsHandler) -> Setup {
        self.alerts = Some(handler);
        self
    }

    /// Every other event: jobs (`kernel.job.*`) and subscribed topics.
    pub fn on_event(mut self, handler: fn(&Event) -> Result<()>) -> Setup {
        self.events = Some(handler);
        self
    }

    /// The router: `GET /` and `GET /vocab` first, then each `routes`.
    pub fn router(&self) -> Router {
        let mut router = Router::new();
        if let Some(permission) = self.about {
            router = router.get("/", about).requires(permission);
        }
        if let Some((vocabs, permission)) = self.vocab {
            router = router
                .get("/vocab", move |_| Ok(crate::vocab::respond(vocabs)))
                .requires(permission);
        }
        self.routes.iter().fold(router, |router, add| add(router))
    }

    /// The install hook: every `define` step in order.
    pub fn install(&self) -> Result<()> {
        self.define.iter().try_for_each(|step| step())
    }

    /// The upgrade hook: the same steps as on install, whatever version
    /// came before, because each is idempotent.
    pub fn upgrade(&self, previous: &str) -> Result<()> {
        let _ = previous;
        self.install()
    }

    /// The event hook: an approval outcome to its flow's handler (else to
    /// [`Setup::on_approval`]'s), alerts to [`Setup::on_alerts`]'s,
    /// anything else to [`Setup::on_event`]'s. An event whose payload does
    /// not decode is an error, so it is retried and then dead-lettered
    /// where an administrator sees it.
    pub fn handle_event(&self, event: &Event) -> Result<()> {
        if let Some(outcome) = event.approval()? {
            let handler = self
                .flows
                .iter()
                .find(|(flow, _)| *flow == outcome.flow)
                .map(|(_, handler)| *handler)
                .or(self.approvals);
            return handler.map_or(Ok(()), |handler| handler(&outcome));
        }
        if let Some(handler) = self.alerts
            && let Some(alerts) = event.telemetry_alerts()?
        {
            return handler(&alerts);
        }
        self.events.map_or(Ok(()), |handler| handler(event))
    }
}

/// `GET /` of [`Setup::about`].
pub fn about(_: &Request) -> Result<Response> {
    Ok(Response::json(&serde_json::json!({
        "plugin": crate::identity::plugin_id(),
        "version": crate::identity::plugin_version(),
    })))
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use serde_json::json;

    use super::*;
    use crate::Error;
    use crate::vocab::Term;

    // Handlers are plain fn pointers, so what they did goes through a
    // thread-local rather than a capture.
    thread_local! {
        static CALLS: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    }

    fn called(what: impl Into<String>) {
        CALLS.with(|c| c.borrow_mut().push(what.into()));
    }

    fn calls() -> Vec<String> {
        CALLS.with(|c| std::mem::take(&mut *c.borrow_mut()))
    }

    const KIND: Vocab = Vocab::new("kind", &[Term::new("a", "甲", "A")]);
    static VOCABS: &[&Vocab] = &[&KIND];

    fn rooms(router: Router) -> Router {
        router.get("/rooms", |_| Ok(Response::text("rooms")))
    }

    fn more(router: Router) -> Router {
        router
            .get("/rooms", |_| Ok(Response::text("shadowed")))
            .get("/floors", |_| Ok(Response::text("floors")))
    }

    fn flows() -> Result<()> {
        called("flows");
        Ok(())
    }

    fn indicators() -> Result<()> {
        called("indicators");
        Ok(())
    }

    fn refused() -> Result<()> {
        called("refused");
        Err(Error::conflict("flow exists with other steps"))
    }

    fn scrap(outcome: &Outcome) -> Result<()> {
        called(format!("scrap {}", outcome.subject_id));
        Ok(())
    }

    fn other(outcome: &Outcome) -> Result<()> {
        called(format!("other {} {}", outcome.flow, outcome.subject_id));
        Ok(())
    }

    fn alerts(batch: &[Alert]) -> Result<()> {
        called(format!("alerts {}", batch.len()));
        Ok(())
    }

    fn anything(event: &Event) -> Result<()> {
        called(format!("event {}", event.topic));
        Ok(())
    }

    fn event(topic: &str, payload: serde_json::Value) -> Event {
        Event {
            id: "ev-1".into(),
            topic: topic.into(),
            key: None,
            org: None,
            source: "kernel".into(),
            payload: serde_json::to_vec(&payload).unwrap(),
        }
    }

    fn outcome(flow: &str, subject: &str) -> Event {
        event(
            "kernel.approval.approved",
            json!({"instance_id": "ap-1", "flow": flow, "subject_id": subject, "outcome": "approved"}),
        )
    }

    #[test]
    fn the_built_in_routes_come_first_and_carry_their_permissions() {
        let router = Setup::new()
            .about("rooms.view")
            .vocab(VOCABS, "rooms.read")
            .routes(rooms)
            .router();
        let declared: Vec<_> = router.permissions().collect();
        assert_eq!(
            declared,
            [("GET", "/", "rooms.view"), ("GET", "/vocab", "rooms.read")]
        );
        assert_eq!(
            router.handle(Request::new("GET", "/rooms")).body(),
            b"rooms"
        );
        // Without about or vocab there is no GET / or GET /vocab.
        let bare = Setup::new().routes(rooms).router();
        assert_eq!(bare.permissions().count(), 0);
        assert_eq!(bare.handle(Request::new("GET", "/")).status(), 404);
        assert_eq!(bare.handle(Request::new("GET", "/vocab")).status(), 404);
    }

    #[test]
    fn routes_keep_their_order() {
        let router = Setup::new().routes(rooms).routes(more).router();
        assert_eq!(
            router.handle(Request::new("GET", "/rooms")).body(),
            b"rooms"
        );
        assert_eq!(
            router.handle(Request::new("GET", "/floors")).body(),
            b"floors"
        );
    }

    #[test]
    fn install_and_upgrade_run_the_same_steps_in_order() {
        let setup = Setup::new().define(flows).define(indicators);
        setup.install().unwrap();
        assert_eq!(calls(), ["flows", "indicators"]);
        setup.upgrade("0.1.0").unwrap();
        assert_eq!(calls(), ["flows", "indicators"]);
        Setup::new().install().unwrap();
        assert!(calls().is_empty());
    }

    #[test]
    fn the_first_failing_step_stops_the_rest() {
        let setup = Setup::new()
            .define(flows)
            .define(refused)
            .define(indicators);
        let error = setup.upgrade("0.1.0").unwrap_err();
        assert_eq!(calls(), ["flows", "refused"]);
        // What the kernel is told, through the hook's String.
        assert_eq!(
            String::from(error),
            "409 conflict: flow exists with other steps"
        );
    }

    #[test]
    fn outcomes_go_to_their_flow_then_to_the_fallback() {
        let setup = Setup::new().on_flow("scrap", scrap).on_approval(other);
        setup.handle_event(&outcome("scrap", "v1")).unwrap();
        setup.handle_event(&outcome("purchase", "v2")).unwrap();
        assert_eq!(calls(), ["scrap v1", "other purchase v2"]);
        // No handler for the flow: acknowledged, nothing runs.
        let only_scrap = Setup::new().on_flow("scrap", scrap).on_event(anything);
        only_scrap.handle_event(&outcome("trip", "t1")).unwrap();
        assert!(calls().is_empty());
    }

    #[test]
    fn alerts_and_other_events_have_their_own_handlers() {
        let setup = Setup::new()
            .on_approval(other)
            .on_alerts(alerts)
            .on_event(anything);
        let batch = json!({"alerts": [
            {"rule": "overload", "device": "m1", "org": "org-1", "at": 1},
            {"rule": "overload", "device": "m2", "org": "org-1", "at": 2}
        ]});
        setup
            .handle_event(&event("kernel.telemetry.alert", batch))
            .unwrap();
        setup
            .handle_event(&event("kernel.job.nightly", json!({})))
            .unwrap();
        assert_eq!(calls(), ["alerts 2", "event kernel.job.nightly"]);
        // Without an alert handler, alerts are just another event.
        let plain = Setup::new().on_event(anything);
        plain
            .handle_event(&event("kernel.telemetry.alert", json!({"alerts": []})))
            .unwrap();
        assert_eq!(calls(), ["event kernel.telemetry.alert"]);
        Setup::new().handle_event(&event("x.y", json!({}))).unwrap();
        assert!(calls().is_empty());
    }

    #[test]
    fn an_undecodable_outcome_is_an_error_to_retry() {
        let setup = Setup::new().on_approval(other);
        let error = setup
            .handle_event(&event("kernel.approval.approved", json!({"flow": 1})))
            .unwrap_err();
        assert_eq!(error.code(), "invalid_event");
        assert!(calls().is_empty());
    }
}
