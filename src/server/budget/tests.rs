use super::*;

/// A request body that gives its frames, then waits for ever (a client that stopped
/// sending) or ends.
struct Scripted {
    frames: Vec<Bytes>,
    ends: bool,
}

impl Body for Scripted {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        match self.frames.pop() {
            Some(frame) => Poll::Ready(Some(Ok(Frame::data(frame)))),
            None if self.ends => Poll::Ready(None),
            None => Poll::Pending,
        }
    }
}

/// A message of `len` bytes after its prefix, in one frame.
fn message(len: u32) -> Bytes {
    let mut bytes = vec![0u8];
    bytes.extend_from_slice(&len.to_be_bytes());
    bytes.resize(PREFIX + len as usize, b'x');
    Bytes::from(bytes)
}

/// A budget of `connection_bytes` for the connection and 1 MiB for the process.
fn budget(connection_bytes: usize) -> Budget {
    Budget {
        connection: Arc::new(Semaphore::new(connection_bytes)),
        connection_bytes,
        process: Arc::new(Semaphore::new(1 << 20)),
        wait: Duration::from_millis(100),
        held: Arc::new(Mutex::new(Vec::new())),
    }
}

/// Another Check's view of the same budget: its own held permits.
fn sharing(budget: &Budget) -> Budget {
    Budget {
        connection: budget.connection.clone(),
        connection_bytes: budget.connection_bytes,
        process: budget.process.clone(),
        wait: budget.wait,
        held: Arc::new(Mutex::new(Vec::new())),
    }
}

fn body(frames: Vec<Bytes>, ends: bool, budget: Budget) -> BudgetedBody {
    BudgetedBody {
        inner: tonic::body::Body::new(Scripted { frames, ends }),
        budget,
        state: State::Prefix(Frames::new()),
        deadline: Box::pin(tokio::time::sleep(Duration::from_secs(10))),
    }
}

async fn next(body: &mut BudgetedBody) -> Option<Result<Frame<Bytes>, Status>> {
    std::future::poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await
}

#[tokio::test(start_paused = true)]
async fn a_message_takes_its_bytes_from_both_budgets_until_answered() {
    let budget = budget(4096);
    let mut body = body(
        vec![message(100)],
        true,
        Budget {
            held: budget.held.clone(),
            ..sharing(&budget)
        },
    );
    let frame = next(&mut body).await.unwrap().unwrap();
    assert_eq!(frame.into_data().unwrap().len(), 105);
    assert!(next(&mut body).await.is_none());
    assert_eq!(budget.connection.available_permits(), 4096 - 105);
    assert_eq!(budget.process.available_permits(), (1 << 20) - 105);
    budget.held.lock().unwrap().clear();
    assert_eq!(budget.connection.available_permits(), 4096);
}

#[tokio::test(start_paused = true)]
async fn a_body_that_stops_arriving_fails_at_the_deadline() {
    let mut prefix_only = message(100);
    prefix_only.truncate(PREFIX + 10);
    let mut body = body(vec![prefix_only], false, budget(4096));
    assert!(next(&mut body).await.unwrap().is_ok());
    let started = tokio::time::Instant::now();
    let refused = tokio::time::timeout(Duration::from_secs(60), next(&mut body))
        .await
        .expect("refused at the deadline, not left waiting")
        .unwrap()
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
    assert_eq!(started.elapsed(), Duration::from_secs(10));
}

#[tokio::test(start_paused = true)]
async fn a_message_over_the_connection_budget_is_refused_unread() {
    let budget = budget(4096);
    let mut body = body(vec![message(5000)], true, sharing(&budget));
    let refused = next(&mut body).await.unwrap().unwrap_err();
    assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
    assert_eq!(budget.connection.available_permits(), 4096);
}

#[tokio::test(start_paused = true)]
async fn a_message_waits_behind_one_already_waiting_for_budget() {
    let budget = budget(4096);
    let mut first = body(vec![message(3000)], true, sharing(&budget));
    // Another Check holds 2,000 of the connection's 4,096 bytes.
    let held = budget
        .connection
        .clone()
        .try_acquire_many_owned(2000)
        .unwrap();
    let waiting = tokio::spawn(async move { next(&mut first).await.map(|f| f.is_ok()) });
    tokio::task::yield_now().await;
    // A small message that would fit in what is free must not overtake the first.
    let mut second = body(vec![message(10)], true, sharing(&budget));
    let second = tokio::spawn(async move { next(&mut second).await.map(|f| f.is_ok()) });
    for _ in 0..3 {
        tokio::task::yield_now().await;
    }
    assert!(
        !second.is_finished(),
        "the later, smaller message went first"
    );
    drop(held);
    assert_eq!(waiting.await.unwrap(), Some(true));
    assert_eq!(second.await.unwrap(), Some(true));
}
