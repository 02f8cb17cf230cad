//! `midge sub`: `mosquitto_sub`'s behaviour (`client/sub_client.c`, 2.0.11).
//!
//! Connect; subscribe to every `-t` in one SUBSCRIBE and send one UNSUBSCRIBE per `-U`
//! without waiting; print each message that passes `-R`, `--retained-only`, `-T` and
//! `--random-filter`, in the `-F`/`-v`/`-N` output; stop after `-C` messages, on `-E` once the
//! SUBACK is in, on `-W` (exit 27, "Timed out"), or on SIGINT/SIGTERM (exit 0). A lost
//! connection is re-established every second, as `mosquitto_loop_forever` does; a refused
//! one ends the tool with the CONNACK code. A closed stdout (`midge sub | head`) ends it with
//! status 0.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, SystemTime};

use midge_client::{
    Client, ClientError, Event, Message, QoS, ReasonCode, RetainHandling, SubAck, SubscribeFilter,
    SubscriptionOptions, TopicFilter, TopicName,
};
use tokio::signal::unix::{SignalKind, signal};
use tokio::time::Instant;

use super::client_args::Config;
use super::connect::{
    self, Failure, OnLoss, connect_failure, err_printf, is_loss, refusal_line, stdout_failure,
    write_stdout,
};
use super::format::{Output, OutputMessage, write_message};
use super::mosq;

