//! Process tests: Python `paho-mqtt` 2.x (MQTT 3.1.1 and 5) against the real `midge serve`.
//!
//! Each scenario is a script in `tests/python/` that connects to the broker, does its
//! exchange with bounded waits, and prints what it observed as one JSON object (or exits
//! non-zero with a message). The Rust test starts the broker, runs the script (killed after
//! 20 s), asserts it succeeded and checks the observations against the specification.

mod interop_common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use interop_common::{Midge, run_bounded};
use serde_json::{Value, json};

/// Longest a script may run before it is killed.
const SCRIPT_LIMIT: Duration = Duration::from_secs(20);

fn require_paho() {
    let out = run_bounded(
        Command::new("python3").args(["-c", "import paho.mqtt; print(paho.mqtt.__version__)"]),
        SCRIPT_LIMIT,
    );
    assert!(
        out.status.success(),
        "Python paho-mqtt is missing: install it with `python3 -m pip install 'paho-mqtt==2.1.0'` \
         (scripts/test does it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let version = String::from_utf8_lossy(&out.stdout);
    assert!(
        version.starts_with('2'),
        "paho-mqtt 2.x is needed, found {version}"
    );
}

/// Runs `tests/python/SCRIPT --port PORT --protocol PROTOCOL` and returns its JSON report.
fn run_script(midge: &Midge, script: &str, protocol: &str) -> Value {
    require_paho();
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "python", script]
        .iter()
        .collect();
    let out = run_bounded(
        Command::new("python3").arg(&path).args([
            "--port",
            &midge.port.to_string(),
            "--protocol",
            protocol,
        ]),
        SCRIPT_LIMIT,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{script} --protocol {protocol} failed ({}):\nstderr: {stderr}\nstdout: {stdout}\nbroker log:\n{}",
        out.status,
        midge.log()
    );
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("{script}: last line is not JSON ({e}): {stdout}"))
}

/// A message as the scripts report it, without properties.
fn msg(topic: &str, payload: &str, qos: u64, retain: bool) -> Value {
    json!({"topic": topic, "payload": payload, "qos": qos, "retain": retain})
}

/// Drops the `properties` field (checked separately) of each reported message.
fn without_properties(messages: &Value) -> Vec<Value> {
    messages
        .as_array()
        .expect("a list of messages")
        .iter()
        .map(|m| {
            let mut m = m.clone();
            m.as_object_mut()
                .expect("message object")
                .remove("properties");
            m
        })
        .collect()
}

/// Groups reported messages by topic, keeping their order within each topic.
///
/// MQTT orders messages per topic ([MQTT-4.6.0-6]: each topic is an Ordered Topic), and paho
/// hands a QoS 2 message to the application only when PUBREL arrives, so a QoS 1 message on
/// another topic sent just after it can legitimately overtake it; order across topics is not
/// compared.
fn by_topic(messages: &[Value]) -> std::collections::BTreeMap<String, Vec<Value>> {
    let mut map = std::collections::BTreeMap::<String, Vec<Value>>::new();
    for m in messages {
        let topic = m["topic"].as_str().expect("topic").to_owned();
        map.entry(topic).or_default().push(m.clone());
    }
    map
}

