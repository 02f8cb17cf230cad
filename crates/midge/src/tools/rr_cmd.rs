//! `midge rr`: `mosquitto_rr`'s behaviour (`client/rr_client.c`, 2.0.11), MQTT 5
//! request/response from the command line.
//!
//! Subscribe to the response topic (`-e`); once the SUBACK is in, publish the request to
//! `-t` with the Response Topic property (MQTT 5; `-D publish correlation-data …` adds
//! Correlation Data); print the first message that arrives on the response topic, in the
//! `-F`/`-v`/`-N` output, and exit 0. `-W` gives up with status 27 ("Timed out").
//!
//! Two Mosquitto 2.0.11 bugs are not copied: its `-f` and `-s` send an empty request (fixed
//! in 2.1), and its `-R` lets retained responses through (fixed in 2.0.18). After the
//! response Midge sends DISCONNECT; `mosquitto_rr` closes the socket without one, so a will
//! set with `--will-topic` is published by the broker there and not here.

use std::time::Duration;

use midge_client::{
    Client, ClientError, Event, Message, QoS, ReasonCode, SubscribeFilter, TopicFilter, TopicName,
};
use tokio::time::Instant;

use super::client_args::{Config, MsgMode, Tool};
use super::connect::{
    self, Failure, OnLoss, connect_failure, err_printf, stdout_failure, usage_hint, write_stdout,
};
use super::format::Output;
use super::mosq;
use super::pub_cmd::{latency_line, load_payload, with_response_topic};
use super::sub_cmd::{disconnect, print_message, subscription_options, until};

/// Runs `midge rr` with checked options.
pub(crate) async fn run(mut c: Config) -> u8 {
    if let Err(f) = load_payload(&mut c) {
        return f.report(c.quiet);
    }
    let (Some(topic), Some(response)) = (c.topic.clone(), c.response_topic.clone()) else {
        return missing();
    };
    if c.pub_mode == MsgMode::None {
        return missing();
    }
    if let Some(m) = c.unsupported() {
        return Failure::always(m, 1).report(c.quiet);
    }
    let (Ok(response_name), Ok(response_filter)) = (
        TopicName::new(response.as_str()),
        TopicFilter::new(response.as_str()),
    ) else {
        return Failure::always(
            format!("Error: Invalid response topic '{response}', does it contain '+' or '#'?\n"),
            1,
        )
        .report(c.quiet);
    };
    if c.protocol.is_v5()
        && let Err(f) = with_response_topic(&mut c, response_name)
    {
        return f.report(c.quiet);
    }
    let deadline = (c.timeout > 0).then(|| Instant::now() + Duration::from_secs(c.timeout.into()));
    let timed_out = |c: &Config| {
        err_printf(c, "Timed out\n");
        mosq::ERR_TIMEOUT
    };

    let options = match connect::options(&c, OnLoss::Stop).await {
        Ok(o) => o,
        Err(f) => return f.report(c.quiet),
    };
    let conn = tokio::select! {
        r = connect::connect(&c, options) => match r {
            Ok(conn) => conn,
            Err(f) => return f.report(c.quiet),
        },
        () = until(deadline) => return timed_out(&c),
    };
    let (client, mut events) = (conn.client, conn.events);

    let filter = SubscribeFilter {
        filter: response_filter,
        options: subscription_options(&c),
    };
    let suback = tokio::select! {
        r = client.subscribe_with(vec![filter], c.subscribe_props.clone()) => r,
        () = until(deadline) => {
            disconnect(&client, &c, ReasonCode::DISCONNECT_WITH_WILL_MESSAGE).await;
            return timed_out(&c);
        }
    };
    match suback {
        Ok(ack) => {
            if let Some(code) = ack.reason_codes.first().filter(|r| r.0 >= 128) {
                err_printf(&c, &format!("{}\n", mosq::reason_string(code.0)));
                disconnect(&client, &c, ReasonCode::NORMAL_DISCONNECTION).await;
                return 0;
            }
        }
        Err(e) => return connect_failure(&c, &e).report(c.quiet),
    }

    let Ok(topic) = TopicName::new(topic) else {
        err_printf(
            &c,
            "Error: Invalid input. Does your topic contain '+' or '#'?\n",
        );
        disconnect(&client, &c, ReasonCode::NORMAL_DISCONNECTION).await;
        return 0;
    };
    let payload = match c.pub_mode {
        MsgMode::Null => bytes::Bytes::new(),
        _ => bytes::Bytes::from(c.message.clone()),
    };
    let mut request =
        Message::new(topic, payload).with_qos(QoS::from_u8(c.qos).unwrap_or_default());
    if c.protocol.is_v5() {
        request = request.with_properties(c.publish_props.clone());
    }
    let sent_at = Instant::now();
    // The response may come before the request's acknowledgement: do not wait for it.
    if let Err(e) = client.publish_nowait(request).await {
        return connect_failure(&c, &e).report(c.quiet);
    }

    let output = Output::from_flags(c.format.clone(), c.verbose, c.eol, c.pretty);
    loop {
        tokio::select! {
            () = until(deadline) => {
                disconnect(&client, &c, ReasonCode::DISCONNECT_WITH_WILL_MESSAGE).await;
                return timed_out(&c);
            }
            event = events.recv() => match event {
                Some(Event::Message(m)) => {
                    if m.retain && c.no_retain {
                        continue;
                    }
                    let latency = sent_at.elapsed();
                    return respond(&c, &client, &output, &m, latency).await;
                }
                Some(Event::Disconnected(e)) => return lost(&c, &e),
                Some(_) => {}
                None => return lost(&c, &ClientError::Disconnected),
            },
        }
    }
}

fn missing() -> u8 {
    connect::eprint_bytes(
        format!(
            "Error: All of topic, message, and response topic must be supplied.\n{}",
            usage_hint(Tool::Rr)
        )
        .as_bytes(),
    );
    1
}

async fn respond(
    c: &Config,
    client: &Client,
    output: &Output,
    m: &Message,
    latency: Duration,
) -> u8 {
    if let Err(e) = print_message(c, output, m) {
        return stdout_failure(c, &e);
    }
    if c.latency
        && let Err(e) = write_stdout(latency_line(latency).as_bytes())
    {
        return stdout_failure(c, &e);
    }
    disconnect(client, c, ReasonCode::NORMAL_DISCONNECTION).await;
    0
}

fn lost(c: &Config, e: &ClientError) -> u8 {
    let code = match e {
        ClientError::Disconnected => mosq::ERR_CONN_LOST,
        _ => return connect_failure(c, e).report(c.quiet),
    };
    err_printf(c, &format!("Error: {}\n", mosq::strerror(code)));
    code
}
