//! Who acts and where: users, orgs, roles and bindings, sessions and tokens.

pub mod auth;
pub mod authz;
pub mod orgs;
pub mod users;
