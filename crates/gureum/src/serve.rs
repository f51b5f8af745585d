//! The serving layer of `gureum up`'s listener (API and console on one port): the bounded
//! accept loop of `gureum-serve` around the axum router, a caught panic answered as EC2's
//! `InternalError`, and the process's open-file limit.

use std::any::Any;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::response::Response;
use axum::{Extension, Router};
use gureum_serve::{Bounded, Limits};
use gureum_types::ApiError;
use hyper_util::service::TowerToHyperService;
use tower::Layer;
use tower_http::catch_panic::CatchPanicLayer;

/// Raises the open-file soft limit to the hard limit (systemd and most shells start services
/// at 1,024, which a thousand idle connections exhaust); returns the limit now in force.
pub fn raise_open_file_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "could not raise the open-file limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft)
        }
    }
}

/// The connection bounds `gureum up` serves with, from its flags.
pub fn limits(args: &crate::cli::UpArgs, open_files: u64) -> Limits {
    let fit = Limits::for_open_files(open_files);
    Limits {
        max_connections: args.max_connections.unwrap_or(fit.max_connections),
        max_per_peer: args.max_connections_per_ip.unwrap_or(fit.max_per_peer),
        header_read_timeout: Duration::from_secs_f64(args.header_read_timeout),
        idle_timeout: Duration::from_secs_f64(args.idle_timeout),
        ..fit
    }
}

/// A panic in any handler (API or console) answers 500 `InternalError` in the EC2 error
/// envelope and is logged; the connection and the process go on.
pub fn catch_panics(router: Router) -> Router {
    router.layer(CatchPanicLayer::custom(panic_response))
}

fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let what = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    let request_id = uuid::Uuid::new_v4().to_string();
    tracing::error!(panic = what, %request_id, "a request handler panicked");
    let err = ApiError::internal();
    crate::api::api_response(
        err.code.http_status(),
        gureum_ec2::error_document(&err, &request_id),
        "text/xml;charset=UTF-8",
        &request_id,
    )
}

/// Serves `router` on `listener` within `limits` until `shutdown` completes. Handlers see the
/// peer's address as axum's `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let router = catch_panics(router);
    Bounded::new(limits)
        .serve(
            listener,
            hyper::server::conn::http1::Builder::new(),
            move |stream, peer: SocketAddr| {
                let service = Extension(ConnectInfo(peer)).layer(router.clone());
                (stream, TowerToHyperService::new(service))
            },
            shutdown,
        )
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn get_once(addr: SocketAddr, path: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    /// A handler that panics answers EC2's InternalError, and the server keeps serving.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_handler_answers_internal_error_and_serving_goes_on() {
        let router =
            Router::new()
                .route(
                    "/boom",
                    get(|| async {
                        if true {
                            panic!("handler bug");
                        }
                        "unreachable"
                    }),
                )
                .route(
                    "/peer",
                    get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move {
                        peer.ip().to_string()
                    }),
                );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, router, Limits::default(), async {
            let _ = stopped.await;
        }));
        for _ in 0..3 {
            let answer = get_once(addr, "/boom").await;
            assert!(answer.starts_with("HTTP/1.1 500"), "{answer}");
            assert!(answer.contains("<Code>InternalError</Code>"), "{answer}");
            assert!(answer.contains("<RequestID>"), "{answer}");
            assert!(
                answer.to_ascii_lowercase().contains("x-amzn-requestid"),
                "{answer}"
            );
        }
        let answer = get_once(addr, "/peer").await;
        assert!(
            answer.starts_with("HTTP/1.1 200") && answer.ends_with("127.0.0.1"),
            "{answer}"
        );
        let _ = stop.send(());
        server.await.unwrap().unwrap();
    }
}
