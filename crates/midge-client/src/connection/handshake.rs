//! Opening a connection: transport, CONNECT, CONNACK.

use std::sync::Arc;

use bytes::BytesMut;
use midge_proto::{
    ByteString, ConnAck, Connect, Decoder, PROTOCOL_MAX_PACKET_SIZE, Packet, Properties, ReasonCode,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::ClientError;
use crate::options::{ConnectOptions, PacketDirection};
use crate::transport::BoxStream;

/// A connection whose CONNACK accepted us.
pub(crate) struct Established {
    pub(crate) stream: BoxStream,
    /// Bytes read after the CONNACK (the server may send packets right behind it).
    pub(crate) leftover: BytesMut,
    pub(crate) connack: ConnAck,
}

impl std::fmt::Debug for Established {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Established")
            .field("leftover", &self.leftover.len())
            .field("connack", &self.connack)
            .finish_non_exhaustive()
    }
}

/// The largest packet we accept: our CONNECT's Maximum Packet Size, else the protocol's.
pub(crate) fn our_max_packet_size(options: &ConnectOptions) -> u32 {
    if options.version.is_v5() {
        options
            .properties
            .maximum_packet_size()
            .unwrap_or(PROTOCOL_MAX_PACKET_SIZE)
    } else {
        PROTOCOL_MAX_PACKET_SIZE
    }
}

/// Opens the transport, sends CONNECT and waits for CONNACK, all within the connect timeout.
pub(crate) async fn establish(
    options: Arc<ConnectOptions>,
    client_id: ByteString,
    clean_start: bool,
) -> Result<Established, ClientError> {
    let after = options.connect_timeout;
    tokio::time::timeout(after, handshake(&options, client_id, clean_start))
        .await
        .map_err(|_| ClientError::Timeout {
            what: "connect",
            after,
        })?
}

async fn handshake(
    options: &ConnectOptions,
    client_id: ByteString,
    clean_start: bool,
) -> Result<Established, ClientError> {
    let version = options.version;
    let mut stream = options.transport.connect().await?;
    let connect = Connect {
        protocol_version: version,
        bridge: false,
        clean_start,
        keep_alive: options.keep_alive,
        properties: if version.is_v5() {
            options.properties.clone()
        } else {
            Properties::new()
        },
        client_id,
        will: options.will.clone(),
        username: options.username.clone(),
        password: options.password.clone(),
    };
    let packet = Packet::from(connect);
    let bytes = packet.to_bytes(version)?;
    if let Some(observer) = &options.observer {
        observer.observe(PacketDirection::Sent, &packet);
    }
    stream.write_all(&bytes).await?;
    stream.flush().await?;

    let mut decoder = Decoder::with_version(version, our_max_packet_size(options));
    let mut buf = BytesMut::with_capacity(1024);
    loop {
        if let Some(packet) = decoder.decode(&mut buf)? {
            if let Some(observer) = &options.observer {
                observer.observe(PacketDirection::Received, &packet);
            }
            return match packet {
                Packet::ConnAck(connack) if connack.reason_code.is_error() => {
                    Err(ClientError::Refused {
                        reason_code: connack.reason_code,
                        connack: Box::new(connack),
                    })
                }
                Packet::ConnAck(connack) => Ok(Established {
                    stream,
                    leftover: buf,
                    connack,
                }),
                Packet::Auth(_) => Err(ClientError::Unsupported(
                    "extended authentication (AUTH exchange)",
                )),
                other => Err(ClientError::protocol(
                    ReasonCode::PROTOCOL_ERROR,
                    format!("expected CONNACK, got {}", other.packet_type()),
                )),
            };
        }
        if stream.read_buf(&mut buf).await? == 0 {
            return Err(ClientError::ConnectionClosed);
        }
    }
}
