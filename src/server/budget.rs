//! The memory a client of the gRPC port can make portcullis hold: a budget of request-body
//! bytes in flight per connection and for the whole process.
//!
//! A gRPC message announces its length in its first five bytes; before any more of a
//! Check's body is let through to the decoder, that many bytes are taken from the
//! connection's budget and from the process's, and given back when the Check is answered.
//! A message larger than the connection's whole budget, or budget not free within
//! `limits.overload_wait`, fails the stream with `RESOURCE_EXHAUSTED` before it is
//! buffered (Envoy then denies, `failure_mode_allow: false`); so does a body that is not
//! complete within `server.connections.header_timeout`. What is not yet let through waits
//! in HTTP/2 flow control (a bounded window per stream and connection), not in memory the
//! client chooses. Every request is also reported to its connection
//! ([`super::connection::ConnectionState`]), which keeps busy connections open and closes
//! idle ones.

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http_body::{Body, Frame};
use smallvec::SmallVec;
use tokio::{
    sync::{OwnedSemaphorePermit, Semaphore},
    time::Sleep,
};
use tonic::Status;

use super::connection::{ConnectionState, RequestGuard};

/// The per-connection state, as the gRPC server puts it in each request's extensions.
#[derive(Clone)]
pub struct ConnectionInfo(pub Arc<ConnectionState>);

/// The bytes a message's length prefix takes (compression flag, big-endian length).
const PREFIX: usize = 5;
/// The one method whose requests are budgeted.
const CHECK_PATH: &str = "/envoy.service.auth.v3.Authorization/Check";

/// The tower layer that applies the budget to every gRPC request.
#[derive(Clone)]
pub struct BudgetLayer {
    process: Arc<Semaphore>,
    /// How long a message waits for budget.
    wait: Duration,
    /// How long a request body may take to arrive.
    deadline: Duration,
}

impl BudgetLayer {
    pub fn new(process_bytes: usize, wait: Duration, deadline: Duration) -> BudgetLayer {
        BudgetLayer {
            process: Arc::new(Semaphore::new(process_bytes)),
            wait,
            deadline,
        }
    }
}

impl<S> tower::Layer<S> for BudgetLayer {
    type Service = Budgeted<S>;

