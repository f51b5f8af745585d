//! HTTP/1.1 serving under bounds, for every listener of gureum (the API and console, the
//! instance metadata service): no client can hold the server's file descriptors or its accept
//! loop hostage.
//!
//! [`Bounded::serve`] owns the accept loop and, for each connection, a task running hyper's
//! HTTP/1.1 connection. It keeps a registry of the open connections and what each is doing:
//!
//! - **Timeouts.** A connection that starts a request's head must finish it within
//!   `header_read_timeout` (slowloris); a connection with no request in flight is closed after
//!   `idle_timeout` (keep-alive, and a connection that never sends anything). A request in
//!   flight is never cut by either: its handler owns its time.
//! - **Caps.** At most `max_connections` in total and `max_per_peer` from one source address.
//!   A new connection over a cap does not wait and is not refused while an idle connection
//!   exists: the idle connection that has waited longest is closed instead (of the same peer
//!   when the per-peer cap is the one reached). Idle connections cost the server nothing but
//!   a descriptor and any client reconnects, so shedding them first keeps the server
//!   answering whoever sends a request, also when thousands of idle connections come from the
//!   same address as a legitimate client (loopback, NAT). Only when every connection under
//!   the cap has a request in flight is the new one closed at once.
//! - **Out of descriptors.** An accept that fails (EMFILE) sheds the longest-idle connection
//!   and retries shortly, instead of spinning or giving up.
//! - **Shutdown.** When the shutdown future completes the listener closes, idle connections
//!   close at once, requests in flight get `shutdown_grace` to finish, then every connection
//!   is dropped.
//!
//! hyper's own header-read timer is switched off: in hyper 1 it starts as soon as a connection
//! waits for a head, so it would also be the idle timeout; the registry keeps the two apart.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinSet;

type BoxError = Box<dyn StdError + Send + Sync>;

/// The bounds of one listener.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Open connections at most, all peers together.
    pub max_connections: usize,
    /// Open connections at most from one source address.
    pub max_per_peer: usize,
    /// From a request's first byte to the end of its head.
    pub header_read_timeout: Duration,
    /// How long a connection with no request in flight stays open.
    pub idle_timeout: Duration,
    /// How long requests in flight may run on after the shutdown signal.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 4096,
            max_per_peer: 512,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

impl Limits {
    /// The defaults, with the total cap lowered to half of `open_files` (the process's
    /// open-file limit): the other half stays for the store, the host drivers and logs.
    pub fn for_open_files(open_files: u64) -> Self {
        let d = Limits::default();
        let fit = usize::try_from(open_files / 2)
            .unwrap_or(usize::MAX)
            .max(16);
        Limits {
            max_connections: d.max_connections.min(fit),
            max_per_peer: d.max_per_peer.min(fit),
            ..d
        }
    }
}

/// Counters of a listener's connections, for logs and tests.
#[derive(Debug, Default)]
pub struct Stats {
    /// Open right now.
    pub open: AtomicUsize,
    /// Accepted since the start (including those closed at once).
    pub accepted: AtomicU64,
    /// Idle connections closed to make room for a new one.
    pub shed: AtomicU64,
    /// New connections closed at once: every connection under the cap was busy.
    pub refused: AtomicU64,
    /// Closed by the header-read or idle timeout.
    pub timed_out: AtomicU64,
}

/// A listener's bounds and its registry of open connections.
pub struct Bounded {
    registry: Arc<Registry>,
}

