//! A subscriber connection: reads deliveries, acknowledges them, and tracks every stream's
//! sequence numbers and every message's latency.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::{Semaphore, watch};
use tokio::time::{Instant, sleep_until};

use super::conn::{
    Conn, ConnectSpec, Frame, PINGREQ, PUBACK, PUBCOMP, PUBREC, next_frame, put_ack,
};
use super::plan::{Phase, Settings, Shared};
use super::stats::{Arrival, Stamp, Streams};

/// Latency samples a subscriber collects before adding them to the shared histogram (a
/// histogram per subscriber would cost 30 KB each, too much for thousands of connections).
const LATENCY_BATCH: usize = 4096;

/// What a subscriber task is given.
#[derive(Debug)]
pub(crate) struct SubscriberTask {
    pub(crate) id: u32,
    pub(crate) spec: ConnectSpec,
    pub(crate) filters: Vec<String>,
    /// Read buffer growth step: large for busy subscribers, small for thousands of idle ones.
    pub(crate) chunk: usize,
    pub(crate) settings: Arc<Settings>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) setup: Arc<Semaphore>,
}

/// What a subscriber received.
#[derive(Debug, Default)]
pub(crate) struct SubscriberResult {
    pub(crate) id: u32,
    pub(crate) connected: bool,
    pub(crate) streams: Streams,
    /// Deliveries, duplicates included.
    pub(crate) received: u64,
    pub(crate) duplicates: u64,
    pub(crate) out_of_order: u64,
    /// Messages whose payload is too short to carry the benchmark header.
    pub(crate) foreign: u64,
}

impl SubscriberTask {
    pub(crate) async fn run(self) -> SubscriberResult {
        let mut result = SubscriberResult {
            id: self.id,
            ..SubscriberResult::default()
        };
        let conn = {
            let _permit = self.setup.acquire().await;
            match Conn::open(&self.spec).await {
                Ok(mut conn) => conn
                    .subscribe(&self.filters, self.settings.qos)
                    .await
                    .map(|()| conn),
                Err(e) => Err(e),
            }
        };
        let mut conn = match conn {
            Ok(conn) => conn,
            Err(e) => {
                self.shared.failed.fetch_add(1, Ordering::SeqCst);
                self.shared
                    .error(format!("subscriber {}: {e:#}", self.spec.client_id));
                return result;
            }
        };
        result.connected = true;
        self.shared.ready.fetch_add(1, Ordering::SeqCst);
        self.shared.changed.notify_one();
        let mut phase = self.shared.phase.subscribe();
        let mut latencies = Vec::new();
        let outcome = self
            .receive(&mut conn, &mut phase, &mut result, &mut latencies)
            .await;
        self.shared.record_latencies(&latencies);
        match outcome {
            Ok(()) => conn.close(),
            Err(e) => self
                .shared
                .error(format!("subscriber {}: {e:#}", self.spec.client_id)),
        }
        result
    }

    async fn receive(
        &self,
        conn: &mut Conn,
        phase: &mut watch::Receiver<Phase>,
        result: &mut SubscriberResult,
        latencies: &mut Vec<u64>,
    ) -> anyhow::Result<()> {
        let shared = &*self.shared;
        let ping_every = conn.keep_alive / 2;
        let mut next_ping = Instant::now() + ping_every;
        loop {
            conn.try_fill(self.chunk, 256 * 1024)?;
            if !conn.rbuf.is_empty() {
                let now_ns = shared.now_ns();
                let warm_from = shared.warmup_end_ns.load(Ordering::Relaxed);
                let mut consumed = 0;
                let mut delivered = 0;
                while let Some((frame, len)) = next_frame(&conn.rbuf[consumed..], conn.version)? {
                    consumed += len;
                    match frame {
                        Frame::Publish {
                            qos,
                            packet_id,
                            payload,
                        } => {
                            delivered += 1;
                            match qos {
                                1 => put_ack(&mut conn.wbuf, PUBACK, packet_id),
                                2 => put_ack(&mut conn.wbuf, PUBREC, packet_id),
                                _ => {}
                            }
                            let Some(stamp) = Stamp::read(payload) else {
                                result.foreign += 1;
                                continue;
                            };
                            match result
                                .streams
                                .entry(stamp.stream())
                                .or_default()
                                .record(stamp.seq)
                            {
                                Arrival::InOrder => {}
                                Arrival::OutOfOrder => result.out_of_order += 1,
                                Arrival::Duplicate => result.duplicates += 1,
                            }
                            if stamp.sent_ns >= warm_from {
                                latencies.push(now_ns.saturating_sub(stamp.sent_ns));
                            }
                        }
                        Frame::PubRel(packet_id) => put_ack(&mut conn.wbuf, PUBCOMP, packet_id),
                        Frame::PingResp => {}
                        Frame::Ack { kind, .. } => {
                            anyhow::bail!("unexpected acknowledgement (type {kind})")
                        }
                        Frame::Other(packet) => {
                            anyhow::bail!("the broker sent {}: {packet:?}", packet.packet_type())
                        }
                    }
                }
                let _ = conn.rbuf.split_to(consumed);
                if conn.rbuf.is_empty() && conn.rbuf.capacity() > 4 * self.chunk {
                    // Do not keep a burst's buffer for the rest of the run.
                    conn.rbuf = bytes::BytesMut::new();
                }
                if delivered > 0 {
                    result.received += delivered;
                    shared.delivered(delivered);
                }
                if latencies.len() >= LATENCY_BATCH {
                    shared.record_latencies(latencies);
                    latencies.clear();
                }
            }
            conn.try_flush()?;
            if *phase.borrow() == Phase::Stop {
                return Ok(());
            }
            tokio::select! {
                biased;
                changed = phase.changed() => {
                    if changed.is_err() {
                        return Ok(());
                    }
                }
                ready = conn.stream.readable() => { ready?; }
                ready = conn.stream.writable(), if conn.pending() > 0 => { ready?; }
                () = sleep_until(next_ping), if !ping_every.is_zero() => {
                    conn.wbuf.extend_from_slice(&PINGREQ);
                    next_ping += ping_every;
                }
            }
        }
    }
}
