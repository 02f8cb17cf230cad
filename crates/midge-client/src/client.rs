//! The [`Client`] handle: commands to the connection task, answers over oneshot channels.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use midge_proto::{
    ByteString, ConnAck, Disconnect, PacketType, Properties, Property, ProtocolVersion, QoS,
    ReasonCode, SubAck, SubscribeFilter, SubscriptionOptions, TopicFilter, TopicName, UnsubAck,
};
use tokio::sync::{mpsc, oneshot, watch};

use crate::connection::{self, Status};
use crate::error::ClientError;
use crate::event::Events;
use crate::message::{Message, PublishOutcome};
use crate::options::ConnectOptions;

/// Capacity of the command channel. The task drains it eagerly into its own queue (bounded
/// by [`ConnectOptions::max_queued`]), so this only smooths bursts.
const COMMAND_CAPACITY: usize = 128;

pub(crate) type Reply<T> = oneshot::Sender<Result<T, ClientError>>;

/// What the handle asks the connection task to do.
#[derive(Debug)]
pub(crate) enum Command {
    Publish(PendingPublish),
    Subscribe {
        filters: Vec<SubscribeFilter>,
        properties: Properties,
        reply: Reply<SubAck>,
    },
    Unsubscribe {
        filters: Vec<TopicFilter>,
        properties: Properties,
        reply: Reply<UnsubAck>,
    },
    /// Route the response with `correlation` to `response`, after making sure
    /// `response_topic` is subscribed; `ready` answers once it is.
    Request {
        response_topic: TopicFilter,
        qos: QoS,
        correlation: Bytes,
        response: oneshot::Sender<Message>,
        ready: Reply<()>,
    },
    Disconnect {
        disconnect: Disconnect,
        reply: Reply<()>,
    },
}

/// A message on its way, and who to tell when its flow completes.
#[derive(Debug)]
pub(crate) struct PendingPublish {
    pub(crate) publish: midge_proto::Publish,
    pub(crate) reply: Option<Reply<PublishOutcome>>,
}

impl PendingPublish {
    pub(crate) fn finish(self, result: Result<PublishOutcome, ClientError>) {
        if let Some(reply) = self.reply {
            let _ = reply.send(result);
        }
    }
}

/// A handle to one MQTT connection (and its reconnections). Cheap to clone; every clone talks
/// to the same connection task.
///
/// The connection keeps running while a `Client` clone or the [`Events`] exists, until
/// [`disconnect`](Client::disconnect) is called or reconnection gives up. When every `Client`
/// and the `Events` are dropped, it sends DISCONNECT and closes.
#[derive(Debug, Clone)]
pub struct Client {
    commands: mpsc::Sender<Command>,
    status: watch::Receiver<Arc<Status>>,
    version: ProtocolVersion,
}

impl Client {
    /// Connects, waits for the CONNACK and starts the connection task.
    ///
    /// Returns the handle and the [`Events`] stream, whose first event is
    /// [`Event::Connected`](crate::Event::Connected). The CONNACK is also available from
    /// [`Client::connack`]. A refusal is [`ClientError::Refused`], carrying the Reason Code
    /// and the CONNACK. This first attempt is not retried; reconnection applies to connections
    /// lost later.
    pub async fn connect(options: ConnectOptions) -> Result<(Client, Events), ClientError> {
        let version = options.version;
        let (commands_tx, commands_rx) = mpsc::channel(COMMAND_CAPACITY);
        let (events_tx, events_rx) = mpsc::channel(options.event_capacity);
        let status = connection::start(options, commands_rx, events_tx).await?;
        Ok((
            Client {
                commands: commands_tx,
                status,
                version,
            },
            Events { rx: events_rx },
        ))
    }

    /// Publishes `payload` to `topic` and waits until its QoS flow completes: QoS 0 once
    /// written to the transport, QoS 1 at PUBACK, QoS 2 at PUBCOMP.
    ///
    /// While the server's Receive Maximum of QoS 1/2 messages is in flight, the message waits
    /// its turn; while disconnected it waits for the reconnection.
    pub async fn publish(
        &self,
        topic: &str,
        qos: QoS,
        retain: bool,
        payload: impl Into<Bytes>,
    ) -> Result<PublishOutcome, ClientError> {
        let topic = TopicName::new(topic)?;
        self.publish_message(
            Message::new(topic, payload)
                .with_qos(qos)
                .with_retain(retain),
        )
        .await
    }