impl Bounded {
    pub fn new(limits: Limits) -> Self {
        Bounded {
            registry: Arc::new(Registry {
                epoch: Instant::now(),
                limits,
                table: Mutex::default(),
                next_id: AtomicU64::new(1),
                stats: Arc::default(),
            }),
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.registry.limits
    }

    /// The listener's counters (live).
    pub fn stats(&self) -> Arc<Stats> {
        self.registry.stats.clone()
    }

    /// Serves `listener` until `shutdown` completes (see the module doc), each connection
    /// with `http`'s settings (its header-read timer is replaced by the registry's). `make`
    /// turns an accepted socket into the I/O object hyper reads and writes (the socket
    /// itself, or a wrapper) and the connection's service.
    ///
    /// Accept errors are logged and retried, never fatal; the only error is the listener's
    /// address being unreadable.
    pub async fn serve<M, IO, S, B>(
        self,
        listener: TcpListener,
        mut http: http1::Builder,
        mut make: M,
        shutdown: impl Future<Output = ()>,
    ) -> io::Result<()>
    where
        M: FnMut(TcpStream, SocketAddr) -> (IO, S),
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
        S: hyper::service::Service<Request<Incoming>, Response = Response<B>> + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError>,
        B: Body + Unpin + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        let local = listener.local_addr()?;
        let registry = self.registry;
        http.timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(None);
        let graceful = GracefulShutdown::new();
        // Owning the connection tasks means dropping `serve` ends them too.
        let mut tasks = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                accepted = listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(accepted) => accepted,
                        Err(err) => {
                            // Out of descriptors (or a connection reset before it was
                            // accepted): make room, and let the backlog wait a moment.
                            tracing::warn!(%local, %err, "accept failed");
                            registry.shed_oldest_idle(None);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            continue;
                        }
                    };
                    registry.stats.accepted.fetch_add(1, Ordering::Relaxed);
                    let Some(slot) = registry.admit(peer.ip()) else {
                        tracing::debug!(%peer, "every connection under the cap is busy: closing a new one");
                        continue;
                    };
                    // Small answers, one per request: do not wait for Nagle.
                    let _ = stream.set_nodelay(true);
                    let (io, service) = make(stream, peer);
                    let state = slot.state.clone();
                    let io = Watched { inner: io, state: state.clone(), registry: registry.clone() };
                    let service = Tracked { inner: service, state: state.clone(), registry: registry.clone() };
                    let connection = graceful.watch(http.serve_connection(TokioIo::new(io), service));
                    let registry = registry.clone();
                    tasks.spawn(async move {
                        let _slot = slot;
                        tokio::pin!(connection);
                        loop {
                            let wait = registry.until_deadline(&state);
                            tokio::select! {
                                ended = &mut connection => {
                                    if let Err(err) = ended {
                                        tracing::debug!(%peer, %err, "connection ended with an error");
                                    }
                                    break;
                                }
                                () = state.close.notified() => {
                                    tracing::debug!(%peer, "idle connection shed for a new one");
                                    break;
                                }
                                () = state.head_started.notified() => {}
                                () = tokio::time::sleep(wait) => {
                                    if registry.until_deadline(&state).is_zero() {
                                        registry.stats.timed_out.fetch_add(1, Ordering::Relaxed);
                                        tracing::debug!(%peer, "connection timed out");
                                        break;
                                    }
                                }
                            }
                        }
                    });
                }
            }
        }

        drop(listener);
        tracing::debug!(%local, "no longer accepting; closing connections");
        if tokio::time::timeout(registry.limits.shutdown_grace, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::debug!(%local, "closing connections still busy after the grace period");
        }
        tasks.shutdown().await;
        Ok(())
    }
}

/// What the registry knows of one connection.
struct ConnState {
    id: u64,
    peer: IpAddr,
    /// Requests whose response has not been sent completely.
    in_flight: AtomicU32,
    /// When the connection last became idle (accepted, or its last response ended), in ms
    /// since the registry's epoch.
    idle_since: AtomicU64,
    /// When the head of the next request started arriving, ms since the epoch; 0: not yet.
    head_since: AtomicU64,
    /// Told to close (shed for a new connection).
    close: Notify,
    /// Told that a head started arriving: the deadline moved closer.
    head_started: Notify,
}

#[derive(Default)]
struct Table {
    conns: HashMap<u64, Arc<ConnState>>,
    per_peer: HashMap<IpAddr, usize>,
}

impl Table {
    fn remove(&mut self, id: u64) -> Option<Arc<ConnState>> {
        let c = self.conns.remove(&id)?;
        if let Some(n) = self.per_peer.get_mut(&c.peer) {
            *n -= 1;
            if *n == 0 {
                self.per_peer.remove(&c.peer);
            }
        }
        Some(c)
    }

    /// The connection with no request in flight that has waited longest, of `peer` if given.
    /// A scan: it runs only when a cap is reached.
    fn oldest_idle(&self, peer: Option<IpAddr>) -> Option<u64> {
        self.conns
            .values()
            .filter(|c| peer.is_none_or(|p| c.peer == p))
            .filter(|c| c.in_flight.load(Ordering::Acquire) == 0)
            .min_by_key(|c| (c.idle_since.load(Ordering::Relaxed), c.id))
            .map(|c| c.id)
    }
}

struct Registry {
    epoch: Instant,
    limits: Limits,
    table: Mutex<Table>,
    next_id: AtomicU64,
    stats: Arc<Stats>,
}

