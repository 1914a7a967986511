//! On-disk cache of compiled components, so a restart does not recompile.
//!
//! Entries are keyed by the SHA-256 of the component bytes and a fingerprint
//! of the engine (wasmtime version, target and settings). Only files the
//! kernel wrote itself are ever deserialised: the cache directory belongs to
//! the kernel and packages cannot put anything into it.

use std::hash::{Hash, Hasher};
use std::path::PathBuf;

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

pub struct CompiledCache {
    dir: PathBuf,
    engine_fingerprint: String,
}

impl CompiledCache {
    pub fn new(dir: PathBuf, engine: &Engine) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(CompiledCache {
            dir,
            engine_fingerprint: format!("{:016x}", hasher.finish()),
        })
    }

    fn path_for(&self, wasm: &[u8]) -> PathBuf {
        let digest = hex::encode(Sha256::digest(wasm));
        self.dir
            .join(format!("{digest}-{}.cwasm", self.engine_fingerprint))
    }

    pub fn get(&self, engine: &Engine, wasm: &[u8]) -> Option<Component> {
        let path = self.path_for(wasm);
        if !path.exists() {
            return None;
        }
        // SAFETY: the file was written by `put` below from a component this
        // engine compiled; its name binds it to these exact wasm bytes and
        // this engine's configuration, and wasmtime re-checks the header.
        #[allow(unsafe_code)]
        let loaded = unsafe { Component::deserialize_file(engine, &path) };
        match loaded {
            Ok(component) => Some(component),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "discarding unusable compiled-code cache entry");
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// Best effort: a failed write only costs a compile on the next start.
    pub fn put(&self, wasm: &[u8], component: &Component) {
        let path = self.path_for(wasm);
        let result = component
            .serialize()
            .map_err(|e| e.to_string())
            .and_then(|bytes| {
                let tmp = path.with_extension("tmp");
                std::fs::write(&tmp, bytes)
                    .and_then(|_| std::fs::rename(&tmp, &path))
                    .map_err(|e| e.to_string())
            });
        if let Err(e) = result {
            tracing::warn!(path = %path.display(), error = %e, "could not write compiled-code cache entry");
        }
    }
}
