//! `-d`: one line per packet on stdout, worded as libmosquitto 2.0.11's debug log
//! ("Client (null) sending CONNECT", "Client auto-… received PUBLISH (d0, q1, r0, m1, 't', ...
//! (5 bytes))"), fed by the client library's packet observer.
//!
//! Differences that remain: libmosquitto numbers every outgoing message, QoS 0 included, from
//! one counter; Midge's client gives identifiers to QoS 1/2 messages, SUBSCRIBE and
//! UNSUBSCRIBE only, so the `m` of an outgoing QoS 0 PUBLISH is emulated (one more than the
//! last identifier seen) and may differ from Mosquitto's in a mixed sequence.

use std::io::Write;
use std::sync::Mutex;

use midge_client::{Packet, PacketDirection, ProtocolVersion};

/// The state the debug lines need: the client identifier (the server may assign one) and the
/// emulated message counter.
#[derive(Debug)]
pub(crate) struct DebugLog {
    version: ProtocolVersion,
    /// `sub` (without `--quiet`) follows each SUBACK with "Subscribed (mid: N): codes", as
    /// `mosquitto_sub -d` does, re-subscriptions after a reconnection included.
    subscribed_lines: bool,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    id: String,
    last_mid: u16,
}

impl DebugLog {
    /// A log for a client that connects with `client_id` (empty: "(null)", as libmosquitto
    /// prints a missing identifier).
    pub(crate) fn new(
        version: ProtocolVersion,
        client_id: &str,
        subscribed_lines: bool,
    ) -> DebugLog {
        DebugLog {
            version,
            subscribed_lines,
            state: Mutex::new(State {
                id: if client_id.is_empty() {
                    "(null)".to_owned()
                } else {
                    client_id.to_owned()
                },
                last_mid: 0,
            }),
        }
    }

    /// Prints the line(s) for one packet.
    pub(crate) fn observe(&self, direction: PacketDirection, packet: &Packet) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let mut lines = lines(self.version, &mut state, direction, packet);
        if let (true, PacketDirection::Received, Packet::SubAck(ack)) =
            (self.subscribed_lines, direction, packet)
        {
            let codes: Vec<String> = ack.reason_codes.iter().map(|r| r.0.to_string()).collect();
            lines.push(format!(
                "Subscribed (mid: {}): {}\n",
                ack.packet_id.get(),
                codes.join(", ")
            ));
        }
        drop(state);
        let mut out = std::io::stdout().lock();
        for line in lines {
            // A failing stdout is noticed (and acted on) by the tool's own output.
            let _ = out.write_all(line.as_bytes());
        }
        let _ = out.flush();
    }
}

fn lines(
    version: ProtocolVersion,
    state: &mut State,
    direction: PacketDirection,
    packet: &Packet,
) -> Vec<String> {
    let sent = direction == PacketDirection::Sent;
    if let (false, Packet::ConnAck(c)) = (sent, packet)
        && let Some(id) = c.properties.assigned_client_identifier()
    {
        state.id = id.to_string();
    }
    let id = state.id.clone();
    let verb = if sent { "sending" } else { "received" };
    let one = |s: String| vec![s + "\n"];
    match packet {
        Packet::Connect(_) => one(format!("Client {id} sending CONNECT")),
        Packet::ConnAck(c) => {
            let code = if version.is_v5() {
                c.reason_code.0
            } else {
                c.reason_code.to_v3_connack().unwrap_or(c.reason_code.0)
            };
            one(format!("Client {id} received CONNACK ({code})"))
        }
        Packet::Publish(p) => {
            let mid = match (p.packet_id, sent) {
                (Some(pid), _) => {
                    if sent {
                        state.last_mid = pid.get();
                    }
                    pid.get()
                }
                (None, true) => {
                    state.last_mid = state.last_mid.wrapping_add(1).max(1);
                    state.last_mid
                }
                (None, false) => 0,
            };
            let topic = if p.topic.is_empty() {
                "(null)"
            } else {
                p.topic.as_str()
            };
            one(format!(
                "Client {id} {verb} PUBLISH (d{}, q{}, r{}, m{mid}, '{topic}', ... ({} bytes))",
                u8::from(p.dup),
                p.qos.as_u8(),
                u8::from(p.retain),
                p.payload.len()
            ))
        }
        Packet::PubAck(a) if sent => one(format!(
            "Client {id} sending PUBACK (m{}, rc{})",
            a.packet_id.get(),
            a.reason_code.0
        )),
        Packet::PubRec(a) if sent => one(format!(
            "Client {id} sending PUBREC (m{}, rc{})",
            a.packet_id.get(),
            a.reason_code.0
        )),
        Packet::PubRel(a) if sent => one(format!(
            "Client {id} sending PUBREL (m{})",
            a.packet_id.get()
        )),
        Packet::PubComp(a) if sent => one(format!(
            "Client {id} sending PUBCOMP (m{})",
            a.packet_id.get()
        )),
        Packet::PubAck(a) => one(format!(
            "Client {id} received PUBACK (Mid: {}, RC:{})",
            a.packet_id.get(),
            a.reason_code.0
        )),
        Packet::PubComp(a) => one(format!(
            "Client {id} received PUBCOMP (Mid: {}, RC:{})",
            a.packet_id.get(),
            a.reason_code.0
        )),
        Packet::PubRec(a) => one(format!(
            "Client {id} received PUBREC (Mid: {})",
            a.packet_id.get()
        )),
        Packet::PubRel(a) => one(format!(
            "Client {id} received PUBREL (Mid: {})",
            a.packet_id.get()
        )),
        Packet::Subscribe(s) => {
            state.last_mid = s.packet_id.get();
            s.filters
                .iter()
                .map(|f| {
                    let o = &f.options;
                    let options = (u8::from(o.no_local) << 2)
                        | (u8::from(o.retain_as_published) << 3)
                        | ((o.retain_handling as u8) << 4);
                    format!(
                        "Client {id} sending SUBSCRIBE (Mid: {}, Topic: {}, QoS: {}, Options: 0x{options:02x})\n",
                        s.packet_id.get(),
                        f.filter.as_str(),
                        o.qos.as_u8()
                    )
                })
                .collect()
        }
        Packet::Unsubscribe(u) => {
            state.last_mid = u.packet_id.get();
            u.filters
                .iter()
                .map(|f| {
                    format!(
                        "Client {id} sending UNSUBSCRIBE (Mid: {}, Topic: {})\n",
                        u.packet_id.get(),
                        f.as_str()
                    )
                })
                .collect()
        }
        Packet::SubAck(_) => one(format!("Client {id} received SUBACK")),
        Packet::UnsubAck(_) => one(format!("Client {id} received UNSUBACK")),
        Packet::PingReq => one(format!("Client {id} {verb} PINGREQ")),
        Packet::PingResp => one(format!("Client {id} {verb} PINGRESP")),
        Packet::Disconnect(d) if !sent => one(format!("Received DISCONNECT ({})", d.reason_code.0)),
        Packet::Disconnect(_) => one(format!("Client {id} sending DISCONNECT")),
        Packet::Auth(_) => one(format!("Client {id} {verb} AUTH")),
    }
}
