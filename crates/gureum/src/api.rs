//! The HTTP front end of `gureum up`: `/healthz`, and the AWS Query endpoint that
//! authenticates a request (SigV4), decodes it into a typed action, runs it in the core and
//! writes the XML answer. Every answer carries a request id; every failure is an AWS error
//! envelope with AWS's status, and changes nothing.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use axum::body::{to_bytes, Body};
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderValue, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use gureum_core::{Cloud, Ctx};
use gureum_ec2::params::MAX_REQUEST_BYTES;
use gureum_ec2::{sts, Params};
use gureum_types::{ApiError, ErrorCode, Hypervisor};
use tracing::Instrument;

use crate::cli::UpArgs;
use crate::setup;
use crate::throttle::Throttle;

#[derive(Clone)]
struct AppState {
    /// Behind one `Arc`: axum clones the state for every request, and a `Cloud` is a score of
    /// `Arc`s (one atomic increment and decrement each).
    cloud: Arc<Cloud>,
    /// `None` when throttling is off.
    throttle: Option<Arc<Throttle>>,
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("GUREUM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}

/// `gureum up`: open the data dir, make sure the admin exists, serve until SIGINT/SIGTERM.
pub async fn up(data_dir: PathBuf, args: UpArgs) -> anyhow::Result<()> {
    init_logging();
    let started = Instant::now();
    let open_files = crate::serve::raise_open_file_limit();
    let limits = crate::serve::limits(&args, open_files);
    let cloud = setup::open_cloud(&data_dir, &args.region)?
        .with_limits(gureum_core::Limits {
            instances_per_account: args.instance_limit,
            instances_per_host: args.host_capacity,
        })
        .with_public_pool(args.public_ips)
        .with_default_hypervisor(args.hypervisor);
    let (account_id, key, created) = setup::ensure_admin(&cloud)?;
    let (host, unavailable) = crate::host::host(&data_dir, &args.cache_dir, false);
    if let Some(why) = &unavailable.containers {
        tracing::warn!(
            %why,
            "instances are unavailable on this host; serving the API only (RunInstances \
             answers InsufficientInstanceCapacity; `gureum doctor` says how to fix it)"
        );
    } else if let Some(why) = &unavailable.vms {
        tracing::warn!(%why, "VM instances are unavailable on this host");
    }
    let cloud = cloud.with_unavailable(unavailable);
    // The host agent runs in this process beside the API, through the control-plane seam.
    // Its pool boots containers: of no use when launches run as VMs by default.
    let warm_guests = match args.hypervisor {
        Hypervisor::Container => args.warm_pool,
        Hypervisor::Vm => 0,
    };
    let (cloud, agent) = match host {
        Some(h) => {
            let (cloud, agent) = cloud.with_local_agent(h, warm_guests);
            (cloud, Some(agent))
        }
        None => (cloud, None),
    };
    // Launches an earlier server recorded for a hypervisor this host cannot run end now,
    // as failed launches, instead of staying pending.
    match cloud.fail_stranded_launches().await {
        Ok(0) => {}
        Ok(n) => tracing::warn!(instances = n, "ended launches this host cannot run"),
        Err(e) => tracing::warn!(error = %e, "ending launches this host cannot run"),
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let endpoint = format!("http://{addr}");
    let files = setup::write_client_files(&data_dir, &key, &args.region, &endpoint)?;
    if created {
        tracing::info!(account = %account_id, "created the admin account");
    }
    println!(
        "gureum is up: EC2 API at {endpoint} (region {}), data in {}\n\
         Web console: {endpoint}/ (sign in with an access key of the credentials file below, or set a \
         password with `gureum account passwd admin`)\n\
         Use it with the AWS CLI or boto3:\n  \
         export AWS_SHARED_CREDENTIALS_FILE={} AWS_CONFIG_FILE={} AWS_PROFILE={} AWS_ENDPOINT_URL={endpoint}\n  \
         (or: source {})\n  \
         aws ec2 describe-availability-zones",
        args.region,
        data_dir.display(),
        files.credentials.display(),
        files.config.display(),
        setup::PROFILE,
        files.env.display(),
    );
    // A host network left by a server that died with no guest running (its firewall table,
    // public mappings) belongs to nobody: start from a clean one.
    if let Some(agent) = &agent {
        match agent.release_idle_host().await {
            Ok(true) => tracing::info!("removed a host network no guest uses"),
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "checking for a stale host network"),
        }
        agent.spawn();
        cloud.spawn_budget_checks();
        crate::imds::spawn(cloud.clone());
    }
    if !args.no_default_image {
        crate::host::spawn_default_image(cloud.clone(), args.cache_dir.clone());
    }
    // The console's monitoring reads the instances' cgroups and host-side veths.
    let metrics: Option<std::sync::Arc<dyn gureum_console::HostMetrics>> = if cloud.has_host() {
        gureum_net::Names::new(crate::host::NET_PREFIX)
            .ok()
            .map(|names| {
                std::sync::Arc::new(gureum_console::LinuxMetrics::new(
                    gureum_runtime::DEFAULT_CGROUP_PARENT,
                    move |id| names.veth(id),
                )) as std::sync::Arc<dyn gureum_console::HostMetrics>
            })
    } else {
        None
    };
    let console = gureum_console::Console::new(cloud.clone(), metrics);
    let throttle = args.throttle.then(|| Arc::new(Throttle::aws_default()));
    let app = router(cloud.clone(), throttle, &console);
    tracing::info!(
        listen = %addr,
        ready_ms = started.elapsed().as_millis() as u64,
        open_files,
        max_connections = limits.max_connections,
        max_per_ip = limits.max_per_peer,
        throttle = args.throttle,
        "ready"
    );
    crate::serve::serve(listener, app, limits, {
        let console = console.clone();
        async move {
            shutdown_signal().await;
            console.shutdown();
        }
    })
    .await
    .context("serving")?;
    // Bounded: nothing about spare host keys may hold up a stop.
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        crate::host_keys::shutdown(),
    )
    .await;
    if let Some(agent) = &agent {
        // The warm pool's guests are nobody's instances: they go with the server.
        agent
            .release_spare_guests(std::time::Duration::from_secs(3))
            .await;
        match agent.release_idle_host().await {
            Ok(true) => tracing::info!("no guest left: host network removed"),
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "removing the idle host network"),
        }
        crate::ebs::close().await;
    }
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
}

