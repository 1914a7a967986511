//! The `files` import (contract 1.2): a plugin's attachments, within the
//! call's org reach.

use crate::runtime::bindings::tianshan::plugin::files;
use crate::runtime::host::HostState;

/// Adds the `files` import to the plugins' linker.
pub fn add_to_linker(linker: &mut wasmtime::component::Linker<HostState>) -> wasmtime::Result<()> {
    files::add_to_linker::<HostState, wasmtime::component::HasSelf<HostState>>(linker, |s| s)
}

fn to_file_info(f: crate::services::files::FileInfo) -> files::FileInfo {
    files::FileInfo {
        id: f.id,
        org: f.org_id,
        name: f.name,
        content_type: f.content_type,
        size: f.size as u64,
        sha256: f.sha256,
        created_at: f.created_at,
    }
}

impl files::Host for HostState {
    async fn put(
        &mut self,
        name: String,
        content_type: String,
        content: Vec<u8>,
        org: Option<String>,
    ) -> Result<files::FileInfo, String> {
        let (scope, services) = self.scope().ok_or("files are not available")?;
        let who = crate::services::files::Requester {
            scope: &scope,
            plugin: Some(&scope.plugin),
        };
        services
            .files
            .put(&who, &name, &content_type, &content, org.as_deref())
            .await
            .map(to_file_info)
            .map_err(|e| e.to_string())
    }

    async fn info(&mut self, id: String) -> Result<Option<files::FileInfo>, String> {
        let (scope, services) = self.scope().ok_or("files are not available")?;
        let who = crate::services::files::Requester {
            scope: &scope,
            plugin: Some(&scope.plugin),
        };
        match services.files.info(&who, &id).await {
            Ok(info) => Ok(Some(to_file_info(info))),
            Err(crate::core::error::ServiceError::NotFound(_)) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    async fn read(&mut self, id: String) -> Result<Option<Vec<u8>>, String> {
        let (scope, services) = self.scope().ok_or("files are not available")?;
        let who = crate::services::files::Requester {
            scope: &scope,
            plugin: Some(&scope.plugin),
        };
        match services.files.read(&who, &id).await {
            Ok((_, content)) => Ok(Some(content)),
            Err(crate::core::error::ServiceError::NotFound(_)) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    async fn delete(&mut self, id: String) -> Result<bool, String> {
        let (scope, services) = self.scope().ok_or("files are not available")?;
        let who = crate::services::files::Requester {
            scope: &scope,
            plugin: Some(&scope.plugin),
        };
        match services.files.delete(&who, &id).await {
            Ok(()) => Ok(true),
            Err(crate::core::error::ServiceError::NotFound(_)) => Ok(false),
            Err(e) => Err(e.to_string()),
        }
    }
}
