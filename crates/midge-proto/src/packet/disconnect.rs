//! DISCONNECT (MQTT 5.0 §3.14).

use crate::property::Properties;
use crate::reason::ReasonCode;

/// DISCONNECT, sent by either side in MQTT 5 and by the client in MQTT 3.x (where it has no
/// body, so it decodes as Normal disconnection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disconnect {
    /// Disconnect Reason Code.
    pub reason_code: ReasonCode,
    /// Properties (MQTT 5).
    pub properties: Properties,
}

impl Disconnect {
    /// A DISCONNECT with the given reason and no properties.
    pub fn new(reason_code: ReasonCode) -> Disconnect {
        Disconnect {
            reason_code,
            properties: Properties::new(),
        }
    }
}

impl Default for Disconnect {
    fn default() -> Self {
        Disconnect::new(ReasonCode::NORMAL_DISCONNECTION)
    }
}
