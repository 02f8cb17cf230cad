//! AUTH (MQTT 5.0 §3.15): extended authentication exchanges.

use crate::property::Properties;
use crate::reason::ReasonCode;

/// AUTH: one step of an extended authentication exchange or a re-authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    /// Success (0x00), Continue authentication (0x18) or Re-authenticate (0x19).
    pub reason_code: ReasonCode,
    /// Properties: Authentication Method, Authentication Data, Reason String, User Property.
    pub properties: Properties,
}

impl Auth {
    /// An AUTH with the given reason and no properties.
    pub fn new(reason_code: ReasonCode) -> Auth {
        Auth {
            reason_code,
            properties: Properties::new(),
        }
    }
}
