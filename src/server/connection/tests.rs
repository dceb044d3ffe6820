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
    (Guarded::new(server, slot, header, idle), client)
}

async fn read_some(connection: &mut Guarded<tokio::io::DuplexStream>) -> io::Result<usize> {
    let mut buf = [0u8; 64];
    connection.read(&mut buf).await
}

#[tokio::test(start_paused = true)]
async fn a_connection_that_says_nothing_is_closed_after_the_header_timeout() {
    let (mut server, _client) = guarded(Duration::from_secs(10), Duration::from_secs(300));
    let error = read_some(&mut server).await.unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::TimedOut);
    assert!(error.to_string().contains("header timeout"), "{error}");
}

#[tokio::test(start_paused = true)]
async fn a_slow_first_request_is_closed_too() {
    let (mut server, mut client) = guarded(Duration::from_secs(10), Duration::from_secs(300));
    let trickle = tokio::spawn(async move {
        for byte in b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" {
            client.write_all(&[*byte]).await.unwrap();
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        client
    });
    let mut total = 0;
    let error = loop {
        match read_some(&mut server).await {
            Ok(n) => total += n,
            Err(error) => break error,
        }
    };
    assert!(total < 16, "read {total} bytes before the deadline");
    assert_eq!(error.kind(), io::ErrorKind::TimedOut);
    trickle.abort();
}

#[tokio::test(start_paused = true)]
async fn an_active_connection_lives_and_an_idle_one_is_closed() {
    let (mut server, mut client) = guarded(Duration::from_secs(10), Duration::from_secs(60));
    client.write_all(&[b'x'; 24]).await.unwrap();
    assert_eq!(read_some(&mut server).await.unwrap(), 24);
    // A byte every 50 s keeps it open well past the idle timeout.
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_secs(50)).await;
        client.write_all(b"y").await.unwrap();
        assert_eq!(read_some(&mut server).await.unwrap(), 1);
    }
    let started = tokio::time::Instant::now();
    let error = read_some(&mut server).await.unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::TimedOut);
    assert!(error.to_string().contains("idle"), "{error}");
    assert_eq!(started.elapsed(), Duration::from_secs(60));
}

#[tokio::test]
async fn connections_past_the_cap_are_closed_at_once() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let settings = ConnectionSettings {
        max_per_listener: 2,
        ..ConnectionSettings::default()
    };
    let metrics = Arc::new(Metrics::new());
    let mut accepted = Box::pin(incoming(listener, &settings, metrics.clone(), "test"));
    let first = TcpStream::connect(address).await.unwrap();
    let second = TcpStream::connect(address).await.unwrap();
    let held = [
        accepted.next().await.unwrap().unwrap(),
        accepted.next().await.unwrap().unwrap(),
    ];
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
    drop((first, second));
}
