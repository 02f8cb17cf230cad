//! What the connection reports: received messages and connection changes.

use std::time::Duration;

use midge_proto::ConnAck;
use tokio::sync::mpsc;

use crate::error::ClientError;
use crate::message::Message;

/// One thing that happened on the connection, in order.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// An Application Message from the server. Responses to
    /// [`Client::request`](crate::Client::request) are not reported here; they go to the
    /// request.
    Message(Message),
    /// A connection was established: the first one (also returned by
    /// [`Client::connect`](crate::Client::connect)) and every reconnection. The CONNACK tells
    /// whether the server still had the session (`session_present`) and carries its
    /// properties.
    Connected(ConnAck),
    /// The connection was lost, or a reconnection attempt failed. If reconnection is on, a
    /// [`Reconnecting`](Event::Reconnecting) follows; otherwise the stream ends.
    Disconnected(ClientError),
    /// The client will try to reconnect after `delay`; `attempt` counts from 1 since the
    /// last successful connection.
    Reconnecting {
        /// The attempt about to be made.
        attempt: u32,
        /// The wait before it.
        delay: Duration,
    },
}

/// The receiving end of a client's [`Event`]s, returned by
/// [`Client::connect`](crate::Client::connect).
///
/// Read it steadily: when it is full the client stops reading from the network, which holds
/// the server's messages back (and, if it lasts, its acknowledgements too). If only publishing,
/// drop it: events are then discarded. The stream ends (`None`) when the client has shut
/// down.
#[derive(Debug)]
pub struct Events {
    pub(crate) rx: mpsc::Receiver<Event>,
}

impl Events {
    /// The next event, or `None` once the client has shut down.
    pub async fn recv(&mut self) -> Option<Event> {
        self.rx.recv().await
    }

    /// The next received message, skipping connection events; `None` once the client has
    /// shut down.
    pub async fn next_message(&mut self) -> Option<Message> {
        loop {
            match self.rx.recv().await? {
                Event::Message(m) => return Some(m),
                other => tracing::debug!(event = ?other, "skipped by next_message"),
            }
        }
    }

    /// The next event if one is ready, without waiting.
    pub fn try_recv(&mut self) -> Option<Event> {
        self.rx.try_recv().ok()
    }
}
