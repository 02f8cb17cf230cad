//! Encode and decode throughput of the codec.
//!
//! `cargo bench -p midge-proto --bench codec`. Each case is measured as encoding into a
//! reused buffer and as decoding one packet with the streaming [`Decoder`] (the input buffer
//! is prepared outside the timed section). Throughput is the packet's wire size.
//!
//! Cases: PUBLISH MQTT 3.1.1 QoS 0 with a 64-byte payload, PUBLISH MQTT 5 QoS 1 with 64-byte
//! and 1 KiB payloads, and an MQTT 5 CONNECT carrying every CONNECT property, ten User
//! Properties, a Will with Will Properties, a user name and a password.

#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use midge_proto::{
    Connect, Decoder, Packet, PacketId, Properties, Property, ProtocolVersion, Publish, QoS,
    TopicName, Will,
};

const MAX_PACKET_SIZE: u32 = 1 << 20;

fn publish(topic: &str, payload_len: usize, qos: QoS, v5: bool) -> Packet {
    let payload: Vec<u8> = (0..payload_len).map(|i| i as u8).collect();
    let mut p = Publish::new(TopicName::new(topic).unwrap(), payload);
    p.qos = qos;
    if qos != QoS::AtMostOnce {
        p.packet_id = PacketId::new(4242);
    }
    if v5 {
        p.properties = Properties::new()
            .with(Property::PayloadFormatIndicator(false))
            .with(Property::MessageExpiryInterval(300))
            .with(Property::UserProperty(
                "trace-id".into(),
                "4bf92f3577b34da6".into(),
            ));
    }
    Packet::Publish(p)
}

fn connect_v5_many_properties() -> Packet {
    let mut c = Connect::new(ProtocolVersion::V5, "bench-client-0001");
    c.clean_start = false;
    c.keep_alive = 30;
    let mut props = Properties::new()
        .with(Property::SessionExpiryInterval(3600))
        .with(Property::ReceiveMaximum(100))
        .with(Property::MaximumPacketSize(MAX_PACKET_SIZE))
        .with(Property::TopicAliasMaximum(16))
        .with(Property::RequestResponseInformation(true))
        .with(Property::RequestProblemInformation(true))
        .with(Property::AuthenticationMethod("SCRAM-SHA-256".into()))
        .with(Property::AuthenticationData(Bytes::from_static(
            b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
        )));
    for i in 0..10 {
        props.push(Property::UserProperty(
            format!("key-{i}").into(),
            format!("value-{i}").into(),
        ));
    }
    c.properties = props;
    let mut will = Will::new(
        TopicName::new("clients/bench-client-0001/status").unwrap(),
        "offline",
    );
    will.qos = QoS::AtLeastOnce;
    will.retain = true;
    will.properties = Properties::new()
        .with(Property::WillDelayInterval(5))
        .with(Property::PayloadFormatIndicator(true))
        .with(Property::MessageExpiryInterval(86_400))
        .with(Property::ContentType("text/plain".into()))
        .with(Property::ResponseTopic(
            TopicName::new("clients/bench-client-0001/reply").unwrap(),
        ))
        .with(Property::CorrelationData(Bytes::from_static(b"corr-0001")))
        .with(Property::UserProperty("origin".into(), "bench".into()));
    c.will = Some(will);
    c.username = Some("bench-user".into());
    c.password = Some(Bytes::from_static(b"correct horse battery staple"));
    Packet::from(c)
}

struct Case {
    name: &'static str,
    version: ProtocolVersion,
    packet: Packet,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "publish_v311_qos0_64B",
            version: ProtocolVersion::V3_1_1,
            packet: publish("sensors/building-1/floor-2/t1", 64, QoS::AtMostOnce, false),
        },
        Case {
            name: "publish_v5_qos1_64B",
            version: ProtocolVersion::V5,
            packet: publish("sensors/building-1/floor-2/t1", 64, QoS::AtLeastOnce, true),
        },
        Case {
            name: "publish_v5_qos1_1KiB",
            version: ProtocolVersion::V5,
            packet: publish(
                "sensors/building-1/floor-2/t1",
                1024,
                QoS::AtLeastOnce,
                true,
            ),
        },
        Case {
            name: "connect_v5_many_properties",
            version: ProtocolVersion::V5,
            packet: connect_v5_many_properties(),
        },
    ]
}

fn decoder_for(packet: &Packet, version: ProtocolVersion) -> Decoder {
    match packet {
        // A server reads CONNECT before it knows the version.
        Packet::Connect(_) => Decoder::server(MAX_PACKET_SIZE),
        _ => Decoder::with_version(version, MAX_PACKET_SIZE),
    }
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    for case in cases() {
        let len = case.packet.encoded_len(case.version).unwrap();
        group.throughput(Throughput::Bytes(len as u64));
        let mut buf = BytesMut::with_capacity(len);
        group.bench_function(case.name, |b| {
            b.iter(|| {
                buf.clear();
                black_box(&case.packet)
                    .encode(black_box(case.version), &mut buf)
                    .unwrap();
                black_box(buf.len())
            });
        });
    }
    group.finish();
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    for case in cases() {
        let wire = case.packet.to_bytes(case.version).unwrap();
        // Sanity check: the benchmark decodes what it encoded.
        let mut check = BytesMut::from(&wire[..]);
        let decoded = decoder_for(&case.packet, case.version).decode(&mut check);
        assert_eq!(decoded, Ok(Some(case.packet.clone())), "{}", case.name);

        group.throughput(Throughput::Bytes(wire.len() as u64));
        group.bench_function(case.name, |b| {
            b.iter_batched(
                || {
                    (
                        decoder_for(&case.packet, case.version),
                        BytesMut::from(&wire[..]),
                    )
                },
                |(mut decoder, mut buf)| decoder.decode(black_box(&mut buf)).unwrap(),
                BatchSize::SmallInput,
            );
        });
    }
    group.finish();
}

/// Many small packets back to back in one buffer, as a busy connection delivers them.
fn decode_stream(c: &mut Criterion) {
    const COUNT: usize = 100;
    let mut group = c.benchmark_group("decode_stream");
    let packet = publish("sensors/building-1/floor-2/t1", 64, QoS::AtMostOnce, false);
    let one = packet.to_bytes(ProtocolVersion::V3_1_1).unwrap();
    let wire: Vec<u8> = one
        .iter()
        .copied()
        .cycle()
        .take(one.len() * COUNT)
        .collect();
    group.throughput(Throughput::Elements(COUNT as u64));
    group.bench_function("publish_v311_qos0_64B_x100", |b| {
        b.iter_batched(
            || BytesMut::from(&wire[..]),
            |mut buf| {
                let mut decoder = Decoder::with_version(ProtocolVersion::V3_1_1, MAX_PACKET_SIZE);
                let mut n = 0;
                while let Some(p) = decoder.decode(&mut buf).unwrap() {
                    black_box(p);
                    n += 1;
                }
                assert_eq!(n, COUNT);
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

criterion_group!(benches, encode, decode, decode_stream);
criterion_main!(benches);