/// QoS 0/1/2 in both directions with `+` and `#` filters: the SUBACK grants the requested QoS
/// ([MQTT-3.9.3-1] / MQTT 5 §3.9.3), messages arrive in order per topic ([MQTT-4.6.0-6]) at QoS
/// min(publish, granted) ([MQTT-3.8.4-6]), each exactly once, and nothing arrives for
/// non-matching topics ([MQTT-4.7.1-2], [MQTT-4.7.1-3]).
fn check_pubsub(protocol: &str) {
    let midge = Midge::start();
    let r = run_script(&midge, "pubsub.py", protocol);
    for ack in r["connack"].as_array().expect("connacks") {
        assert_eq!(ack["reason_code"], 0);
        assert_eq!(
            ack["session_present"], false,
            "[MQTT-3.2.2-1] / [MQTT-3.2.2-2]"
        );
    }
    assert_eq!(r["granted"], json!([[2], [1], [2]]));
    let p = protocol;
    let mut expected = Vec::new();
    for qos in 0..3u64 {
        let data = format!("paho/{p}/dev{qos}/data");
        expected.push(msg(&data, &format!("data-{qos}"), qos, false));
        let all = format!("paho/{p}/all/x/y");
        expected.push(msg(&all, &format!("all-{qos}"), qos.min(1), false));
    }
    assert_eq!(
        by_topic(&without_properties(&r["sub"])),
        by_topic(&expected),
        "subscriber received {}",
        r["sub"]
    );
    let back: Vec<Value> = (0..3u64)
        .map(|q| {
            msg(
                &format!("paho/{p}/back/{q}"),
                &format!("back-{q}"),
                q,
                false,
            )
        })
        .collect();
    assert_eq!(by_topic(&without_properties(&r["pub"])), by_topic(&back));
    assert_eq!(r["extra"], json!([]), "no message for non-matching topics");
}

#[test]
fn paho_v311_publish_subscribe_qos_0_1_2() {
    check_pubsub("3.1.1");
}

#[test]
fn paho_v5_publish_subscribe_qos_0_1_2() {
    check_pubsub("5");
}

/// Retained messages: the newest one is sent to a new subscriber with RETAIN 1
/// ([MQTT-3.3.1-5], [MQTT-3.3.1-6], [MQTT-3.3.1-8]; MQTT 5 [MQTT-3.3.1-9]), live copies have
/// RETAIN 0 ([MQTT-3.3.1-9]; MQTT 5 [MQTT-3.3.1-12]), an empty retained message is forwarded
/// and clears the topic ([MQTT-3.3.1-10], [MQTT-3.3.1-11]; MQTT 5 [MQTT-3.3.1-6],
/// [MQTT-3.3.1-7]).
fn check_retained(protocol: &str) {
    let midge = Midge::start();
    let r = run_script(&midge, "retained.py", protocol);
    let topic = format!("ret/{protocol}/state");
    assert_eq!(
        without_properties(&r["at_subscribe"]),
        vec![msg(&topic, "current", 1, true)]
    );
    assert_eq!(
        without_properties(&r["live"]),
        vec![msg(&topic, "live", 1, false)]
    );
    assert_eq!(
        without_properties(&r["cleared_live"]),
        vec![msg(&topic, "", 1, false)]
    );
    assert_eq!(
        r["after_clear"],
        json!([]),
        "cleared retained message delivered"
    );
}

#[test]
fn paho_v311_retained_messages() {
    check_retained("3.1.1");
}

#[test]
fn paho_v5_retained_messages() {
    check_retained("5");
}

/// The will of a client killed with SIGKILL is published ([MQTT-3.1.2-8]), with its MQTT 5
/// properties (MQTT 5 §3.1.3.2: Content Type, User Properties in order, [MQTT-3.1.3-10]); the
/// will of a client that sent DISCONNECT is not ([MQTT-3.1.2-10]).
fn check_will(protocol: &str) {
    let midge = Midge::start();
    let r = run_script(&midge, "will.py", protocol);
    let received = &r["received"];
    assert_eq!(
        without_properties(received),
        vec![msg(
            &format!("will/{protocol}/killed"),
            "killed-gone",
            1,
            false
        )]
    );
    if protocol == "5" {
        assert_eq!(
            received[0]["properties"],
            json!({"ContentType": "text/plain", "UserProperty": [["reason", "killed"]]})
        );
    }
}

#[test]
fn paho_v311_will_on_killed_client() {
    check_will("3.1.1");
}

#[test]
fn paho_v5_will_on_killed_client() {
    check_will("5");
}

