//! The EC2 Query protocol, pure: form-encoded parameters in ([`params`]), typed actions and
//! their results, one module per resource ([`ops`]), parsing by name ([`action`]), XML
//! documents and error envelopes out ([`render`], [`xml`]). No I/O here; the server feeds
//! bytes in and writes the strings it gets back.

pub mod action;
pub mod ops;
pub mod params;
pub mod render;
pub mod sts;
pub mod xml;

#[cfg(test)]
mod golden_tests;

pub use action::{parse, Page, Request};
pub use ops::{Action, Resource, Response};
pub use params::Params;
pub use render::error_document;