/// The API (every path the console does not own: SDKs post to `/` and sign `GET /?Action=…`),
/// `/healthz`, and the console under `/console`.
fn router(
    cloud: Cloud,
    throttle: Option<Arc<Throttle>>,
    console: &gureum_console::Console,
) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/healthz/agent", get(agent_status))
        .fallback(handle)
        .with_state(AppState {
            cloud: Arc::new(cloud),
            throttle,
        })
        .merge(console.router())
}

/// The host agent's background tasks as JSON (see `gureum_core::tasks`), for callers on
/// this host only: their errors name host paths and devices, which are no client's business.
async fn agent_status(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
) -> Response {
    if !peer.ip().is_loopback() {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    }
    let tasks: Vec<serde_json::Value> = state
        .cloud
        .agent_status()
        .into_iter()
        .map(|s| {
            serde_json::json!({
                "task": s.task.name(),
                "runs": s.runs,
                "running": s.running,
                "last_started_ms": s.last_started_ms,
                "last_duration_ms": s.last_duration_ms,
                "last_ok_ms": s.last_ok_ms,
                "last_error": s.last_error,
                "last_error_ms": s.last_error_ms,
                "failures_in_a_row": s.failures_in_a_row,
                "failures": s.failures,
                "panics": s.panics,
            })
        })
        .collect();
    (
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({ "tasks": tasks }).to_string(),
    )
        .into_response()
}