    fn layer(&self, inner: S) -> Budgeted<S> {
        Budgeted {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service behind [`BudgetLayer`].
#[derive(Clone)]
pub struct Budgeted<S> {
    inner: S,
    layer: BudgetLayer,
}

type Request = http::Request<tonic::body::Body>;

impl<S, R> tower::Service<Request> for Budgeted<S>
where
    S: tower::Service<Request, Response = R>,
    S::Future: Send + 'static,
    R: Send + 'static,
{
    type Response = R;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<R, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let connection = request
            .extensions()
            .get::<ConnectionInfo>()
            .map(|info| info.0.clone());
        let guard: Option<RequestGuard> = connection.as_ref().map(ConnectionState::request_started);
        let held = Arc::new(Mutex::new(Vec::new()));
        // Checks are budgeted; the other services' messages are small by their own limit.
        let request = match &connection {
            Some(connection) if request.uri().path() == CHECK_PATH => {
                let layer = &self.layer;
                let budget = Budget {
                    connection: connection.body_budget.clone(),
                    connection_bytes: connection.body_budget_bytes,
                    process: layer.process.clone(),
                    wait: layer.wait,
                    held: held.clone(),
                };
                let deadline = Box::pin(tokio::time::sleep(layer.deadline));
                request.map(|body| {
                    tonic::body::Body::new(BudgetedBody {
                        inner: body,
                        budget,
                        state: State::Prefix(Frames::new()),
                        deadline,
                    })
                })
            }
            _ => request,
        };
        let answered = self.inner.call(request);
        Box::pin(async move {
            let response = answered.await;
            // The decoded Check held its bytes until now.
            drop(held);
            drop(guard);
            response
        })
    }
}

/// Where budget comes from, and where what was taken is kept until the answer.
struct Budget {
    connection: Arc<Semaphore>,
    /// The connection's whole budget: a larger message can never be taken.
    connection_bytes: usize,
    process: Arc<Semaphore>,
    wait: Duration,
    held: Arc<Mutex<Vec<OwnedSemaphorePermit>>>,
}

type Acquiring = Pin<Box<dyn Future<Output = Result<Vec<OwnedSemaphorePermit>, Status>> + Send>>;

/// The frames read before the message's length is known: most often one (a Check's body
/// comes in one DATA frame), held without an allocation of their own.
type Frames = SmallVec<[Bytes; 2]>;

enum State {
    /// Reading the message's length prefix: the frames so far.
    Prefix(Frames),
    /// Waiting for budget; then these frames go on.
    Acquiring(Acquiring, Frames),
    /// Giving the frames read so far to the decoder, from this one on.
    Releasing(Frames, usize),
    /// The message's bytes are budgeted: the rest goes through as it comes.
    Passing,
}

/// The body of a Check (one message) that takes its bytes from the budget before the
/// decoder sees them.
struct BudgetedBody {
    inner: tonic::body::Body,
    budget: Budget,
    state: State,
    deadline: Pin<Box<Sleep>>,
}

impl Body for BudgetedBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.get_mut();
        loop {
            match &mut this.state {
                State::Acquiring(acquiring, frames) => match acquiring.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Err(status)) => return Poll::Ready(Some(Err(status))),
                    Poll::Ready(Ok(permits)) => {
                        if let Ok(mut held) = this.budget.held.lock() {
                            held.extend(permits);
                        }
                        this.state = State::Releasing(std::mem::take(frames), 0);
                    }
                },
                State::Releasing(frames, next) => match frames.get(*next) {
                    Some(frame) => {
                        let frame = frame.clone();
                        *next += 1;
                        return Poll::Ready(Some(Ok(Frame::data(frame))));
                    }
                    None => this.state = State::Passing,
                },
                State::Prefix(_) | State::Passing => {
                    let frame = match Pin::new(&mut this.inner).poll_frame(cx) {
                        Poll::Ready(Some(Ok(frame))) => frame,
                        // Only a body that keeps the decoder waiting needs the timer: one
                        // already in (most are, in one DATA frame) never registers it.
                        Poll::Pending if this.deadline.as_mut().poll(cx).is_ready() => {
                            return Poll::Ready(Some(Err(Status::resource_exhausted(
                                "the request body did not arrive within the header timeout",
                            ))));
                        }
                        other => return other,
                    };
                    let State::Prefix(frames) = &mut this.state else {
                        return Poll::Ready(Some(Ok(frame)));
                    };
                    match frame.into_data() {
                        Ok(data) => frames.push(data),
                        // Trailers before a whole prefix: the decoder refuses the body.
                        Err(frame) => return Poll::Ready(Some(Ok(frame))),
                    }
                    if let Some(need) = message_bytes(frames) {
                        let frames = std::mem::take(frames);
                        this.state = match this.budget.try_take(need) {
                            Some(permits) => {
                                if let Ok(mut held) = this.budget.held.lock() {
                                    held.extend(permits);
                                }
                                State::Releasing(frames, 0)
                            }
                            None => State::Acquiring(this.budget.take(need), frames),
                        };
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.state, State::Passing) && self.inner.is_end_stream()
    }
}

/// The bytes of the message whose first frames are `frames` (prefix included), once its
/// five-byte prefix is in.
fn message_bytes(frames: &[Bytes]) -> Option<usize> {
    let mut prefix = [0u8; PREFIX];
    let mut read = 0;
    for byte in frames.iter().flat_map(|frame| frame.iter()).take(PREFIX) {
        prefix[read] = *byte;
        read += 1;
    }
    (read == PREFIX)
        .then(|| PREFIX + u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]) as usize)
}

impl Budget {
    /// `need` as semaphore permits; `None` for a message the connection's whole budget
    /// could never hold.
    fn permits(&self, need: usize) -> Option<u32> {
        u32::try_from(need)
            .ok()
            .filter(|_| need <= self.connection_bytes)
    }

    /// Takes `need` bytes from the connection's and the process's budget if both have them
    /// free now, as most Checks find them; `None` leaves the waiting to [`Budget::take`].
    /// Free budget is never taken ahead of a message already waiting for it: a semaphore
    /// gives what is released to its waiters first.
    fn try_take(&self, need: usize) -> Option<[OwnedSemaphorePermit; 2]> {
        let permits = self.permits(need)?;
        let on_connection = self
            .connection
            .clone()
            .try_acquire_many_owned(permits)
            .ok()?;
        let in_process = self.process.clone().try_acquire_many_owned(permits).ok()?;
        Some([on_connection, in_process])
    }

    /// Takes `need` bytes from the connection's and the process's budget, waiting at most
    /// `wait`.
    fn take(&self, need: usize) -> Acquiring {
        let exhausted = || Status::resource_exhausted("request body budget exhausted");
        let permits = self.permits(need);
        let (connection, process, wait) =
            (self.connection.clone(), self.process.clone(), self.wait);
        Box::pin(async move {
            let permits = permits.ok_or_else(exhausted)?;
            let both = async {
                let on_connection = connection.acquire_many_owned(permits).await;
                let in_process = process.acquire_many_owned(permits).await;
                match (on_connection, in_process) {
                    (Ok(a), Ok(b)) => Ok(vec![a, b]),
                    _ => Err(exhausted()),
                }
            };
            tokio::time::timeout(wait, both)
                .await
                .unwrap_or_else(|_| Err(exhausted()))
        })
    }
}

#[cfg(test)]
mod tests;
