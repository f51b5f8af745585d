//! What the core needs from a host: the driver traits and the types on them, defined in
//! `gureum-host-api` (which the drivers implement) and re-exported here so the core's modules
//! name them `crate::host::…`.

pub use gureum_host_api::*;
