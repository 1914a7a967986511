//! What every layer shares: ids, the calendar, localized text, the caller's
//! scope, the one error type, configuration, stream slots.

pub mod calendar;
pub mod config;
pub mod csv;
pub mod error;
pub mod ids;
pub mod net;
pub mod scope;
pub mod streams;
pub mod text;
