//! The TCP side of the data plane: an accept loop that holds at most a set number of
//! client connections, and a watchdog per connection that closes it when its client is
//! too slow to send a request's headers, leaves it idle too long, or stops reading an
//! answer. Request bodies and whole requests are bounded by the data plane's handler,
//! which can still answer them.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use http::{Request, Response};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;
use tower::ServiceExt as _;

/// The largest connection cap accepted: far above what one process can serve, and low
/// enough to count every slot back at shutdown.
pub(crate) const MAX_CONNECTIONS_LIMIT: usize = 1_000_000;

/// The watchdog looks at a connection at least this rarely, however short its timeouts.
const MIN_LOOK_INTERVAL: Duration = Duration::from_millis(1);

/// What one client connection may hold and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Most connections served at once (1 to [`MAX_CONNECTIONS_LIMIT`]); further
    /// connections wait in the listen backlog until one closes.
    pub(crate) max_connections: usize,
    /// Longest from the first byte of a request to the end of its headers; then the
    /// connection is closed.
    pub header_read_timeout: Duration,
    /// Longest from the end of a request's headers to the end of its body; the data
    /// plane then answers 408 and closes the connection.
    pub(crate) body_read_timeout: Duration,
    /// Longest a connection may stay open with no request on it (a new connection
    /// included: HTTP clients open spare ones for their pools), or with an answer its
    /// client does not read; then it is closed.
    pub idle_timeout: Duration,
}

/// What answers the requests of a connection.
pub(crate) trait App: Clone + Send + Sync + 'static {
    /// Answers one request.
    fn call(&self, req: Request<Body>) -> impl Future<Output = Response<Body>> + Send + 'static;
}

