//! `midge pub`: `mosquitto_pub`'s behaviour (`client/pub_client.c`, `pub_shared.c`, 2.0.11).
//!
//! The payload comes from exactly one of `-m`, `-f`, `-s`, `-n` (sent `--repeat` times, with
//! `--repeat-delay` between the end of one publish and the start of the next) or `-l` (one
//! message per line of stdin, sent as lines arrive, kept in flight up to `-M`). Each publish
//! completes as its QoS flow does (QoS 0 written, QoS 1 PUBACK, QoS 2 PUBCOMP); an MQTT 5
//! acknowledgement with a failure code prints "Warning: Publish N failed: …" and the tool
//! goes on, as Mosquitto's. Then DISCONNECT, and status 0.

use std::io::{BufRead, Read};
use std::time::Duration;

use bytes::Bytes;
use midge_client::{Client, ClientError, Message, Property, QoS, ReasonCode, TopicName};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::client_args::{Config, MQTT_MAX_PAYLOAD, MsgMode, Tool};
use super::connect::{self, Failure, OnLoss, err_printf, is_loss};
use super::mosq;
use super::sub_cmd::disconnect;
use super::usage;

/// Loads the `-f` or `-s` payload into `c.message`, with Mosquitto's messages on failure.
pub(crate) fn load_payload(c: &mut Config) -> Result<(), Failure> {
    match c.pub_mode {
        MsgMode::StdinFile => {
            let mut buf = Vec::new();
            let read = std::io::stdin().lock().read_to_end(&mut buf);
            if read.is_err() || buf.is_empty() {
                let first = if buf.is_empty() && read.is_ok() {
                    "Error: Zero length input.\n"
                } else {
                    "Error: Failed to read input.\n"
                };
                return Err(Failure::new(
                    format!("{first}Error loading input from stdin.\n"),
                    1,
                ));
            }
            if buf.len() > MQTT_MAX_PAYLOAD {
                return Err(Failure::new(
                    format!(
                        "Error: Message length must be less than {MQTT_MAX_PAYLOAD} bytes.\n\nError loading input from stdin.\n"
                    ),
                    1,
                ));
            }
            c.message = buf;
        }
        MsgMode::File => {
            let Some(path) = c.file_input.clone() else {
                return Ok(());
            };
            let shown = path.to_string_lossy().into_owned();
            let loading = format!("Error loading input file \"{shown}\".\n");
            // Read as a stream, so that `-f /dev/stdin` and named pipes work too.
            let mut file = std::fs::File::open(&path).map_err(|_| {
                Failure::new(
                    format!("Error: Unable to open file \"{shown}\".\n{loading}"),
                    1,
                )
            })?;
            let mut buf = Vec::new();
            file.read_to_end(&mut buf).map_err(|_| {
                Failure::new(
                    format!("Error: Unable to determine size of file \"{shown}\".\n{loading}"),
                    1,
                )
            })?;
            if buf.len() > MQTT_MAX_PAYLOAD {
                return Err(Failure::new(
                    format!("Error: File must be less than {MQTT_MAX_PAYLOAD} bytes.\n\n{loading}"),
                    1,
                ));
            }
            c.message = buf;
        }
        _ => {}
    }
    Ok(())
}

/// Runs `midge pub` with checked options.
pub(crate) async fn run(mut c: Config) -> u8 {
    if let Err(f) = load_payload(&mut c) {
        return f.report(c.quiet);
    }
    if c.topic.is_none() || c.pub_mode == MsgMode::None {
        connect::eprint_bytes(b"Error: Both topic and message must be supplied.\n");
        let _ = connect::write_stdout(usage::usage(Tool::Pub).as_bytes());
        return 1;
    }
    if let Some(m) = c.unsupported() {
        return Failure::always(m, 1).report(c.quiet);
    }
    let on_loss = if c.pub_mode == MsgMode::StdinLine {
        OnLoss::Reconnect
    } else {
        OnLoss::Stop
    };
    let options = match connect::options(&c, on_loss).await {
        Ok(o) => o,
        Err(f) => return f.report(c.quiet),
    };
    let conn = match connect::connect(&c, options).await {
        Ok(conn) => conn,
        Err(f) => return f.report(c.quiet),
    };
    let client = conn.client;
    drop(conn.events);
    let topic = match TopicName::new(c.topic.clone().unwrap_or_default()) {
        Ok(t) => t,
        Err(_) => {
            err_printf(
                &c,
                "Error: Invalid input. Does your topic contain '+' or '#'?\n",
            );
            disconnect(&client, &c, ReasonCode::NORMAL_DISCONNECTION).await;
            return 0;
        }
    };
    let mut publisher = Publisher {
        c: &c,
        topic,
        sent: 0,
    };
    let code = if c.pub_mode == MsgMode::StdinLine {
        publisher.lines(&client).await
    } else {
        publisher.repeated(&client).await
    };
    if let Some(code) = code {
        return code;
    }
    disconnect(&client, &c, ReasonCode::NORMAL_DISCONNECTION).await;
    0
}

/// Builds and sends the messages.
struct Publisher<'a> {
    c: &'a Config,
    topic: TopicName,
    /// Messages sent so far: the number Mosquitto's warnings give a failed one.
    sent: u16,
}

