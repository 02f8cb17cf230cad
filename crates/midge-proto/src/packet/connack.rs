//! CONNACK (MQTT 5.0 §3.2, MQTT 3.1.1 §3.2).

use crate::property::Properties;
use crate::reason::ReasonCode;

/// The server's answer to CONNECT.
///
/// MQTT 3.x return codes are carried as their MQTT 5 equivalents (see
/// [`ReasonCode::to_v3_connack`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnAck {
    /// Session Present.
    pub session_present: bool,
    /// Connect Reason Code.
    pub reason_code: ReasonCode,
    /// CONNACK properties (MQTT 5).
    pub properties: Properties,
}

impl ConnAck {
    /// A CONNACK with the given reason and no properties.
    pub fn new(reason_code: ReasonCode, session_present: bool) -> ConnAck {
        ConnAck {
            session_present,
            reason_code,
            properties: Properties::new(),
        }
    }
}