    /// Publishes a [`Message`] (with its properties) and waits until its QoS flow completes,
    /// as [`publish`](Client::publish).
    pub async fn publish_message(&self, message: Message) -> Result<PublishOutcome, ClientError> {
        self.publish_nowait(message).await?.await
    }

    /// Hands a message to the connection task and returns once it is queued, without waiting
    /// for its acknowledgement: the returned [`PublishHandle`] resolves when the flow
    /// completes, and may be dropped. This keeps a whole Receive Maximum window in flight
    /// from one task, for throughput. It waits only when the client's queue is full
    /// ([`ConnectOptions::max_queued`]).
    pub async fn publish_nowait(&self, message: Message) -> Result<PublishHandle, ClientError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Publish(PendingPublish {
            publish: message.into_publish(),
            reply: Some(tx),
        }))
        .await?;
        Ok(PublishHandle { rx })
    }

    /// Subscribes to one filter with `qos` as its maximum QoS and default options; returns the
    /// QoS the server granted, or [`ClientError::Rejected`] with the SUBACK's failure code.
    pub async fn subscribe(&self, filter: &str, qos: QoS) -> Result<QoS, ClientError> {
        let filter = TopicFilter::new(filter)?;
        let suback = self
            .subscribe_with(
                vec![SubscribeFilter {
                    filter,
                    options: SubscriptionOptions::qos(qos),
                }],
                Properties::new(),
            )
            .await?;
        let code = suback
            .reason_codes
            .first()
            .copied()
            .unwrap_or(ReasonCode::UNSPECIFIED_ERROR);
        match QoS::from_u8(code.0) {
            Some(granted) => Ok(granted),
            None => Err(ClientError::Rejected {
                packet: PacketType::SubAck,
                reason_code: code,
                reason_string: suback.properties.reason_string().cloned(),
            }),
        }
    }

    /// Subscribes to several filters, each with its own [`SubscriptionOptions`] (maximum QoS,
    /// No Local, Retain As Published, Retain Handling), with SUBSCRIBE properties such as a
    /// Subscription Identifier and User Properties. Returns the SUBACK, with one Reason Code
    /// per filter.
    ///
    /// The subscriptions the server grants are remembered and made again after a reconnection
    /// that finds no session.
    pub async fn subscribe_with(
        &self,
        filters: Vec<SubscribeFilter>,
        properties: Properties,
    ) -> Result<SubAck, ClientError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Subscribe {
            filters,
            properties,
            reply,
        })
        .await?;
        rx.await.unwrap_or(Err(ClientError::Disconnected))
    }

    /// Unsubscribes from one filter and returns the UNSUBACK (MQTT 5 carries a Reason Code per
    /// filter; MQTT 3.x none).
    pub async fn unsubscribe(&self, filter: &str) -> Result<UnsubAck, ClientError> {
        let filter = TopicFilter::new(filter)?;
        self.unsubscribe_with(vec![filter], Properties::new()).await
    }

    /// Unsubscribes from several filters, with UNSUBSCRIBE properties (User Properties).
    pub async fn unsubscribe_with(
        &self,
        filters: Vec<TopicFilter>,
        properties: Properties,
    ) -> Result<UnsubAck, ClientError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Unsubscribe {
            filters,
            properties,
            reply,
        })
        .await?;
        rx.await.unwrap_or(Err(ClientError::Disconnected))
    }

    /// Sends a request and waits for its response (MQTT 5 request/response, §4.10).
    ///
    /// Subscribes to `response_topic` (once: later requests reuse the subscription), publishes
    /// `payload` to `topic` at QoS 1 with that Response Topic and fresh Correlation Data, and
    /// returns the first message carrying the same Correlation Data. `timeout` bounds the
    /// whole exchange. Use a response topic only this client subscribes to.
    pub async fn request(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        response_topic: &str,
        timeout: Duration,
    ) -> Result<Message, ClientError> {
        let request = Message::new(TopicName::new(topic)?, payload).with_qos(QoS::AtLeastOnce);
        self.request_with(request, TopicName::new(response_topic)?, timeout)
            .await
    }

    /// [`request`](Client::request) with a prepared message (its QoS, used for the response
    /// subscription too, and properties such as Message Expiry Interval or User Properties).
    /// Response Topic and Correlation Data are set by this call.
    pub async fn request_with(
        &self,
        mut request: Message,
        response_topic: TopicName,
        timeout: Duration,
    ) -> Result<Message, ClientError> {
        if !self.version.is_v5() {
            return Err(ClientError::RequiresV5("request/response"));
        }
        let correlation = crate::util::correlation_data();
        request
            .properties
            .set(Property::ResponseTopic(response_topic.clone()));
        request
            .properties
            .set(Property::CorrelationData(correlation.clone()));
        let exchange = async {
            let (ready, ready_rx) = oneshot::channel();
            let (response, response_rx) = oneshot::channel();
            self.send(Command::Request {
                response_topic: TopicFilter::new(response_topic.into_bytestring())?,
                qos: request.qos,
                correlation,
                response,
                ready,
            })
            .await?;
            ready_rx.await.unwrap_or(Err(ClientError::Disconnected))?;
            self.publish_message(request).await?;
            response_rx.await.map_err(|_| ClientError::Disconnected)
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| ClientError::Timeout {
                what: "request",
                after: timeout,
            })?
    }

    /// Answers a request received as `request`: publishes `payload` to its Response Topic with
    /// its Correlation Data, at the request's QoS. Fails with [`ClientError::RequiresV5`] if
    /// the request carries no Response Topic (MQTT 3.x messages never do).
    pub async fn respond(
        &self,
        request: &Message,
        payload: impl Into<Bytes>,
    ) -> Result<PublishOutcome, ClientError> {
        let topic = request
            .response_topic()
            .cloned()
            .ok_or(ClientError::RequiresV5("a response topic in the request"))?;
        let mut response = Message::new(topic, payload).with_qos(request.qos);
        if let Some(data) = request.correlation_data() {
            response
                .properties
                .push(Property::CorrelationData(data.clone()));
        }
        self.publish_message(response).await
    }

    /// Sends DISCONNECT (Normal disconnection) after whatever is already queued for writing,
    /// closes the connection and stops the client. The will is not published. Operations still
    /// waiting fail with [`ClientError::Disconnected`].
    pub async fn disconnect(&self) -> Result<(), ClientError> {
        self.disconnect_with(ReasonCode::NORMAL_DISCONNECTION, Properties::new())
            .await
    }

    /// [`disconnect`](Client::disconnect) with a Reason Code (MQTT 5; for example 0x04
    /// Disconnect with Will Message) and properties (Session Expiry Interval, Reason String,
    /// User Properties).
    pub async fn disconnect_with(
        &self,
        reason_code: ReasonCode,
        properties: Properties,
    ) -> Result<(), ClientError> {
        let (reply, rx) = oneshot::channel();
        let disconnect = Disconnect {
            reason_code,
            properties,
        };
        if self
            .commands
            .send(Command::Disconnect { disconnect, reply })
            .await
            .is_err()
        {
            // Already stopped: nothing left to do.
            return Ok(());
        }
        rx.await.unwrap_or(Ok(()))
    }

    /// The CONNACK of the current (or, while reconnecting, the last) connection.
    pub fn connack(&self) -> ConnAck {
        self.status.borrow().connack.clone()
    }

    /// Whether a connection is established now.
    pub fn is_connected(&self) -> bool {
        self.status.borrow().connected
    }

    /// The Client Identifier in use: the configured one, or the one the server assigned
    /// (MQTT 5 Assigned Client Identifier).
    pub fn client_id(&self) -> ByteString {
        self.status.borrow().client_id.clone()
    }

    /// The Keep Alive in force, in seconds (the Server Keep Alive if the server sent one).
    pub fn keep_alive(&self) -> u16 {
        self.status.borrow().keep_alive
    }

    /// The protocol version this client speaks.
    pub fn protocol_version(&self) -> ProtocolVersion {
        self.version
    }

    /// Waits until a connection is established (returns at once if it is). Fails with
    /// [`ClientError::Disconnected`] if the client stops first.
    pub async fn wait_connected(&self) -> Result<(), ClientError> {
        let mut status = self.status.clone();
        status
            .wait_for(|s| s.connected)
            .await
            .map(|_| ())
            .map_err(|_| ClientError::Disconnected)
    }

    async fn send(&self, command: Command) -> Result<(), ClientError> {
        self.commands
            .send(command)
            .await
            .map_err(|_| ClientError::Disconnected)
    }
}

/// Resolves when a publish started with [`Client::publish_nowait`] completes (see
/// [`Client::publish`] for what "completes" means at each QoS). Dropping it does not cancel
/// the publish.
#[derive(Debug)]
#[must_use = "a PublishHandle does nothing unless awaited; drop it explicitly to ignore the outcome"]
pub struct PublishHandle {
    rx: oneshot::Receiver<Result<PublishOutcome, ClientError>>,
}

impl Future for PublishHandle {
    type Output = Result<PublishOutcome, ClientError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(ClientError::Disconnected)))
    }
}