impl Registry {
    /// Milliseconds since the epoch, never 0 (0 means "unset" in [`ConnState`]).
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX) + 1
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        // The table stays consistent at every step: a panic elsewhere leaves it usable.
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Room for a new connection from `peer`, shedding an idle one if a cap is reached.
    fn admit(self: &Arc<Self>, peer: IpAddr) -> Option<Slot> {
        let mut t = self.table();
        if t.per_peer.get(&peer).copied().unwrap_or(0) >= self.limits.max_per_peer
            && !self.shed(&mut t, Some(peer))
        {
            self.stats.refused.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        if t.conns.len() >= self.limits.max_connections && !self.shed(&mut t, None) {
            self.stats.refused.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let state = Arc::new(ConnState {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            peer,
            in_flight: AtomicU32::new(0),
            idle_since: AtomicU64::new(self.now_ms()),
            head_since: AtomicU64::new(0),
            close: Notify::new(),
            head_started: Notify::new(),
        });
        t.conns.insert(state.id, state.clone());
        *t.per_peer.entry(peer).or_insert(0) += 1;
        self.stats.open.store(t.conns.len(), Ordering::Relaxed);
        Some(Slot {
            registry: self.clone(),
            state,
        })
    }

    /// Closes the longest-idle connection (of `peer` if given); false if none is idle.
    fn shed(&self, t: &mut Table, peer: Option<IpAddr>) -> bool {
        let Some(id) = t.oldest_idle(peer) else {
            return false;
        };
        if let Some(c) = t.remove(id) {
            // A permit is stored if its task is not waiting yet: the close is never lost.
            c.close.notify_one();
            self.stats.shed.fetch_add(1, Ordering::Relaxed);
            self.stats.open.store(t.conns.len(), Ordering::Relaxed);
        }
        true
    }

    fn shed_oldest_idle(&self, peer: Option<IpAddr>) -> bool {
        let mut t = self.table();
        self.shed(&mut t, peer)
    }

    /// How long until the connection's current timeout, zero if it has passed. A connection
    /// with a request in flight has none: look again after an idle timeout.
    fn until_deadline(&self, c: &ConnState) -> Duration {
        if c.in_flight.load(Ordering::Acquire) > 0 {
            return self.limits.idle_timeout;
        }
        let head = c.head_since.load(Ordering::Acquire);
        let deadline = if head != 0 {
            head.saturating_add(ms(self.limits.header_read_timeout))
        } else {
            c.idle_since
                .load(Ordering::Acquire)
                .saturating_add(ms(self.limits.idle_timeout))
        };
        Duration::from_millis(deadline.saturating_sub(self.now_ms()))
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A connection's place in the registry, given back when its task ends (or is aborted).
struct Slot {
    registry: Arc<Registry>,
    state: Arc<ConnState>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut t = self.registry.table();
        // Already gone if it was shed.
        t.remove(self.state.id);
        self.registry
            .stats
            .open
            .store(t.conns.len(), Ordering::Relaxed);
    }
}

/// The connection's I/O, noting when the head of a request starts arriving on an idle
/// connection (the start of its header-read timeout).
struct Watched<IO> {
    inner: IO,
    state: Arc<ConnState>,
    registry: Arc<Registry>,
}

impl<IO: AsyncRead + Unpin> AsyncRead for Watched<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(())))
            && buf.filled().len() > before
            && self.state.in_flight.load(Ordering::Acquire) == 0
            && self.state.head_since.load(Ordering::Acquire) == 0
        {
            let now = self.registry.now_ms();
            self.state.head_since.store(now, Ordering::Release);
            self.state.head_started.notify_one();
        }
        polled
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Watched<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A request in flight on a connection, from the service call until its response body has
/// been sent (or dropped).
struct Busy {
    state: Arc<ConnState>,
    registry: Arc<Registry>,
}

impl Busy {
    fn new(state: Arc<ConnState>, registry: Arc<Registry>) -> Self {
        state.in_flight.fetch_add(1, Ordering::AcqRel);
        state.head_since.store(0, Ordering::Release);
        Busy { state, registry }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.state
            .idle_since
            .store(self.registry.now_ms(), Ordering::Release);
        self.state.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The connection's service, marking each request busy until its response is sent.
struct Tracked<S> {
    inner: S,
    state: Arc<ConnState>,
    registry: Arc<Registry>,
}

impl<S, B> hyper::service::Service<Request<Incoming>> for Tracked<S>
where
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>>,
    S::Future: Send + 'static,
    B: Body + Unpin,
{
    type Response = Response<TrackedBody<B>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let busy = Busy::new(self.state.clone(), self.registry.clone());
        let answer = self.inner.call(req);
        Box::pin(async move {
            let response = answer.await?;
            Ok(response.map(|inner| TrackedBody {
                inner,
                busy: Some(busy),
            }))
        })
    }
}

/// A response body that ends its request's busy time when it ends or is dropped.
pub struct TrackedBody<B> {
    inner: B,
    busy: Option<Busy>,
}

impl<B: Body + Unpin> Body for TrackedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) {
            self.busy = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests;