/// Persistent sessions: Clean Session 0 (3.1.1) or Clean Start 0 with a Session Expiry
/// Interval (5) resume with Session Present 1 ([MQTT-3.2.2-2] 3.1.1 / [MQTT-3.2.2-3] 5) and
/// receive, in order, the QoS 1 and 2 messages published while they were away
/// ([MQTT-3.1.2-5] 3.1.1 / [MQTT-3.1.2-23] 5, [MQTT-4.6.0-6]); an MQTT 5 session whose
/// expiry interval has passed is discarded (§3.1.2.11.2: Session Present 0, nothing queued).
fn check_session(protocol: &str) {
    let midge = Midge::start();
    let r = run_script(&midge, "session.py", protocol);
    assert_eq!(r["first"]["session_present"], false);
    assert_eq!(r["resumed"]["session_present"], true);
    let p = protocol;
    let mut expected: Vec<Value> = (0..3)
        .map(|i| msg(&format!("sess/{p}/q1"), &format!("missed-{i}"), 1, false))
        .collect();
    expected.push(msg(&format!("sess/{p}/q2"), "missed-q2", 2, false));
    assert_eq!(without_properties(&r["missed"]), expected);
    if protocol == "5" {
        assert_eq!(
            r["expired"]["session_present"], false,
            "expired session resumed"
        );
        assert_eq!(r["expired_messages"], json!([]));
    }
}

#[test]
fn paho_v311_persistent_session_queues_while_offline() {
    check_session("3.1.1");
}

#[test]
fn paho_v5_persistent_session_queues_while_offline() {
    check_session("5");
}

/// MQTT 5 properties: Payload Format Indicator ([MQTT-3.3.2-4]), Content Type
/// ([MQTT-3.3.2-20]), Response Topic ([MQTT-3.3.2-15]), Correlation Data ([MQTT-3.3.2-16]),
/// User Properties in order ([MQTT-3.3.2-17], [MQTT-3.3.2-18]) forwarded unchanged; the
/// Subscription Identifier returned ([MQTT-3.3.4-3]); a request/response round trip through
/// Response Topic and Correlation Data; Message Expiry counted down ([MQTT-3.3.2-6]) and an
/// expired message not delivered to a session that was offline ([MQTT-3.3.2-5]).
#[test]
fn paho_v5_properties() {
    let midge = Midge::start();
    let r = run_script(&midge, "v5_properties.py", "5");
    let forwarded = &r["forwarded"];
    assert_eq!(
        without_properties(forwarded),
        vec![
            msg("props/data/x", r#"{"v":1}"#, 1, false),
            msg("props/data/plain", "plain", 1, false),
        ]
    );
    let props = &forwarded[0]["properties"];
    let expiry = props["MessageExpiryInterval"]
        .as_u64()
        .expect("expiry forwarded");
    assert!((55..=60).contains(&expiry), "expiry {expiry}");
    let mut props = props.clone();
    props
        .as_object_mut()
        .expect("object")
        .remove("MessageExpiryInterval");
    assert_eq!(
        props,
        json!({
            "PayloadFormatIndicator": 1,
            "ContentType": "application/json",
            "ResponseTopic": "props/reply/pub",
            "CorrelationData": "AQJjb3Jy", // base64 of 01 02 "corr"
            "UserProperty": [["a", "1"], ["b", "2"], ["a", "3"]],
            "SubscriptionIdentifier": [42],
        })
    );
    assert_eq!(
        forwarded[1]["properties"],
        json!({"SubscriptionIdentifier": [42]}),
        "a message without properties gets only the Subscription Identifier"
    );

    assert_eq!(r["requests"], json!(["props/request"]));
    assert_eq!(
        without_properties(&r["reply"]),
        vec![msg("props/reply/pub", "pong", 1, false)]
    );
    assert_eq!(r["reply"][0]["properties"]["CorrelationData"], "cmVxLTc="); // "req-7"

    let after = &r["after_expiry"];
    assert_eq!(
        without_properties(after),
        vec![msg("props/expiry", "long", 1, false)],
        "the expired message must not be delivered"
    );
    let left = after[0]["properties"]["MessageExpiryInterval"]
        .as_u64()
        .expect("expiry forwarded");
    assert!((50..=58).contains(&left), "expiry not counted down: {left}");
}
