//! A publisher connection: writes stamped PUBLISH packets as fast as the window, its
//! inflight limit and the rate allow, and collects their acknowledgements.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use midge_proto::QoS;
use tokio::sync::{Semaphore, watch};
use tokio::time::{Instant, sleep_until};

use super::conn::{Conn, ConnectSpec, Frame, PINGREQ, PUBREL, Template, next_frame, put_ack};
use super::plan::{Phase, Settings, Shared};
use super::stats::Stamp;

/// Stop encoding while this many bytes wait to be written.
const HIGH_WATER: usize = 64 * 1024;
/// Messages encoded per turn at most, so one publisher cannot starve the others.
const BATCH: u64 = 512;
/// How long deliveries may stop entirely, while this publisher waits for room in the window,
/// before half a window is written off (see [`Shared::room`]).
const STALL: Duration = Duration::from_secs(1);

/// One topic a publisher sends to.
#[derive(Debug, Clone)]
pub(crate) struct Slot {
    /// The topic's index in the plan.
    pub(crate) topic: u32,
    /// Deliveries each message causes.
    pub(crate) fan: u64,
    pub(crate) template: Template,
}

/// What a publisher task is given.
#[derive(Debug)]
pub(crate) struct PublisherTask {
    pub(crate) id: u32,
    pub(crate) spec: ConnectSpec,
    pub(crate) slots: Vec<Slot>,
    /// Messages to send at most.
    pub(crate) quota: Option<u64>,
    /// This publisher's share of the rate, messages per second.
    pub(crate) rate: Option<f64>,
    /// Where in its period this publisher sends (0..1), so that many rate-limited
    /// publishers do not all send in the same millisecond.
    pub(crate) phase_offset: f64,
    pub(crate) settings: Arc<Settings>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) setup: Arc<Semaphore>,
}

/// What a publisher did.
#[derive(Debug, Default, Clone)]
pub(crate) struct PublisherResult {
    pub(crate) id: u32,
    /// Messages written; message `m` went to `slots[m % slots.len()]`.
    pub(crate) sent: u64,
    /// QoS 1/2 messages whose flow completed successfully.
    pub(crate) acked: u64,
    /// QoS 1/2 messages the broker answered with a failure Reason Code.
    pub(crate) rejected: u64,
    /// QoS 1/2 messages still unacknowledged at the end.
    pub(crate) unacked: u64,
    /// Whether the connection was set up.
    pub(crate) connected: bool,
    /// Whether `Shared::publishers_done` counts this publisher already.
    pub(crate) done: bool,
}

impl PublisherTask {
    pub(crate) async fn run(self) -> PublisherResult {
        let mut result = PublisherResult {
            id: self.id,
            ..PublisherResult::default()
        };
        let conn = {
            let _permit = self.setup.acquire().await;
            Conn::open(&self.spec).await
        };
        let mut conn = match conn {
            Ok(conn) => conn,
            Err(e) => {
                self.shared.failed.fetch_add(1, Ordering::SeqCst);
                self.shared
                    .error(format!("publisher {}: {e:#}", self.spec.client_id));
                return result;
            }
        };
        result.connected = true;
        self.shared.ready.fetch_add(1, Ordering::SeqCst);
        self.shared.changed.notify_one();
        let mut phase = self.shared.phase.subscribe();
        let started = phase.wait_for(|p| *p >= Phase::Run).await.map(|p| *p);
        if !matches!(started, Ok(Phase::Run | Phase::Drain)) {
            conn.close();
            return result;
        }
        let outcome = self.publish(&mut conn, &mut phase, &mut result).await;
        if !result.done {
            result.done = true;
            self.shared.publishers_done.fetch_add(1, Ordering::SeqCst);
            self.shared.changed.notify_one();
        }
        match outcome {
            Ok(()) => conn.close(),
            Err(e) => self
                .shared
                .error(format!("publisher {}: {e:#}", self.spec.client_id)),
        }
        result
    }