/// A boxed future the loop polls.
type Pending<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Polls `future` once, so that a command it sends to the connection task is queued now (in
/// order with the next one); returns its output if it is already done.
pub(crate) async fn poll_once<T>(future: &mut Pending<T>) -> Option<T> {
    std::future::poll_fn(|cx| match future.as_mut().poll(cx) {
        Poll::Ready(v) => Poll::Ready(Some(v)),
        Poll::Pending => Poll::Ready(None),
    })
    .await
}

/// The options each subscription is made with.
pub(crate) fn subscription_options(c: &Config) -> SubscriptionOptions {
    SubscriptionOptions {
        qos: QoS::from_u8(c.qos).unwrap_or_default(),
        no_local: false,
        retain_as_published: c.retain_as_published,
        retain_handling: RetainHandling::from_u8(c.retain_handling).unwrap_or_default(),
    }
}

/// Sends DISCONNECT with `reason` (MQTT 5) and the `-D disconnect` properties, giving up
/// after a while (the server may be gone).
pub(crate) async fn disconnect(client: &Client, c: &Config, reason: ReasonCode) {
    let _ = tokio::time::timeout(
        Duration::from_secs(5),
        client.disconnect_with(reason, c.disconnect_props.clone()),
    )
    .await;
}

/// Sleeps until `deadline`, or forever without one.
pub(crate) async fn until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Runs `midge sub` with checked options.
pub(crate) async fn run(c: Config) -> u8 {
    if c.no_retain && c.retained_only {
        connect::eprint_bytes(b"\nError: Combining '-R' and '--retained-only' makes no sense.\n");
        return 1;
    }
    if let Some(m) = c.unsupported() {
        return Failure::always(m, 1).report(c.quiet);
    }
    let mut filters = Vec::with_capacity(c.topics.len());
    for t in &c.topics {
        match TopicFilter::new(t.as_str()) {
            Ok(filter) => filters.push(SubscribeFilter {
                filter,
                options: subscription_options(&c),
            }),
            Err(e) => {
                return Failure::always(
                    format!("Error: Invalid subscription topic '{t}': {e}.\n"),
                    1,
                )
                .report(c.quiet);
            }
        }
    }
    let mut unsub_filters = Vec::with_capacity(c.unsub_topics.len());
    for t in &c.unsub_topics {
        match TopicFilter::new(t.as_str()) {
            Ok(f) => unsub_filters.push(f),
            Err(e) => {
                return Failure::always(
                    format!("Error: Invalid unsubscribe topic '{t}': {e}.\n"),
                    1,
                )
                .report(c.quiet);
            }
        }
    }
    let options = match connect::options(&c, OnLoss::Reconnect).await {
        Ok(o) => o,
        Err(f) => return f.report(c.quiet),
    };
    let (Ok(mut sigint), Ok(mut sigterm)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return Failure::new("Error: cannot handle signals.\n", 1).report(c.quiet);
    };
    let deadline = (c.timeout > 0).then(|| Instant::now() + Duration::from_secs(c.timeout.into()));

    // The first connection; one that drops before its CONNACK is tried again every second,
    // as mosquitto_loop_forever does. A signal or -W before the CONNACK ends the tool with
    // 255, as Mosquitto's exit(-1).
    let (client, mut events) = loop {
        tokio::select! {
            r = Client::connect(options.clone()) => match r {
                Ok(pair) => break pair,
                Err(e) if is_loss(&e) => tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    () = until(deadline) => return 255,
                    _ = sigint.recv() => return 255,
                    _ = sigterm.recv() => return 255,
                },
                Err(e) => return connect_failure(&c, &e).report(c.quiet),
            },
            () = until(deadline) => return 255,
            _ = sigint.recv() => return 255,
            _ = sigterm.recv() => return 255,
        }
    };

    // SUBSCRIBE, then the UNSUBSCRIBEs, queued in that order without waiting.
    let mut suback: Pending<Result<SubAck, ClientError>> = {
        let client = client.clone();
        let props = c.subscribe_props.clone();
        Box::pin(async move { client.subscribe_with(filters, props).await })
    };
    let mut suback_result = poll_once(&mut suback).await;
    for f in unsub_filters {
        let client = client.clone();
        let props = c.unsubscribe_props.clone();
        let mut unsub: Pending<()> = Box::pin(async move {
            let _ = client.unsubscribe_with(vec![f], props).await;
        });
        if poll_once(&mut unsub).await.is_none() {
            tokio::spawn(unsub);
        }
    }

    let output = Output::from_flags(c.format.clone(), c.verbose, c.eol, c.pretty);
    let mut state = State {
        process_messages: true,
        count: 0,
        removals: Vec::new(),
    };
    let mut suback_pending = true;
    loop {
        if let Some(r) = suback_result.take() {
            suback_pending = false;
            match r {
                Ok(ack) => {
                    if let Some(code) = on_suback(&c, &client, &ack).await {
                        return code;
                    }
                }
                Err(e) => return lost(&c, &e),
            }
        }
        if !state.process_messages && state.removals.is_empty() {
            disconnect(&client, &c, ReasonCode::NORMAL_DISCONNECTION).await;
            return 0;
        }
        tokio::select! {
            _ = sigint.recv() => return interrupted(&client, &c).await,
            _ = sigterm.recv() => return interrupted(&client, &c).await,
            () = until(deadline) => {
                disconnect(&client, &c, ReasonCode::DISCONNECT_WITH_WILL_MESSAGE).await;
                err_printf(&c, "Timed out\n");
                return mosq::ERR_TIMEOUT;
            }
            r = &mut suback, if suback_pending => suback_result = Some(r),
            () = removals_done(&mut state.removals), if !state.removals.is_empty() => {}
            event = events.recv() => match event {
                Some(Event::Message(m)) => {
                    if let Err(e) = on_message(&c, &client, &output, &mut state, &m).await {
                        return stdout_failure(&c, &e);
                    }
                }
                Some(Event::Disconnected(ClientError::Refused { reason_code, .. })) => {
                    // A refused reconnection: Mosquitto's connect callback reports it and the
                    // tool ends with the CONNACK code.
                    let (line, code) = refusal_line(&c, reason_code);
                    err_printf(&c, &line);
                    return code;
                }
                Some(_) => {}
                // The client gave up (the server took the session over, for example).
                None => {
                    err_printf(&c, &format!("Error: {}\n", mosq::strerror(mosq::ERR_CONN_LOST)));
                    return mosq::ERR_CONN_LOST;
                }
            },
        }
    }
}

