//! Transports: how the client opens a byte stream to the server.
//!
//! The connection task needs nothing but an [`AsyncStream`]: a tokio `AsyncRead + AsyncWrite`
//! byte stream. [`TransportConfig`] says how to open one. TCP and unix sockets are built in;
//! other transports (TLS and WebSocket live in `midge-net`, with their own issue) plug in
//! through [`TransportConfig::Custom`] with an implementation of [`Connector`], without any
//! change to this crate.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
#[cfg(unix)]
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpSocket, TcpStream};

/// A byte stream the client can speak MQTT over.
///
/// Implemented for every `AsyncRead + AsyncWrite + Send + Unpin + 'static` type, such as
/// [`tokio::net::TcpStream`], [`tokio::net::UnixStream`] or a TLS stream wrapping one.
pub trait AsyncStream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> AsyncStream for T {}

/// A boxed [`AsyncStream`], as returned by a [`Connector`].
pub type BoxStream = Box<dyn AsyncStream>;

/// The future a [`Connector`] returns.
pub type ConnectFuture<'a> = Pin<Box<dyn Future<Output = io::Result<BoxStream>> + Send + 'a>>;

/// Opens a new byte stream to the server; called for the first connection and for every
/// reconnection.
///
/// This is the extension point for transports this crate does not build in. A TLS connector,
/// for example, opens a TCP stream, runs the handshake and returns the encrypted stream:
///
/// ```
/// use midge_client::{BoxStream, ConnectFuture, Connector};
///
/// #[derive(Debug)]
/// struct Loopback(u16);
///
/// impl Connector for Loopback {
///     fn connect(&self) -> ConnectFuture<'_> {
///         Box::pin(async move {
///             let tcp = tokio::net::TcpStream::connect(("127.0.0.1", self.0)).await?;
///             // A TLS connector would wrap `tcp` here.
///             Ok(Box::new(tcp) as BoxStream)
///         })
///     }
/// }
/// ```
pub trait Connector: fmt::Debug + Send + Sync + 'static {
    /// Opens one connection.
    fn connect(&self) -> ConnectFuture<'_>;
}

/// Where and how to connect.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum TransportConfig {
    /// Plain TCP.
    Tcp {
        /// Host name or IP address; names are resolved on every (re)connection and each
        /// address is tried in turn.
        host: String,
        /// Port, 1883 for plain MQTT.
        port: u16,
        /// Local address to connect from (Mosquitto's `--bind-address`); only server
        /// addresses of the same family are tried.
        bind_address: Option<IpAddr>,
        /// Set `TCP_NODELAY`, so that small packets are not held back by Nagle's algorithm.
        /// The client already writes many packets per system call.
        nodelay: bool,
    },
    /// A unix domain socket at this path.
    #[cfg(unix)]
    Unix(PathBuf),
    /// Any other transport (TLS, WebSocket, an in-memory pipe in a test, …).
    Custom(Arc<dyn Connector>),
}

impl TransportConfig {
    /// TCP to `host:port` with `TCP_NODELAY` and no bind address.
    pub fn tcp(host: impl Into<String>, port: u16) -> TransportConfig {
        TransportConfig::Tcp {
            host: host.into(),
            port,
            bind_address: None,
            nodelay: true,
        }
    }

    /// Opens a stream.
    pub async fn connect(&self) -> io::Result<BoxStream> {
        match self {
            TransportConfig::Tcp {
                host,
                port,
                bind_address,
                nodelay,
            } => {
                let stream = connect_tcp(host, *port, *bind_address).await?;
                stream.set_nodelay(*nodelay)?;
                Ok(Box::new(stream))
            }
            #[cfg(unix)]
            TransportConfig::Unix(path) => {
                Ok(Box::new(tokio::net::UnixStream::connect(path).await?))
            }
            TransportConfig::Custom(connector) => connector.connect().await,
        }
    }
}

impl fmt::Display for TransportConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportConfig::Tcp { host, port, .. } => write!(f, "tcp://{host}:{port}"),
            #[cfg(unix)]
            TransportConfig::Unix(path) => write!(f, "unix://{}", path.display()),
            TransportConfig::Custom(c) => write!(f, "{c:?}"),
        }
    }
}

async fn connect_tcp(host: &str, port: u16, bind: Option<IpAddr>) -> io::Result<TcpStream> {
    let mut last_error = None;
    for addr in tokio::net::lookup_host((host, port)).await? {
        let attempt = match bind {
            None => TcpStream::connect(addr).await,
            Some(ip) if ip.is_ipv4() != addr.is_ipv4() => continue,
            Some(ip) => connect_from(ip, addr).await,
        };
        match attempt {
            Ok(stream) => return Ok(stream),
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("{host}:{port} resolves to no usable address"),
        )
    }))
}

async fn connect_from(local: IpAddr, remote: SocketAddr) -> io::Result<TcpStream> {
    let socket = if remote.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.bind(SocketAddr::new(local, 0))?;
    socket.connect(remote).await
}
