//! Subscribes to a topic filter and prints every message and connection change until
//! Ctrl-C. The session survives reconnections: stop and restart the broker to watch the
//! client reconnect and subscribe again.
//!
//! ```sh
//! cargo run -p midge-client --example subscribe -- [HOST] [PORT] [FILTER]
//! ```
#![allow(clippy::print_stdout)] // An example shows what it does on stdout.

use std::time::Duration;

use midge_client::{Client, ClientError, ConnectOptions, Event, QoS};

#[tokio::main]
async fn main() -> Result<(), ClientError> {
    let mut args = std::env::args().skip(1);
    let host = args.next().unwrap_or_else(|| "127.0.0.1".to_owned());
    let port = args.next().and_then(|p| p.parse().ok()).unwrap_or(1883);
    let filter = args.next().unwrap_or_else(|| "midge/#".to_owned());

    let options = ConnectOptions::tcp(host, port)
        .client_id("midge-example-sub")
        .clean_start(false)
        .session_expiry_interval(300)
        .keep_alive(Duration::from_secs(30));
    let (client, mut events) = Client::connect(options).await?;
    let granted = client.subscribe(&filter, QoS::AtLeastOnce).await?;
    println!("subscribed to {filter} (granted QoS {granted})");

    loop {
        tokio::select! {
            event = events.recv() => match event {
                Some(Event::Message(m)) => println!(
                    "{} [qos {}{}] {}",
                    m.topic,
                    m.qos,
                    if m.retain { ", retained" } else { "" },
                    String::from_utf8_lossy(&m.payload)
                ),
                Some(Event::Connected(connack)) => {
                    println!("connected (session present: {})", connack.session_present);
                }
                Some(Event::Disconnected(e)) => println!("disconnected: {e}"),
                Some(Event::Reconnecting { attempt, delay }) => {
                    println!("reconnecting in {delay:?} (attempt {attempt})");
                }
                Some(_) => {}
                None => return Ok(()),
            },
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    client.disconnect().await
}
