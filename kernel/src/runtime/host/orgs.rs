//! The `orgs` import (contract 1.3): what anyone logged in may know of an
//! org (id, code, names, level, parent), for a plugin to check an org a
//! user typed and to show its name. Access stays with `authz` and the
//! storage scope; this face answers the same for every caller.

use crate::runtime::bindings::tianshan::plugin::orgs as wit;
use crate::runtime::host::HostState;

/// Adds the `orgs` import to the plugins' linker.
pub fn add_to_linker(linker: &mut wasmtime::component::Linker<HostState>) -> wasmtime::Result<()> {
    wit::add_to_linker::<HostState, wasmtime::component::HasSelf<HostState>>(linker, |s| s)
}

impl wit::Host for HostState {
    async fn get(&mut self, id_or_code: String) -> Result<Option<wit::Org>, String> {
        let services = self
            .services
            .clone()
            .ok_or_else(|| "orgs are not available in this kernel".to_string())?;
        if id_or_code.is_empty() || id_or_code.len() > 64 {
            return Ok(None);
        }
        // One of the plugin's read connections, like a storage read: the
        // lookup is the plugin's load, not the kernel's.
        let mut conn = services.reads.acquire(&self.plugin.id).await?;
        let found = crate::identity::orgs::by_id_or_code(&mut conn, &id_or_code).await;
        match found {
            Ok(org) => Ok(org.map(|o| wit::Org {
                id: o.id,
                code: o.code,
                name_zh: o.name.zh_cn,
                name_en: o.name.en,
                level: o.level,
                parent: o.parent_id,
                active: o.active,
            })),
            Err(e) => {
                let e = crate::core::error::ServiceError::from(e);
                let message = e.to_string();
                conn.settle::<()>(&Err(e));
                Err(message)
            }
        }
    }
}
