//! A first end-to-end check through the test kit: subscribe, publish, receive.

use midge_proto::{ProtocolVersion, QoS};
use midge_testkit::TestBroker;

#[tokio::test]
async fn publish_reaches_subscriber_across_versions() {
    let broker = TestBroker::start().await;
    let mut sub = broker.client(ProtocolVersion::V5, "sub").await;
    sub.subscribe("a/+", QoS::AtLeastOnce).await;
    let mut publisher = broker.client(ProtocolVersion::V3_1_1, "pub").await;
    publisher.publish0("a/b", b"hello").await;
    let got = sub.recv_publish().await;
    assert_eq!(got.topic.as_str(), "a/b");
    assert_eq!(&got.payload[..], b"hello");
    assert_eq!(got.qos, QoS::AtMostOnce);
    broker.stop().await;
}
