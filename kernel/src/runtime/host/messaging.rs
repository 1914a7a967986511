//! The `messaging` import (contract 1.2): a plugin publishes events, stamped
//! with the org the call acts at.

use crate::runtime::bindings::tianshan::plugin::messaging;
use crate::runtime::host::HostState;

/// Adds the `messaging` import to the plugins' linker.
pub fn add_to_linker(linker: &mut wasmtime::component::Linker<HostState>) -> wasmtime::Result<()> {
    messaging::add_to_linker::<HostState, wasmtime::component::HasSelf<HostState>>(linker, |s| s)
}

impl messaging::Host for HostState {
    async fn publish(&mut self, message: messaging::Message) -> Result<String, String> {
        let (scope, services) = self
            .scope()
            .ok_or("messaging is not available in this kernel")?;
        // The event's org is the kernel's stamp of where this call acts (or
        // an org it reaches), never more than the plugin's install subtree:
        // subscribers act on it within that lane only.
        let stamped = message
            .org
            .clone()
            .unwrap_or_else(|| scope.acting_org.clone());
        let in_lane = self
            .plugin
            .install_org
            .as_deref()
            .is_none_or(|install| scope.orgs.is_within(&stamped, install));
        if !scope.reaches(&stamped) || !in_lane {
            return Err(format!("org {stamped} is outside the caller's reach"));
        }
        services
            .messaging
            .publish(
                &scope.plugin,
                &stamped,
                crate::services::messaging::Message {
                    topic: message.topic,
                    key: message.key,
                    org: Some(stamped.clone()),
                    payload: message.payload,
                    idempotency_key: message.idempotency_key,
                },
                &scope.orgs,
            )
            .await
            .map_err(|e| e.to_string())
    }
}
