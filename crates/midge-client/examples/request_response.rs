//! MQTT 5 request/response: a responder that upper-cases requests, and a requester using
//! [`Client::request`], both in this one program.
//!
//! ```sh
//! cargo run -p midge-client --example request_response -- [HOST] [PORT]
//! ```
#![allow(clippy::print_stdout)] // An example shows what it does on stdout.

use std::time::Duration;

use midge_client::{Client, ClientError, ConnectOptions, QoS};

#[tokio::main]
async fn main() -> Result<(), ClientError> {
    let mut args = std::env::args().skip(1);
    let host = args.next().unwrap_or_else(|| "127.0.0.1".to_owned());
    let port = args.next().and_then(|p| p.parse().ok()).unwrap_or(1883);

    // The service: answer every request on `example/upper` at its Response Topic.
    let (service, mut requests) =
        Client::connect(ConnectOptions::tcp(host.clone(), port).client_id("upper-service")).await?;
    service.subscribe("example/upper", QoS::AtLeastOnce).await?;
    let responder = service.clone();
    tokio::spawn(async move {
        while let Some(request) = requests.next_message().await {
            let answer = String::from_utf8_lossy(&request.payload).to_uppercase();
            if let Err(e) = responder.respond(&request, answer).await {
                println!("cannot answer: {e}");
            }
        }
    });

    // The client: send requests and wait for each answer.
    let (client, _events) =
        Client::connect(ConnectOptions::tcp(host, port).client_id("upper-client")).await?;
    for word in ["hello", "request", "response"] {
        let answer = client
            .request(
                "example/upper",
                word,
                "example/upper/replies/upper-client",
                Duration::from_secs(5),
            )
            .await?;
        println!("{word} -> {}", String::from_utf8_lossy(&answer.payload));
    }
    client.disconnect().await?;
    service.disconnect().await
}
