//! The EC2 actions, one module per resource. Each module owns, for its actions: the typed
//! request (its `Action`), the parsing of each from [`Params`], the typed result (its
//! `Response`) and that result's XML, and its entries in the action table ([`Resource::OPS`]:
//! wire name, whether it mutates, parser). Adding an action touches one module here (and the
//! core service that runs it); adding a resource adds one line to [`resources!`] below.
//!
//! The modules mirror the core's services: [`catalogue`] (regions, zones, account
//! attributes, instance types and offerings), [`key_pairs`], [`tags`], [`images`],
//! [`instances`], [`vpcs`] (VPCs and subnets), [`routing`] (internet gateways, route tables,
//! routes), [`security_groups`], [`addresses`] (Elastic IPs) and [`interfaces`] (network
//! interfaces and instance metadata options), [`volumes`] and [`snapshots`] (EBS).

use gureum_types::ApiError;

use crate::params::Params;
use crate::xml::Xml;

pub mod addresses;
pub mod catalogue;
pub mod images;
pub mod instances;
pub mod interfaces;
pub mod key_pairs;
pub mod routing;
pub mod security_groups;
pub mod snapshots;
pub mod tags;
pub mod volumes;
pub mod vpcs;

/// One entry of a resource's action table.
pub struct Op<A> {
    /// The AWS operation name (`CreateKeyPair`).
    pub name: &'static str,
    /// Whether the action changes state (and so must never run on a dry run).
    pub mutating: bool,
    /// The parser: every parameter it knows taken from the request's (leftovers are the
    /// caller's `UnknownParameter`).
    pub parse: fn(&mut Params) -> Result<A, ApiError>,
}

impl<A> Op<A> {
    /// An action that only reads.
    pub const fn read(name: &'static str, parse: fn(&mut Params) -> Result<A, ApiError>) -> Op<A> {
        Op {
            name,
            mutating: false,
            parse,
        }
    }

    /// An action that changes state.
    pub const fn write(name: &'static str, parse: fn(&mut Params) -> Result<A, ApiError>) -> Op<A> {
        Op {
            name,
            mutating: true,
            parse,
        }
    }
}

/// What the protocol layer needs from each resource module: its action table and each
/// action's wire name. The conversions to and from the top-level [`Action`] and [`Response`]
/// let a caller run one resource's action and get that resource's result back (the console,
/// tests).
pub trait Resource: Sized + Into<Action> + TryFrom<Action, Error = Action> + 'static {
    /// The resource's results.
    type Response: Into<Response> + TryFrom<Response, Error = Response> + std::fmt::Debug;
    /// The resource's actions.
    const OPS: &'static [Op<Self>];
    /// The AWS operation name of this action (one of [`Self::OPS`]' names).
    fn name(&self) -> &'static str;
}

/// The action of `A`'s table named `name`, parsed (`None`: not one of `A`'s).
fn parse_in<A: Resource>(name: &str, p: &mut Params) -> Option<Result<Action, ApiError>> {
    A::OPS
        .iter()
        .find(|op| op.name == name)
        .map(|op| (op.parse)(p).map(Into::into))
}

/// Whether `a` mutates, from its table.
fn mutating_in<A: Resource>(a: &A) -> bool {
    let name = a.name();
    A::OPS.iter().any(|op| op.name == name && op.mutating)
}

fn names_in<A: Resource>() -> impl Iterator<Item = &'static str> {
    A::OPS.iter().map(|op| op.name)
}

/// The top-level [`Action`] and [`Response`]: one variant per resource, wrapping that
/// resource's own; the conversions between them; parsing by name across every table; and
/// rendering by delegation.
macro_rules! resources {
    ($($variant:ident => $module:ident),* $(,)?) => {
        /// A parsed action, by resource.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Action {
            $($variant($module::Action),)*
        }

        /// The result of an action, ready to render, by resource.
        // One value per request, rendered once and dropped: the size of the largest variant
        // costs nothing worth boxing for.
        #[allow(clippy::large_enum_variant)]
        #[derive(Debug, Clone)]
        pub enum Response {
            $($variant($module::Response),)*
        }

        $(
            impl From<$module::Action> for Action {
                fn from(a: $module::Action) -> Action {
                    Action::$variant(a)
                }
            }

            impl From<$module::Response> for Response {
                fn from(r: $module::Response) -> Response {
                    Response::$variant(r)
                }
            }

            impl TryFrom<Action> for $module::Action {
                type Error = Action;
                fn try_from(a: Action) -> Result<Self, Action> {
                    match a {
                        Action::$variant(a) => Ok(a),
                        other => Err(other),
                    }
                }
            }

            impl TryFrom<Response> for $module::Response {
                type Error = Response;
                fn try_from(r: Response) -> Result<Self, Response> {
                    match r {
                        Response::$variant(r) => Ok(r),
                        other => Err(other),
                    }
                }
            }
        )*

        impl Action {
            /// The AWS operation name.
            pub fn name(&self) -> &'static str {
                match self {
                    $(Action::$variant(a) => a.name(),)*
                }
            }

            /// Whether the action changes state (and so must never run on a dry run).
            pub fn is_mutating(&self) -> bool {
                match self {
                    $(Action::$variant(a) => mutating_in(a),)*
                }
            }
        }

        /// The action named `name`, parsed by its resource's table (`None`: no such action).
        pub(crate) fn parse_action(name: &str, p: &mut Params) -> Option<Result<Action, ApiError>> {
            None$(.or_else(|| parse_in::<$module::Action>(name, p)))*
        }

        /// Every action name gureum implements, for `docs/COMPATIBILITY.md` and its test.
        pub fn supported_actions() -> impl Iterator<Item = &'static str> {
            std::iter::empty()$(.chain(names_in::<$module::Action>()))*
        }

        impl Response {
            /// The result's elements, after the `requestId`.
            pub(crate) fn write(&self, x: &mut Xml) {
                match self {
                    $(Response::$variant(r) => r.write(x),)*
                }
            }
        }
    };
}

resources! {
    Catalogue => catalogue,
    KeyPairs => key_pairs,
    Tags => tags,
    Images => images,
    Instances => instances,
    Vpcs => vpcs,
    Routing => routing,
    SecurityGroups => security_groups,
    Addresses => addresses,
    Interfaces => interfaces,
    Volumes => volumes,
    Snapshots => snapshots,
}
