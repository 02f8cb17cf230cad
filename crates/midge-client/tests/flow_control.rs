//! Flow control against a broker advertising a small Receive Maximum: a proxy between client
//! and broker decodes the client's packets and counts QoS 1 publishes not yet acknowledged.

mod common;

use std::collections::BTreeSet;

use common::*;
use midge_broker::Config;
use midge_client::{Client, ProtocolVersion, QoS};
use midge_testkit::TestBroker;

#[tokio::test]
async fn never_more_than_receive_maximum_in_flight() {
    let mut config = Config::default();
    config.limits.receive_maximum = 2;
    let broker = TestBroker::start_with(config).await;
    let proxy = Proxy::start(broker.addr).await;

    let (sub, mut events) =
        ok(Client::connect(options(broker.addr, ProtocolVersion::V5, "flow-sub")).await);
    ok(sub.subscribe("flow/#", QoS::AtLeastOnce).await);

    let (publisher, _) =
        ok(Client::connect(options(proxy.addr, ProtocolVersion::V5, "flow-pub")).await);
    assert_eq!(publisher.connack().properties.receive_maximum(), Some(2));

    // 50 concurrent publishers on clones of one handle.
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let client = publisher.clone();
            tokio::spawn(async move {
                client
                    .publish(
                        &format!("flow/{i}"),
                        QoS::AtLeastOnce,
                        false,
                        format!("{i}"),
                    )
                    .await
            })
        })
        .collect();
    for task in tasks {
        let outcome = tokio::time::timeout(WAIT, task)
            .await
            .expect("publish completes")
            .expect("task");
        ok(outcome);
    }

    let mut received = BTreeSet::new();
    while received.len() < 50 {
        let m = next_message(&mut events).await;
        received.insert(
            m.payload_str()
                .expect("utf-8")
                .parse::<u32>()
                .expect("number"),
        );
    }
    assert_eq!(received, (0..50).collect());

    proxy.stats(|s| {
        let publishes = publishes(s);
        assert_eq!(publishes.len(), 50, "each message sent once");
        assert!(
            s.max_outstanding <= 2,
            "{} QoS 1 publishes were unacknowledged at once; Receive Maximum is 2",
            s.max_outstanding
        );
        assert_eq!(s.max_outstanding, 2, "the window is used");
        assert!(s.outstanding.is_empty());
    });
}