/// What `-C`, `--retained-only` and `--remove-retained` keep track of.
struct State {
    process_messages: bool,
    count: u32,
    /// The empty retained messages `--remove-retained` is publishing.
    removals: Vec<Pending<()>>,
}

/// Resolves once one of `removals` has completed (and drops it).
async fn removals_done(removals: &mut Vec<Pending<()>>) {
    std::future::poll_fn(|cx| {
        let before = removals.len();
        removals.retain_mut(|f| f.as_mut().poll(cx).is_pending());
        if removals.len() < before {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
}

/// The SUBACK (`-d` has printed it): no granted subscription, or `-E`, ends the tool.
async fn on_suback(c: &Config, client: &Client, ack: &SubAck) -> Option<u8> {
    if !ack.reason_codes.iter().any(|r| r.0 < 128) {
        disconnect(client, c, ReasonCode::NORMAL_DISCONNECTION).await;
        err_printf(c, "All subscription requests were denied.\n");
        return Some(0);
    }
    if c.exit_after_sub {
        disconnect(client, c, ReasonCode::NORMAL_DISCONNECTION).await;
        return Some(0);
    }
    None
}

async fn interrupted(client: &Client, c: &Config) -> u8 {
    disconnect(client, c, ReasonCode::DISCONNECT_WITH_WILL_MESSAGE).await;
    0
}

/// A connection that ended for good before the SUBACK.
fn lost(c: &Config, e: &ClientError) -> u8 {
    connect_failure(c, e).report(c.quiet)
}

/// One received message, as `my_message_callback`.
async fn on_message(
    c: &Config,
    client: &Client,
    output: &Output,
    state: &mut State,
    m: &Message,
) -> std::io::Result<()> {
    if !state.process_messages {
        return Ok(());
    }
    if c.retained_only && !m.retain {
        state.process_messages = false;
        return Ok(());
    }
    if m.retain && c.no_retain {
        return Ok(());
    }
    if c.filter_outs
        .iter()
        .any(|f| midge_proto_matches(f, &m.topic))
    {
        return Ok(());
    }
    if c.remove_retained && m.retain {
        let client = client.clone();
        let topic = m.topic.clone();
        let mut f: Pending<()> = Box::pin(async move {
            let message = midge_client::Message::new(topic, bytes::Bytes::new())
                .with_qos(QoS::AtLeastOnce)
                .with_retain(true);
            let _ = client.publish_message(message).await;
        });
        if poll_once(&mut f).await.is_none() {
            state.removals.push(f);
        }
    }
    print_message(c, output, m)?;
    if c.msg_count > 0 {
        state.count += 1;
        if state.count == c.msg_count {
            state.process_messages = false;
        }
    }
    Ok(())
}

/// Whether `-T` filter `filter` matches `topic` (`mosquitto_topic_matches_sub`).
fn midge_proto_matches(filter: &str, topic: &TopicName) -> bool {
    TopicFilter::new(filter).is_ok_and(|f| f.matches(topic))
}

/// Prints one message (subject to `--random-filter`), as `print_message`.
pub(crate) fn print_message(c: &Config, output: &Output, m: &Message) -> std::io::Result<()> {
    if c.random_filter < 10000 && (connect::random_u64() % 10000) as i32 >= c.random_filter {
        return Ok(());
    }
    let received = SystemTime::now();
    let om = OutputMessage {
        topic: m.topic.as_str(),
        payload: &m.payload,
        qos: m.qos.as_u8(),
        retain: m.retain,
        mid: m.packet_id.map_or(0, |p| p.get()),
        properties: &m.properties,
        received,
    };
    let mut out = Vec::with_capacity(m.payload.len() + 64);
    let warnings = write_message(&mut out, output, &om);
    for w in warnings {
        err_printf(c, &format!("{w}\n"));
    }
    write_stdout(&out)
}
