//! The bounds, over real sockets on 127.0.0.1.

use super::*;
use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use std::convert::Infallible;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

const REQUEST: &[u8] = b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n";

/// A server answering "ok" (after `delay`), its address, its counters and its stop switch.
async fn start(
    limits: Limits,
    delay: Duration,
) -> (
    SocketAddr,
    Arc<Stats>,
    oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let bounded = Bounded::new(limits);
    let stats = bounded.stats();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        bounded
            .serve(
                listener,
                http1::Builder::new(),
                move |stream, _peer| {
                    let service = service_fn(move |_req| async move {
                        tokio::time::sleep(delay).await;
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
                    });
                    (stream, service)
                },
                async {
                    let _ = stopped.await;
                },
            )
            .await
            .unwrap();
    });
    (addr, stats, stop, task)
}

/// Sends one request on `s` and reads its whole answer.
async fn ask(s: &mut TcpStream) -> io::Result<String> {
    s.write_all(REQUEST).await?;
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.ends_with(b"\r\n\r\nok") {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        got.extend_from_slice(&buf[..n]);
    }
    Ok(String::from_utf8_lossy(&got).into_owned())
}

/// True once the server closed `s` (EOF or reset) within `within`.
async fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout(within, s.read(&mut buf)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

fn limits() -> Limits {
    Limits {
        max_connections: 100,
        max_per_peer: 40,
        header_read_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(60),
        shutdown_grace: Duration::from_secs(2),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_from_the_same_address_make_room_for_a_request() {
    let (addr, stats, stop, task) = start(limits(), Duration::ZERO).await;
    // Far more idle connections than the per-peer cap, from the client's own address.
    let mut idle = Vec::new();
    for _ in 0..200 {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    // Wait until the server has taken them all in (and shed the excess).
    for _ in 0..200 {
        if stats.accepted.load(Ordering::Relaxed) >= 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let t = Instant::now();
    let mut fresh = TcpStream::connect(addr).await.unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(1), ask(&mut fresh))
        .await
        .expect("answered within a second")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(t.elapsed() < Duration::from_secs(1));
    assert!(stats.open.load(Ordering::Relaxed) <= 40);
    assert!(stats.shed.load(Ordering::Relaxed) >= 160);
    // The oldest idle connections were the ones closed.
    assert!(closed_within(&mut idle[0], Duration::from_secs(1)).await);
    let _ = stop.send(());
    task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_total_cap_sheds_across_peers() {
    let (addr, stats, stop, task) = start(
        Limits {
            max_connections: 30,
            max_per_peer: 1000,
            ..limits()
        },
        Duration::ZERO,
    )
    .await;
    let mut idle = Vec::new();
    for _ in 0..60 {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    let mut fresh = TcpStream::connect(addr).await.unwrap();
    assert!(ask(&mut fresh).await.unwrap().starts_with("HTTP/1.1 200"));
    assert!(stats.open.load(Ordering::Relaxed) <= 30);
    let _ = stop.send(());
    task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_head_times_out_but_idle_keep_alive_lasts_longer() {
    let (addr, stats, stop, task) = start(
        Limits {
            header_read_timeout: Duration::from_millis(300),
            idle_timeout: Duration::from_millis(1500),
            ..limits()
        },
        Duration::ZERO,
    )
    .await;
    // Slowloris: half a head, then nothing.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /x HTTP/1.1\r\nHost:").await.unwrap();
    // Keep-alive: a full request, then idle.
    let mut kept = TcpStream::connect(addr).await.unwrap();
    ask(&mut kept).await.unwrap();
    let t = Instant::now();
    assert!(closed_within(&mut slow, Duration::from_secs(1)).await);
    assert!(t.elapsed() < Duration::from_millis(900));
    // Still open past the header timeout, and serving.
    tokio::time::sleep(Duration::from_millis(300)).await;
    ask(&mut kept).await.unwrap();
    // Then closed by the idle timeout.
    assert!(closed_within(&mut kept, Duration::from_secs(3)).await);
    assert!(stats.timed_out.load(Ordering::Relaxed) >= 2);
    let _ = stop.send(());
    task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_in_flight_are_neither_timed_out_nor_shed() {
    let (addr, stats, stop, task) = start(
        Limits {
            max_per_peer: 2,
            idle_timeout: Duration::from_millis(200),
            header_read_timeout: Duration::from_millis(200),
            ..limits()
        },
        Duration::from_millis(800),
    )
    .await;
    let mut a = TcpStream::connect(addr).await.unwrap();
    let mut b = TcpStream::connect(addr).await.unwrap();
    let (ra, rb, refused) = tokio::join!(ask(&mut a), ask(&mut b), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        // Both busy now (for 800 ms, well past both timeouts): a third connection from the
        // same address is closed at once.
        let mut c = TcpStream::connect(addr).await.unwrap();
        closed_within(&mut c, Duration::from_millis(500)).await
    });
    assert!(ra.unwrap().starts_with("HTTP/1.1 200"));
    assert!(rb.unwrap().starts_with("HTTP/1.1 200"));
    assert!(refused, "the third connection was closed");
    assert!(stats.refused.load(Ordering::Relaxed) >= 1);
    let _ = stop.send(());
    task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_is_prompt_with_idle_connections_open() {
    let (addr, _stats, stop, task) = start(limits(), Duration::ZERO).await;
    let mut idle = Vec::new();
    for _ in 0..20 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        ask(&mut s).await.unwrap();
        idle.push(s);
    }
    let t = Instant::now();
    let _ = stop.send(());
    task.await.unwrap();
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );
    assert!(closed_within(&mut idle[0], Duration::from_millis(500)).await);
}
