//! Publishes one message at QoS 1 and prints the broker's acknowledgement.
//!
//! ```sh
//! cargo run -p midge-client --example publish -- [HOST] [PORT] [TOPIC] [MESSAGE]
//! ```
#![allow(clippy::print_stdout)] // An example shows what it does on stdout.

use midge_client::{Client, ClientError, ConnectOptions, QoS, ReconnectOptions};

#[tokio::main]
async fn main() -> Result<(), ClientError> {
    let mut args = std::env::args().skip(1);
    let host = args.next().unwrap_or_else(|| "127.0.0.1".to_owned());
    let port = args.next().and_then(|p| p.parse().ok()).unwrap_or(1883);
    let topic = args.next().unwrap_or_else(|| "midge/example".to_owned());
    let message = args
        .next()
        .unwrap_or_else(|| "hello from midge-client".to_owned());

    // A one-shot publisher: no point in reconnecting.
    let options = ConnectOptions::tcp(host, port)
        .client_id("midge-example-pub")
        .reconnect(ReconnectOptions::disabled());
    let (client, _events) = Client::connect(options).await?;
    let outcome = client
        .publish(&topic, QoS::AtLeastOnce, false, message)
        .await?;
    println!(
        "published to {topic}; PUBACK {} (packet id {:?})",
        outcome.reason_code, outcome.packet_id
    );
    client.disconnect().await
}