/// Which Query service a request is for, by its credential scope.
#[derive(Clone, Copy, PartialEq)]
enum Service {
    Ec2,
    Sts,
}

fn xml_response(status: u16, body: String, request_id: &str) -> Response {
    api_response(status, body, "text/xml;charset=UTF-8", request_id)
}

/// An API answer: status, body, its content type and the request id header.
pub(crate) fn api_response(
    status: u16,
    body: String,
    content_type: &'static str,
    request_id: &str,
) -> Response {
    let mut r = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        body,
    )
        .into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-amzn-requestid", v);
    }
    r
}

fn error_response(service: Service, err: &ApiError, request_id: &str) -> Response {
    let body = match service {
        Service::Ec2 => gureum_ec2::error_document(err, request_id),
        Service::Sts => sts::error_document(err, request_id),
    };
    xml_response(err.code.http_status(), body, request_id)
}

pub(crate) fn sigv4_error(e: gureum_sigv4::SigV4Error) -> ApiError {
    let code = match e.kind.code() {
        "MissingAuthenticationToken" => ErrorCode::MissingAuthenticationToken,
        "IncompleteSignature" => ErrorCode::IncompleteSignature,
        "AuthFailure" => ErrorCode::AuthFailure,
        "SignatureDoesNotMatch" => ErrorCode::SignatureDoesNotMatch,
        "RequestExpired" => ErrorCode::RequestExpired,
        "MissingParameter" => ErrorCode::MissingParameter,
        "InvalidParameterValue" => ErrorCode::InvalidParameterValue,
        _ => ErrorCode::AuthFailure,
    };
    ApiError::new(code, e.message)
}

async fn handle(State(st): State<AppState>, req: Request<Body>) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let span = tracing::info_span!("request", id = %request_id);
    let started = Instant::now();
    async move {
        // Cost Explorer speaks JSON 1.1 on the same endpoint, told apart by its target.
        if crate::billing::is_cost_explorer(req.headers()) {
            return crate::billing::serve_cost_explorer(&st.cloud, req, &request_id).await;
        }
        let (service, result) =
            serve_query(&st.cloud, st.throttle.as_deref(), req, &request_id).await;
        let response = match result {
            Ok(Answer::Landing) => landing_page(),
            Ok(Answer::Xml(body)) => xml_response(200, body, &request_id),
            Err(e) => {
                // A throttled client is the client's doing, and may be a flood: no error log.
                if e.code.http_status() >= 500 && e.code != ErrorCode::RequestLimitExceeded {
                    tracing::error!(code = %e.code, "request failed");
                } else {
                    tracing::debug!(code = %e.code, message = %e.message, "request refused");
                }
                error_response(service, &e, &request_id)
            }
        };
        tracing::debug!(
            status = response.status().as_u16(),
            us = started.elapsed().as_micros() as u64,
            "done"
        );
        response
    }
    .instrument(span)
    .await
}

/// A browser opening the endpoint lands in the console (its sign-in form when signed out).
fn landing_page() -> Response {
    axum::response::Redirect::to("/console").into_response()
}

/// The signing account's access key, once the request's signature checks out for `service`.
pub(crate) async fn verify_signature(
    cloud: &Cloud,
    parts: &axum::http::request::Parts,
    body: &[u8],
    auth: &gureum_sigv4::ParsedAuth,
    service: &str,
) -> Result<gureum_types::model::AccessKey, ApiError> {
    let key = match cloud.find_access_key(&auth.credential.access_key_id).await {
        Ok(Some(k)) => k,
        Ok(None) => {
            return Err(ApiError::new(
                ErrorCode::AuthFailure,
                "AWS was not able to validate the provided access credentials",
            ))
        }
        Err(e) => return Err(e.into_api("looking up an access key")),
    };
    let now = time::OffsetDateTime::now_utc();
    gureum_sigv4::verify(
        parts,
        body,
        auth,
        &key.secret_access_key,
        &cloud.region().name,
        service,
        now,
    )
    .map_err(sigv4_error)?;
    Ok(key)
}