impl Publisher<'_> {
    /// The next message: with `-D publish topic-alias`, every message after the first goes
    /// with an empty topic and the alias (MQTT 5), as `mosquitto_pub` sends them.
    fn message(&mut self, payload: Bytes) -> Message {
        let c = self.c;
        let topic = if c.protocol.is_v5() && c.have_topic_alias && self.sent > 0 {
            TopicName::empty_for_alias()
        } else {
            self.topic.clone()
        };
        self.sent = self.sent.wrapping_add(1);
        let mut m = Message::new(topic, payload)
            .with_qos(QoS::from_u8(c.qos).unwrap_or_default())
            .with_retain(c.retain);
        if c.protocol.is_v5() {
            m = m.with_properties(c.publish_props.clone());
        }
        m
    }

    /// `-m`, `-f`, `-s`, `-n`: the same message `--repeat` times. `Some(code)` ends the tool.
    async fn repeated(&mut self, client: &Client) -> Option<u8> {
        let payload = match self.c.pub_mode {
            MsgMode::Null => Bytes::new(),
            _ => Bytes::from(self.c.message.clone()),
        };
        for n in 0..self.c.repeat_count {
            if n > 0 && !self.c.repeat_delay.is_zero() {
                tokio::time::sleep(self.c.repeat_delay).await;
            }
            let mid = self.sent.wrapping_add(1);
            let message = self.message(payload.clone());
            let result = client.publish_message(message).await;
            if let Some(code) = outcome(self.c, client, mid, result).await {
                return Some(code);
            }
        }
        None
    }

    /// `-l`: one message per line of stdin, published as lines arrive.
    async fn lines(&mut self, client: &Client) -> Option<u8> {
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(64);
        std::thread::spawn(move || {
            let mut stdin = std::io::stdin().lock();
            loop {
                let mut line = Vec::new();
                match stdin.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if line.last() == Some(&b'\n') {
                            line.pop();
                        }
                        if tx.blocking_send(line).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        let mut inflight: JoinSet<(u16, Result<midge_client::PublishOutcome, ClientError>)> =
            JoinSet::new();
        loop {
            tokio::select! {
                line = rx.recv() => {
                    let Some(line) = line else { break };
                    let mid = self.sent.wrapping_add(1);
                    let message = self.message(Bytes::from(line));
                    match client.publish_nowait(message).await {
                        Ok(handle) => {
                            inflight.spawn(async move { (mid, handle.await) });
                        }
                        Err(e) => {
                            if let Some(code) = outcome(self.c, client, mid, Err(e)).await {
                                return Some(code);
                            }
                        }
                    }
                }
                Some(done) = inflight.join_next(), if !inflight.is_empty() => {
                    if let Ok((mid, result)) = done
                        && let Some(code) = outcome(self.c, client, mid, result).await
                    {
                        return Some(code);
                    }
                }
            }
        }
        while let Some(done) = inflight.join_next().await {
            if let Ok((mid, result)) = done
                && let Some(code) = outcome(self.c, client, mid, result).await
            {
                return Some(code);
            }
        }
        None
    }
}

/// What one publish's end means for the tool, as `my_publish_callback` and the error
/// switch of `my_connect_callback`. `Some(code)` ends it.
async fn outcome(
    c: &Config,
    client: &Client,
    mid: u16,
    result: Result<midge_client::PublishOutcome, ClientError>,
) -> Option<u8> {
    let e = match result {
        Ok(_) => return None,
        Err(e) => e,
    };
    // Refusals before sending: Mosquitto prints them, disconnects and ends normally.
    let refusal = match &e {
        ClientError::Rejected {
            reason_code,
            reason_string,
            ..
        } => {
            err_printf(
                c,
                &format!(
                    "Warning: Publish {mid} failed: {}.\n",
                    mosq::reason_string(reason_code.0)
                ),
            );
            if let Some(s) = reason_string {
                err_printf(c, &format!("{s}\n"));
            }
            return None;
        }
        ClientError::QosNotSupported { .. } => {
            "Error: Message QoS not supported on broker, try a lower QoS.\n".to_owned()
        }
        ClientError::PacketTooLarge { .. } => "Error: Message payload is too large.\n".to_owned(),
        ClientError::RetainNotSupported => format!("Error: {}\n", mosq::strerror(28)),
        ClientError::Topic(_) => {
            "Error: Invalid input. Does your topic contain '+' or '#'?\n".to_owned()
        }
        ClientError::Encode(_) => {
            "Error: Protocol error when communicating with broker.\n".to_owned()
        }
        e if is_loss(e) || matches!(e, ClientError::Disconnected) => {
            err_printf(
                c,
                &format!("Error: {}\n", mosq::strerror(mosq::ERR_CONN_LOST)),
            );
            return Some(mosq::ERR_CONN_LOST);
        }
        other => {
            err_printf(c, &format!("Error: {other}\n"));
            return Some(mosq::ERR_PROTOCOL);
        }
    };
    err_printf(c, &refusal);
    disconnect(client, c, ReasonCode::NORMAL_DISCONNECTION).await;
    Some(0)
}

/// Adds the Response Topic property `rr` sends its request with; a second one is
/// Mosquitto's "Duplicate response topic".
pub(crate) fn with_response_topic(c: &mut Config, topic: TopicName) -> Result<(), Failure> {
    if c.publish_props.response_topic().is_some() {
        return Err(Failure::new(
            "Error in PUBLISH properties: Duplicate response topic.\n",
            1,
        ));
    }
    c.publish_props.push(Property::ResponseTopic(topic));
    Ok(())
}

/// How long `rr --latency` took, as Mosquitto prints it.
pub(crate) fn latency_line(d: Duration) -> String {
    let (s, ns) = (d.as_secs(), d.subsec_nanos());
    if s > 0 {
        format!("Latency: {s}.{ns:09}\n")
    } else if ns < 1000 {
        format!("Latency: {ns}ns\n")
    } else if ns < 1_000_000 {
        format!("Latency: {:.6}µs\n", f64::from(ns) / 1000.0)
    } else {
        format!("Latency: {:.6}ms\n", f64::from(ns) / 1_000_000.0)
    }
}