impl App for Router {
    fn call(&self, req: Request<Body>) -> impl Future<Output = Response<Body>> + Send + 'static {
        let app = self.clone();
        async move {
            match app.oneshot(req).await {
                Ok(response) => response,
                Err(never) => match never {},
            }
        }
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then stops accepting, closes
/// every connection with no request in progress, lets every request in progress finish
/// and returns once every connection is closed.
pub(crate) async fn serve(
    listener: TcpListener,
    app: impl App,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let slots_total = limits.max_connections.clamp(1, MAX_CONNECTIONS_LIMIT);
    let slots = Arc::new(Semaphore::new(slots_total));
    let (closing, closing_rx) = watch::channel(());
    let mut shutdown = pin!(shutdown);
    loop {
        // A slot first, so that over the cap connections wait unaccepted.
        let slot = tokio::select! {
            biased;
            () = &mut shutdown => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let stream = tokio::select! {
            biased;
            () = &mut shutdown => break,
            stream = accept(&listener) => stream,
        };
        let watch = Arc::new(Activity::new());
        tokio::spawn(watch.serve(stream, app.clone(), limits, closing_rx.clone(), slot));
    }
    drop(listener);
    closing.send_replace(());
    // Every connection holds its slot until it has closed.
    let all = u32::try_from(slots_total).unwrap_or(u32::MAX);
    let _ = slots.acquire_many(all).await;
    Ok(())
}

/// Accepts the next connection, riding out errors that concern one connection only or a
/// passing shortage such as running out of file descriptors.
async fn accept(listener: &TcpListener) -> TcpStream {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => return stream,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionAborted
                        | io::ErrorKind::ConnectionReset
                        | io::ErrorKind::ConnectionRefused
                ) => {}
            Err(e) => {
                tracing::error!(error = %e, "accepting a connection failed; retrying in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// What a connection is doing, as its watchdog sees it.
struct Activity {
    state: Mutex<State>,
    /// Set once the server shuts down: the watchdog then waits for the requests in
    /// progress to end.
    draining: AtomicBool,
    /// Woken when a request ends while draining.
    changed: Notify,
}

#[derive(Debug)]
struct State {
    /// Requests whose handler has not answered yet. No deadline runs while there is one:
    /// the data plane bounds the body and the whole request itself.
    handling: usize,
    /// Answers whose body is not yet written out.
    sending: usize,
    /// When the first byte of the request being waited for arrived; `None` while idle.
    head_since: Option<Instant>,
    /// When the connection was opened or last became free of requests.
    idle_since: Instant,
    /// When bytes last moved either way.
    last_io: Instant,
}

impl State {
    /// When the connection is to be closed if nothing changes; `None` while a request is
    /// being handled.
    fn deadline(&self, limits: &ConnectionLimits) -> Option<Instant> {
        if self.handling > 0 {
            return None;
        }
        if self.sending > 0 {
            return Some(self.last_io + limits.idle_timeout);
        }
        Some(match self.head_since {
            Some(since) => since + limits.header_read_timeout,
            None => self.idle_since.max(self.last_io) + limits.idle_timeout,
        })
    }
}

impl Activity {
    fn new() -> Self {
        let now = Instant::now();
        Activity {
            state: Mutex::new(State {
                handling: 0,
                sending: 0,
                head_since: None,
                idle_since: now,
                last_io: now,
            }),
            draining: AtomicBool::new(false),
            changed: Notify::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Serves one connection until it ends, its watchdog closes it, or the server shuts
    /// down and it has no request left; the slot is freed on return.
    async fn serve<A: App>(
        self: Arc<Self>,
        stream: TcpStream,
        app: A,
        limits: ConnectionLimits,
        mut closing: watch::Receiver<()>,
        _slot: OwnedSemaphorePermit,
    ) {
        let io = TokioIo::new(Watched {
            io: stream,
            activity: self.clone(),
        });
        let service = Tracked {
            app,
            activity: self.clone(),
        };
        let mut builder = auto::Builder::new(TokioExecutor::new());
        // The watchdog bounds header reads for both HTTP versions and apart from idle
        // time, which hyper's own HTTP/1 timer would not.
        builder.http1().header_read_timeout(None);
        let mut conn = pin!(builder.serve_connection(io, service));
        let mut draining = false;
        // Every deadline lies at least this long after the event that set it, so a
        // watchdog that looks at least this often never misses one, and requests need
        // not wake it: it sleeps until the deadline in force or for this long, whichever
        // is sooner, and the timer is only reset when it fires.
        let look_every = limits
            .header_read_timeout
            .min(limits.idle_timeout)
            .max(MIN_LOOK_INTERVAL);
        let mut timer = pin!(tokio::time::sleep_until(Instant::now()));
        loop {
            {
                let state = self.state();
                // Shutting down: a connection with no request in progress goes now,
                // even halfway through a request's headers.
                if draining && state.handling == 0 && state.sending == 0 {
                    return;
                }
                let now = Instant::now();
                let wake = match state.deadline(&limits) {
                    Some(at) if at <= now => {
                        tracing::debug!("closing a connection: header, idle or write timeout");
                        return;
                    }
                    Some(at) => at.min(now + look_every),
                    None => now + look_every,
                };
                timer.as_mut().reset(wake);
            }
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::trace!(error = %e, "connection ended with an error");
                    }
                    return;
                }
                () = timer.as_mut() => {}
                () = self.changed.notified(), if draining => {}
                _ = closing.changed(), if !draining => {
                    draining = true;
                    self.draining.store(true, Ordering::SeqCst);
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }

    /// Wakes the watchdog when it waits for the connection's last request to end.
    fn request_ended(&self) {
        if self.draining.load(Ordering::SeqCst) {
            self.changed.notify_one();
        }
    }

    /// Bytes arrived: the start of a request's headers when the connection was idle.
    fn read(&self) {
        let mut state = self.state();
        let now = Instant::now();
        state.last_io = now;
        if state.handling == 0 && state.sending == 0 && state.head_since.is_none() {
            state.head_since = Some(now);
        }
    }

    fn wrote(&self) {
        self.state().last_io = Instant::now();
    }
}

/// Marks a request as being handled until dropped.
struct Handling(Arc<Activity>);

impl Handling {
    fn start(activity: &Arc<Activity>) -> (Handling, Sending) {
        let mut state = activity.state();
        state.handling += 1;
        state.sending += 1;
        state.head_since = None;
        drop(state);
        (Handling(activity.clone()), Sending(activity.clone()))
    }
}

impl Drop for Handling {
    fn drop(&mut self) {
        self.0.state().handling -= 1;
        self.0.request_ended();
    }
}

/// Marks an answer as being written until dropped.
struct Sending(Arc<Activity>);

impl Drop for Sending {
    fn drop(&mut self) {
        let mut state = self.0.state();
        state.sending -= 1;
        if state.sending == 0 && state.handling == 0 {
            state.idle_since = Instant::now();
        }
        drop(state);
        self.0.request_ended();
    }
}

/// The router as a hyper service that tells the watchdog when each request is handled and
/// when its answer has been written.
#[derive(Clone)]
struct Tracked<A> {
    app: A,
    activity: Arc<Activity>,
}

impl<A: App> hyper::service::Service<Request<Incoming>> for Tracked<A> {
    type Response = Response<TrackedBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let (handling, sending) = Handling::start(&self.activity);
        let answer = self.app.call(req.map(Body::new));
        Box::pin(async move {
            let response = answer.await;
            drop(handling);
            Ok(response.map(|body| TrackedBody {
                body,
                _sending: sending,
            }))
        })
    }
}

/// An answer's body that marks the answer as written once hyper is done with it.
struct TrackedBody {
    body: Body,
    _sending: Sending,
}

impl hyper::body::Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A client's socket that reports each read and write to the connection's watchdog.
struct Watched {
    io: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.activity.read();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.wrote();
        }
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.wrote();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ConnectionLimits {
        ConnectionLimits {
            max_connections: 8,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(120),
        }
    }

    /// The deadline follows the connection through its life: idle until a request's
    /// first byte, headers from then on, none while handling, the idle timeout after
    /// the answer, headers again from the next request's first byte.
    #[tokio::test(start_paused = true)]
    async fn the_deadline_follows_the_connection_through_its_life() {
        let l = limits();
        let activity = Arc::new(Activity::new());
        let start = Instant::now();
        assert_eq!(activity.state().deadline(&l), Some(start + l.idle_timeout));
        tokio::time::advance(Duration::from_secs(3)).await;
        activity.read();
        let first = Instant::now();
        assert_eq!(
            activity.state().deadline(&l),
            Some(first + l.header_read_timeout)
        );
        // Further bytes of the same headers do not move the deadline.
        tokio::time::advance(Duration::from_secs(2)).await;
        activity.read();
        assert_eq!(
            activity.state().deadline(&l),
            Some(first + l.header_read_timeout)
        );
        let (handling, sending) = Handling::start(&activity);
        assert_eq!(activity.state().deadline(&l), None);
        tokio::time::advance(Duration::from_secs(500)).await;
        assert_eq!(
            activity.state().deadline(&l),
            None,
            "handlers run unbounded here"
        );
        drop(handling);
        tokio::time::advance(Duration::from_secs(1)).await;
        activity.wrote();
        let written = Instant::now();
        assert_eq!(
            activity.state().deadline(&l),
            Some(written + l.idle_timeout),
            "an unread answer is bounded by the idle timeout"
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        drop(sending);
        let idle = Instant::now();
        assert_eq!(activity.state().deadline(&l), Some(idle + l.idle_timeout));
        tokio::time::advance(Duration::from_secs(30)).await;
        activity.read();
        let next = Instant::now();
        assert_eq!(
            activity.state().deadline(&l),
            Some(next + l.header_read_timeout)
        );
    }
}
