//! The write side of one connection.

use std::collections::VecDeque;

use bytes::{Buf, BytesMut};
use midge_proto::{EncodeError, Packet, ProtocolVersion};

use crate::client::Reply;
use crate::error::ClientError;
use crate::message::PublishOutcome;
use crate::options::{PacketDirection, PacketObserver};

/// Stop moving queued publishes into the write buffer beyond this many bytes; the rest follow
/// as the socket drains, so memory stays bounded however fast the application publishes.
pub(crate) const WRITE_HIGH_WATER: usize = 64 * 1024;

/// The write side of one connection: packets are appended to `wbuf`, which the task writes
/// (many packets per system call). Byte counters tell when a QoS 0 publish has been written.
#[derive(Debug)]
pub(crate) struct Out {
    pub(crate) wbuf: BytesMut,
    version: ProtocolVersion,
    /// Bytes ever appended to / written from `wbuf`.
    appended: u64,
    written: u64,
    /// QoS 0 publishes to confirm once `written` reaches their end offset.
    qos0: VecDeque<(u64, Reply<PublishOutcome>)>,
    /// Told of every packet appended.
    pub(crate) observer: Option<PacketObserver>,
}

impl Out {
    pub(crate) fn new(version: ProtocolVersion) -> Out {
        Out {
            wbuf: BytesMut::new(),
            version,
            appended: 0,
            written: 0,
            qos0: VecDeque::new(),
            observer: None,
        }
    }

    /// Appends `packet`; returns its encoded length.
    pub(crate) fn encode(&mut self, packet: &Packet) -> Result<usize, EncodeError> {
        let before = self.wbuf.len();
        packet.encode(self.version, &mut self.wbuf)?;
        let len = self.wbuf.len() - before;
        self.appended += len as u64;
        if let Some(observer) = &self.observer {
            observer.observe(PacketDirection::Sent, packet);
        }
        Ok(len)
    }

    /// Appends a packet the client builds itself (acknowledgements, PINGREQ), which cannot
    /// fail to encode; a failure would be a bug, logged rather than panicking.
    pub(crate) fn encode_control(&mut self, packet: &Packet) {
        if let Err(e) = self.encode(packet) {
            tracing::error!(error = %e, packet = %packet.packet_type(), "cannot encode");
        }
    }

    /// Answers `reply` once everything appended so far (the QoS 0 publish just encoded) has
    /// been written.
    pub(crate) fn confirm_when_written(&mut self, reply: Reply<PublishOutcome>) {
        self.qos0.push_back((self.appended, reply));
    }

    /// `n` bytes were written.
    pub(crate) fn advance(&mut self, n: usize) {
        self.wbuf.advance(n);
        self.written += n as u64;
        while self
            .qos0
            .front()
            .is_some_and(|(end, _)| *end <= self.written)
        {
            if let Some((_, reply)) = self.qos0.pop_front() {
                let _ = reply.send(Ok(PublishOutcome::qos0()));
            }
        }
        if self.wbuf.is_empty() && self.wbuf.capacity() > 4 * WRITE_HIGH_WATER {
            self.wbuf = BytesMut::new();
        }
    }

    /// The connection is gone: QoS 0 publishes not yet written are lost.
    pub(crate) fn fail_unwritten(&mut self, error: &ClientError) {
        for (_, reply) in self.qos0.drain(..) {
            let _ = reply.send(Err(ClientError::ConnectionLost(Box::new(error.clone()))));
        }
    }
}
