//! Attachments (contract 1.2.0): store and read files such as photos and
//! scans. The kernel checks the size and the type (by content), hashes
//! the content and limits access to the caller's orgs. Users can also
//! upload through `POST /api/v1/files` and hand the plugin the id.

use crate::bindings::tianshan::plugin::files as wit;
use crate::{Error, Result};

pub use wit::FileInfo;

fn refused(message: String) -> Error {
    Error::validation("file", message)
}

/// Stores a file in the org the request acts in (or `org`).
pub fn put(name: &str, content_type: &str, content: &[u8], org: Option<&str>) -> Result<FileInfo> {
    wit::put(name, content_type, content, org).map_err(refused)
}

/// The file's metadata; 404 when absent or out of reach.
pub fn info(id: &str) -> Result<FileInfo> {
    wit::info(id)
        .map_err(Error::internal)?
        .ok_or_else(|| Error::not_found(format!("no file {id}")))
}

/// The file's content; 404 when absent or out of reach.
pub fn read(id: &str) -> Result<Vec<u8>> {
    wit::read(id)
        .map_err(Error::internal)?
        .ok_or_else(|| Error::not_found(format!("no file {id}")))
}

/// Marks the file deleted; false when there was nothing to delete.
pub fn delete(id: &str) -> Result<bool> {
    wit::delete(id).map_err(Error::internal)
}