/// What a successful request answers.
enum Answer {
    Xml(String),
    /// A plain browser visit to the endpoint: the console.
    Landing,
}

/// Authenticate, decode and run one Query request. Returns the service (to pick the error
/// envelope) and the response body or the error.
async fn serve_query(
    cloud: &Cloud,
    throttle: Option<&Throttle>,
    req: Request<Body>,
    request_id: &str,
) -> (Service, Result<Answer, ApiError>) {
    let (parts, body) = req.into_parts();
    // Bounded body: a client cannot make the server buffer more than this.
    let body = match to_bytes(body, MAX_REQUEST_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            return (
                Service::Ec2,
                Err(ApiError::new(
                    ErrorCode::RequestEntityTooLarge,
                    "Request entity too large",
                )),
            )
        }
    };
    if parts.method != Method::GET && parts.method != Method::POST {
        return (
            Service::Ec2,
            Err(ApiError::new(
                ErrorCode::InvalidRequest,
                format!("The HTTP method {} is not supported", parts.method),
            )),
        );
    }

    // A person opening the endpoint in a browser gets the console, not an XML error.
    if parts.method == Method::GET
        && parts.uri.path() == "/"
        && parts.uri.query().unwrap_or("").is_empty()
        && !parts.headers.contains_key(header::AUTHORIZATION)
    {
        return (Service::Ec2, Ok(Answer::Landing));
    }

    // 1. Authentication, before anything about the request is believed.
    let auth = match gureum_sigv4::parse(&parts) {
        Ok(a) => a,
        Err(e) => return (Service::Ec2, Err(sigv4_error(e))),
    };
    let service = if auth.credential.service == "sts" {
        Service::Sts
    } else {
        Service::Ec2
    };
    let expected_service = match service {
        Service::Sts => "sts",
        Service::Ec2 => "ec2",
    };
    let key = match verify_signature(cloud, &parts, &body, &auth, expected_service).await {
        Ok(k) => k,
        Err(e) => return (service, Err(e)),
    };

    // 2. Decoding: the query string and, for form posts, the body.
    let mut params = Params::default();
    if let Some(q) = parts.uri.query() {
        if let Err(e) = params.extend_from_form(q.as_bytes()) {
            return (service, Err(e));
        }
    }
    let is_form = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if parts.method == Method::POST && (is_form || !body.is_empty()) {
        if let Err(e) = params.extend_from_form(&body) {
            return (service, Err(e));
        }
    }
    let Some(action) = params.take("Action").filter(|a| !a.is_empty()) else {
        return (
            service,
            Err(ApiError::new(
                ErrorCode::MissingAction,
                "The request must contain the parameter Action",
            )),
        );
    };
    let _version = params.take("Version");
    tracing::debug!(action = %action, account = %key.account_id, "request");

    // 3. Run it.
    let result = match service {
        Service::Sts => match action.as_str() {
            "GetCallerIdentity" => params
                .finish()
                .map(|_| sts::caller_identity(&key.account_id, request_id)),
            other => Err(ApiError::new(
                ErrorCode::InvalidAction,
                format!(
                    "Could not find operation {other} for version {}",
                    sts::STS_VERSION
                ),
            )),
        },
        Service::Ec2 => match gureum_ec2::parse(&action, params) {
            Err(e) => Err(e),
            Ok(req) => {
                let name = req.action.name();
                // Before anything runs: a throttled request changes nothing.
                if let Some(Err(e)) = throttle.map(|t| t.check(&key.account_id, name)) {
                    return (service, Err(e));
                }
                let ctx = Ctx {
                    account_id: key.account_id.clone(),
                    request_id: request_id.to_string(),
                };
                match cloud.dispatch(&ctx, req).await {
                    Ok(resp) => Ok(resp.render(name, request_id)),
                    Err(e) => Err(e.into_api(name)),
                }
            }
        },
    };
    (service, result.map(Answer::Xml))
}