    async fn publish(
        &self,
        conn: &mut Conn,
        phase: &mut watch::Receiver<Phase>,
        result: &mut PublisherResult,
    ) -> anyhow::Result<()> {
        let shared = &*self.shared;
        let qos = self.settings.qos;
        let limit = if qos == QoS::AtMostOnce {
            0
        } else {
            self.settings.inflight.min(conn.receive_maximum).max(1)
        };
        // Free Packet Identifiers; popped from the end, so 1, 2, 3 … go out first.
        let mut free: Vec<u16> = (1..=limit).rev().collect();
        // QoS 2 messages that got their PUBREC (PUBREL sent, PUBCOMP awaited).
        let mut released = vec![false; usize::from(limit) + 1];
        let slots = self.slots.len() as u64;
        let start_ns = shared.run_start_ns.load(Ordering::SeqCst);
        let mut publishing = true;
        let ping_every = conn.keep_alive / 2;
        let mut next_ping = Instant::now() + ping_every;
        let mut blocked: Option<(Instant, u64)> = None;
        let mut acked_reported = 0;
        loop {
            // Acknowledgements.
            conn.try_fill(16 * 1024, 256 * 1024)?;
            let mut consumed = 0;
            while let Some((frame, len)) = next_frame(&conn.rbuf[consumed..], conn.version)? {
                consumed += len;
                match frame {
                    Frame::Ack {
                        kind,
                        packet_id,
                        reason,
                    } => {
                        let slot = usize::from(packet_id);
                        if packet_id == 0 || slot > usize::from(limit) {
                            anyhow::bail!(
                                "acknowledgement for unknown Packet Identifier {packet_id}"
                            );
                        }
                        match (qos, kind) {
                            (QoS::AtLeastOnce, 4) | (QoS::ExactlyOnce, 7) => {
                                if reason >= 0x80 {
                                    result.rejected += 1;
                                } else {
                                    result.acked += 1;
                                }
                                released[slot] = false;
                                free.push(packet_id);
                            }
                            (QoS::ExactlyOnce, 5) if reason >= 0x80 => {
                                // A failed PUBREC ends the flow.
                                result.rejected += 1;
                                free.push(packet_id);
                            }
                            (QoS::ExactlyOnce, 5) => {
                                released[slot] = true;
                                put_ack(&mut conn.wbuf, PUBREL, packet_id);
                            }
                            _ => anyhow::bail!("unexpected acknowledgement (type {kind})"),
                        }
                    }
                    Frame::PingResp => {}
                    Frame::Publish { .. } | Frame::PubRel(_) => {
                        anyhow::bail!("a publisher received a PUBLISH it did not subscribe to")
                    }
                    Frame::Other(packet) => {
                        anyhow::bail!("the broker sent {}: {packet:?}", packet.packet_type())
                    }
                }
            }
            if consumed > 0 {
                let _ = conn.rbuf.split_to(consumed);
            }
            if result.acked > acked_reported {
                // Counted once per turn, not per acknowledgement.
                shared
                    .acked
                    .fetch_add(result.acked - acked_reported, Ordering::Relaxed);
                acked_reported = result.acked;
            }

            // Stop publishing?
            if publishing
                && (*phase.borrow() >= Phase::Drain || self.quota.is_some_and(|q| result.sent >= q))
            {
                publishing = false;
            }

            // Produce.
            let mut wait_room = false;
            // Room the next message needs.
            let mut need = 0i64;
            let mut wait_until: Option<Instant> = None;
            let mut produced = 0u64;
            if publishing && conn.pending() < HIGH_WATER {
                let mut n = BATCH;
                if let Some(q) = self.quota {
                    n = n.min(q - result.sent);
                }
                if limit > 0 {
                    n = n.min(free.len() as u64);
                }
                if let Some(rate) = self.rate {
                    let since = shared.now_ns().saturating_sub(start_ns) as f64 / 1e9;
                    let due = (since * rate + self.phase_offset).floor() as u64;
                    if due <= result.sent {
                        // When message `sent` falls due.
                        let at_secs = (result.sent as f64 + 1.0 - self.phase_offset) / rate;
                        let at_ns = start_ns + (at_secs * 1e9) as u64;
                        let wait = Duration::from_nanos(at_ns.saturating_sub(shared.now_ns()));
                        wait_until = Some(Instant::now() + wait);
                    }
                    n = n.min(due.saturating_sub(result.sent));
                }
                let mut room = shared.room();
                let now_ns = shared.now_ns();
                let mut deliveries = 0;
                let first = result.sent;
                // Up to `n` messages, and no further beyond the high-water mark.
                while produced < n && conn.pending() < HIGH_WATER {
                    let m = first + produced;
                    let slot = &self.slots[(m % slots) as usize];
                    // A message whose fan exceeds the whole window goes out when nothing
                    // else is outstanding.
                    need = (slot.fan as i64).min(shared.window as i64);
                    if room < need {
                        wait_room = true;
                        break;
                    }
                    room -= slot.fan as i64;
                    deliveries += slot.fan;
                    let start = conn.wbuf.len();
                    conn.wbuf.extend_from_slice(&slot.template.bytes);
                    if limit > 0 {
                        // `n` is bounded by the free identifiers.
                        let id = free.pop().unwrap_or(1);
                        let at = start + slot.template.packet_id_at;
                        conn.wbuf[at..at + 2].copy_from_slice(&id.to_be_bytes());
                    }
                    Stamp {
                        publisher: self.id,
                        topic: slot.topic,
                        seq: m / slots,
                        sent_ns: now_ns,
                    }
                    .write(&mut conn.wbuf[start + slot.template.payload_at..]);
                    produced += 1;
                }
                if produced > 0 {
                    result.sent += produced;
                    shared.expected.fetch_add(deliveries, Ordering::SeqCst);
                    shared.published.fetch_add(produced, Ordering::Relaxed);
                }
                if self.quota.is_some_and(|q| result.sent >= q) {
                    publishing = false;
                }
            }

            // Write.
            conn.try_flush()?;
            let outstanding = usize::from(limit) - free.len();
            if !publishing && !result.done && conn.pending() == 0 && outstanding == 0 {
                result.done = true;
                shared.publishers_done.fetch_add(1, Ordering::SeqCst);
                shared.changed.notify_one();
            }
            if *phase.borrow() == Phase::Stop {
                result.unacked = outstanding as u64;
                return Ok(());
            }
            let blocked_on_ids = limit > 0 && free.is_empty();
            // Nothing limits the next batch (the window, the rate, the identifiers, the
            // socket): go on at once. Every other case waits below for what limits it.
            if publishing
                && conn.pending() == 0
                && !wait_room
                && wait_until.is_none()
                && !blocked_on_ids
            {
                // More can go out at once: let the other tasks run first.
                tokio::task::yield_now().await;
                continue;
            }

            // Wait for something to change.
            let room_signal = shared.room.notified();
            tokio::pin!(room_signal);
            if wait_room {
                room_signal.as_mut().enable();
                shared.waiting.store(true, Ordering::SeqCst);
                if shared.room() >= need {
                    continue;
                }
                let received = shared.received.load(Ordering::SeqCst);
                match blocked {
                    Some((_, r)) if r == received => {}
                    _ => blocked = Some((Instant::now(), received)),
                }
            } else {
                blocked = None;
            }
            let stall_at = blocked.map_or_else(Instant::now, |(since, _)| since + STALL);
            tokio::select! {
                biased;
                changed = phase.changed() => {
                    if changed.is_err() {
                        return Ok(());
                    }
                }
                ready = conn.stream.readable() => { ready?; }
                ready = conn.stream.writable(), if conn.pending() > 0 => { ready?; }
                () = &mut room_signal, if wait_room => {}
                () = sleep_until(stall_at), if wait_room => {
                    let received = shared.received.load(Ordering::SeqCst);
                    if blocked.is_some_and(|(_, r)| r == received) {
                        shared.stall(received);
                        blocked = None;
                    }
                }
                () = sleep_until(wait_until.unwrap_or_else(Instant::now)), if wait_until.is_some() => {}
                () = sleep_until(next_ping), if !ping_every.is_zero() => {
                    conn.wbuf.extend_from_slice(&PINGREQ);
                    next_ping += ping_every;
                }
            }
        }
    }
}
