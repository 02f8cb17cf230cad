//! The authenticator hook: decides on CONNECT and drives MQTT 5 enhanced authentication
//! (AUTH packets, §4.12). Password files, ACLs and SCRAM plug in here in their own issue.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

use bytes::Bytes;
use midge_proto::ReasonCode;

/// A boxed future, so authenticators can be trait objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a client presented.
#[derive(Debug, Clone)]
pub struct AuthRequest<'a> {
    /// The client identifier (assigned one included).
    pub client_id: &'a str,
    /// User Name, if sent.
    pub username: Option<&'a str>,
    /// Password, if sent.
    pub password: Option<&'a [u8]>,
    /// Authentication Method (MQTT 5 enhanced authentication), if sent.
    pub method: Option<&'a str>,
    /// Authentication Data, if sent.
    pub data: Option<&'a [u8]>,
    /// The client's address.
    pub peer: SocketAddr,
}

/// An authenticator's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthDecision {
    /// Accept; `data` is returned to the client as Authentication Data, if any.
    Allow {
        /// Final Authentication Data for the client (e.g. a SCRAM server signature).
        data: Option<Bytes>,
    },
    /// Refuse with this reason code (CONNACK, or DISCONNECT during re-authentication).
    Deny(ReasonCode),
    /// Send AUTH with Continue authentication (0x18) carrying `data`, and wait for the
    /// client's next AUTH.
    Continue {
        /// Authentication Data of the challenge.
        data: Bytes,
    },
}

/// Decides who may connect. Implementations must not block: hashing and I/O belong on a
/// worker (`tokio::task::spawn_blocking`) behind the returned future.
pub trait Authenticator: Send + Sync + fmt::Debug {
    /// First step: CONNECT (or AUTH with Re-authenticate, 0x19).
    fn authenticate<'a>(&'a self, request: AuthRequest<'a>) -> BoxFuture<'a, AuthDecision>;

    /// A further step of an enhanced authentication exchange: the client's AUTH with
    /// Continue authentication.
    fn continue_auth<'a>(
        &'a self,
        client_id: &'a str,
        method: &'a str,
        data: Option<&'a [u8]>,
    ) -> BoxFuture<'a, AuthDecision>;
}

/// The default: every client may connect; no enhanced authentication method is supported,
/// so a CONNECT naming one is refused with Bad authentication method (0x8C).
#[derive(Debug, Default, Clone, Copy)]
pub struct AllowAnonymous;

impl Authenticator for AllowAnonymous {
    fn authenticate<'a>(&'a self, request: AuthRequest<'a>) -> BoxFuture<'a, AuthDecision> {
        let decision = if request.method.is_some() {
            AuthDecision::Deny(ReasonCode::BAD_AUTHENTICATION_METHOD)
        } else {
            AuthDecision::Allow { data: None }
        };
        Box::pin(async move { decision })
    }

    fn continue_auth<'a>(
        &'a self,
        _client_id: &'a str,
        _method: &'a str,
        _data: Option<&'a [u8]>,
    ) -> BoxFuture<'a, AuthDecision> {
        Box::pin(async { AuthDecision::Deny(ReasonCode::BAD_AUTHENTICATION_METHOD) })
    }
}
