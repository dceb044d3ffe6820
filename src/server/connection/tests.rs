use std::time::Duration;

use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt, duplex};

use super::*;

fn guarded(
    header: Duration,
    idle: Duration,
) -> (Guarded<tokio::io::DuplexStream>, tokio::io::DuplexStream) {
    let (server, client) = duplex(1024);
    let slot = Arc::new(Semaphore::new(1)).try_acquire_owned().unwrap();
    let pending = Arc::new(Semaphore::new(1)).try_acquire_owned().unwrap();
    let state = Arc::new(ConnectionState::new(1024, pending));
    (Guarded::new(server, slot, state, header, idle), client)
}

async fn read_some(connection: &mut Guarded<tokio::io::DuplexStream>) -> io::Result<usize> {
    let mut buf = [0u8; 64];
    connection.read(&mut buf).await
}

/// Reads until the connection fails; what it read before.
async fn read_until_closed(
    connection: &mut Guarded<tokio::io::DuplexStream>,
) -> (usize, io::Error) {
    let mut total = 0;
    loop {
        match read_some(connection).await {
            Ok(n) => total += n,
            Err(error) => return (total, error),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_connection_that_says_nothing_is_closed_after_the_header_timeout() {
    let (mut server, _client) = guarded(Duration::from_secs(10), Duration::from_secs(300));
    let error = read_some(&mut server).await.unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::TimedOut);
    assert!(error.to_string().contains("header timeout"), "{error}");
}

#[tokio::test(start_paused = true)]
async fn bytes_without_a_request_do_not_keep_a_connection_open() {
    let (mut server, mut client) = guarded(Duration::from_secs(10), Duration::from_secs(300));
    // The HTTP/2 preface, then a PING frame every second: never a request.
    let chatter = tokio::spawn(async move {
        client
            .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            .await
            .unwrap();
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if client.write_all(&[0u8; 17]).await.is_err() {
                return;
            }
        }
    });
    let started = tokio::time::Instant::now();
    let (read, error) = read_until_closed(&mut server).await;
    assert!(read >= 24, "{read}");
    assert_eq!(error.kind(), io::ErrorKind::TimedOut);
    assert!(error.to_string().contains("header timeout"), "{error}");
    assert_eq!(started.elapsed(), Duration::from_secs(10));
    chatter.abort();
}

#[tokio::test(start_paused = true)]
async fn requests_keep_a_connection_open_and_chatter_does_not() {
    let (mut server, mut client) = guarded(Duration::from_secs(10), Duration::from_secs(60));
    let state = server.connection();
    // A request every 50 s keeps it open well past the idle timeout.
    for _ in 0..5 {
        drop(state.request_started());
        client.write_all(b"y").await.unwrap();
        assert_eq!(read_some(&mut server).await.unwrap(), 1);
        tokio::time::sleep(Duration::from_secs(50)).await;
    }
    // A request in flight keeps it open however long it takes.
    let in_flight = state.request_started();
    let slow = tokio::time::timeout(Duration::from_secs(200), read_some(&mut server)).await;
    assert!(slow.is_err(), "closed with a request in flight");
    drop(in_flight);
    // Then bytes alone (PINGs answered) do not: idle 60 s after the last request.
    let chatter = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if client.write_all(b"p").await.is_err() {
                return;
            }
        }
    });
    let started = tokio::time::Instant::now();
    let (_, error) = read_until_closed(&mut server).await;
    assert_eq!(error.kind(), io::ErrorKind::TimedOut);
    assert!(error.to_string().contains("idle"), "{error}");
    assert!(
        started.elapsed() <= Duration::from_secs(61),
        "{:?}",
        started.elapsed()
    );
    chatter.abort();
}

#[tokio::test]
async fn connections_past_the_cap_are_closed_at_once() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let settings = ConnectionSettings::default();
    let metrics = Arc::new(Metrics::new());
    let mut accepted = Box::pin(incoming(
        listener,
        &settings,
        2,
        1024,
        metrics.clone(),
        "test",
    ));
    // Each makes a request at once: no longer pending, never evicted.
    let mut clients = Vec::new();
    let mut held = Vec::new();
    for _ in 0..2 {
        clients.push(TcpStream::connect(address).await.unwrap());
        let connection = accepted.next().await.unwrap().unwrap();
        drop(connection.connection().request_started());
        held.push(connection);
    }
    // The third is accepted and closed; the stream waits for a free slot.
    let mut third = TcpStream::connect(address).await.unwrap();
    let waiting = tokio::time::timeout(Duration::from_millis(300), accepted.next()).await;
    assert!(waiting.is_err(), "no connection past the cap");
    let mut buf = [0u8; 1];
    assert_eq!(
        third.read(&mut buf).await.unwrap(),
        0,
        "closed by the server"
    );
    assert!(metrics.encode().contains(
        r#"portcullis_connections_refused_total{listener="test",cause="over_capacity"} 1"#
    ));
    // A slot frees when a connection ends.
    drop(held);
    let _fourth = TcpStream::connect(address).await.unwrap();
    assert!(accepted.next().await.is_some());
    drop(clients);
}

#[tokio::test]
async fn connections_that_ask_nothing_give_way_to_new_ones() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let settings = ConnectionSettings::default();
    let metrics = Arc::new(Metrics::new());
    // A cap of 4: at most 2 without a request.
    let mut accepted = Box::pin(incoming(
        listener,
        &settings,
        4,
        1024,
        metrics.clone(),
        "test",
    ));
    let _clients: Vec<TcpStream> =
        futures_util::future::join_all((0..3).map(|_| TcpStream::connect(address)))
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
    let mut oldest = accepted.next().await.unwrap().unwrap();
    let mut second = accepted.next().await.unwrap().unwrap();
    // The third needs a pending slot: the oldest silent connection is closed for it.
    let spawned = tokio::spawn(async move {
        let mut buf = [0u8; 8];
        oldest.read(&mut buf).await
    });
    let _third = accepted.next().await.unwrap().unwrap();
    let error = spawned.await.unwrap().unwrap_err();
    assert!(error.to_string().contains("closed to make room"), "{error}");
    assert!(metrics.encode().contains(r#"cause="evicted_pending"} 1"#));
    // One that made a request is never evicted.
    drop(second.connection().request_started());
    let _fourth_client = TcpStream::connect(address).await.unwrap();
    let _fourth = accepted.next().await.unwrap().unwrap();
    let mut buf = [0u8; 8];
    let still_open = tokio::time::timeout(Duration::from_millis(200), second.read(&mut buf)).await;
    assert!(still_open.is_err(), "the working connection stays open");
}
