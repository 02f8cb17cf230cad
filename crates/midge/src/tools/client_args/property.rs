//! `-D COMMAND NAME [KEY] VALUE`: MQTT 5 properties from the command line, with
//! libmosquitto's names (case-insensitive), types, checks and messages.

use bytes::Bytes;
use midge_client::{ByteString, Property, TopicName};

use super::Config;
use super::c_text::{atol, valid_utf8};
use super::flags::text;

/// `-D COMMAND ...`: which packet a property goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PropCommand {
    Connect,
    ConnAck,
    Publish,
    PubAck,
    PubRec,
    PubRel,
    PubComp,
    Subscribe,
    SubAck,
    Unsubscribe,
    UnsubAck,
    Disconnect,
    Auth,
    Will,
}

impl PropCommand {
    fn parse(name: &[u8]) -> Option<PropCommand> {
        use PropCommand::*;
        const NAMES: [(&str, PropCommand); 14] = [
            ("connect", Connect),
            ("connack", ConnAck),
            ("publish", Publish),
            ("puback", PubAck),
            ("pubrec", PubRec),
            ("pubrel", PubRel),
            ("pubcomp", PubComp),
            ("subscribe", Subscribe),
            ("suback", SubAck),
            ("unsubscribe", Unsubscribe),
            ("unsuback", UnsubAck),
            ("disconnect", Disconnect),
            ("auth", Auth),
            ("will", Will),
        ];
        NAMES
            .iter()
            .find(|(n, _)| n.as_bytes().eq_ignore_ascii_case(name))
            .map(|(_, c)| *c)
    }
}

/// The C type libmosquitto gives a property (its number is in "Error adding property").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PropType {
    Byte = 1,
    Int16 = 2,
    Int32 = 3,
    VarInt = 4,
    Binary = 5,
    String = 6,
    StringPair = 7,
}

/// Every property name `-D` knows: name, identifier, type.
const PROPERTY_NAMES: [(&str, u8, PropType); 27] = [
    ("payload-format-indicator", 0x01, PropType::Byte),
    ("message-expiry-interval", 0x02, PropType::Int32),
    ("content-type", 0x03, PropType::String),
    ("response-topic", 0x08, PropType::String),
    ("correlation-data", 0x09, PropType::Binary),
    ("subscription-identifier", 0x0B, PropType::VarInt),
    ("session-expiry-interval", 0x11, PropType::Int32),
    ("assigned-client-identifier", 0x12, PropType::String),
    ("server-keep-alive", 0x13, PropType::Int16),
    ("authentication-method", 0x15, PropType::String),
    ("authentication-data", 0x16, PropType::Binary),
    ("request-problem-information", 0x17, PropType::Byte),
    ("will-delay-interval", 0x18, PropType::Int32),
    ("request-response-information", 0x19, PropType::Byte),
    ("response-information", 0x1A, PropType::String),
    ("server-reference", 0x1C, PropType::String),
    ("reason-string", 0x1F, PropType::String),
    ("receive-maximum", 0x21, PropType::Int16),
    ("topic-alias-maximum", 0x22, PropType::Int16),
    ("topic-alias", 0x23, PropType::Int16),
    ("maximum-qos", 0x24, PropType::Byte),
    ("retain-available", 0x25, PropType::Byte),
    ("user-property", 0x26, PropType::StringPair),
    ("maximum-packet-size", 0x27, PropType::Int32),
    ("wildcard-subscription-available", 0x28, PropType::Byte),
    ("subscription-identifier-available", 0x29, PropType::Byte),
    ("shared-subscription-available", 0x2A, PropType::Byte),
];

/// libmosquitto's `mosquitto_property_check_command`: may property `id` go on `command`?
fn allowed(command: PropCommand, id: u8) -> bool {
    use PropCommand::*;
    match id {
        0x01 | 0x02 | 0x03 | 0x08 | 0x09 => matches!(command, Publish | Will),
        0x0B => matches!(command, Publish | Subscribe),
        0x11 => matches!(command, Connect | ConnAck | Disconnect),
        0x15 | 0x16 => matches!(command, Connect | ConnAck | Auth),
        0x12 | 0x13 | 0x1A | 0x24 | 0x25 | 0x28 | 0x29 | 0x2A => command == ConnAck,
        0x18 => command == Will,
        0x17 | 0x19 => command == Connect,
        0x1C => matches!(command, ConnAck | Disconnect),
        0x1F => !matches!(command, Connect | Publish | Subscribe | Unsubscribe),
        0x21 | 0x22 | 0x27 => matches!(command, Connect | ConnAck),
        0x23 => command == Publish,
        0x26 => true,
        _ => false,
    }
}

/// `-D COMMAND NAME [KEY] VALUE`, starting at `args[i]` (the command). Returns the index of
/// the last argument used.
pub(super) fn parse_property(c: &mut Config, args: &[Vec<u8>], i: usize) -> Result<usize, String> {
    const NOT_ENOUGH: &str =
        "Error: --property argument given but not enough arguments specified.\n\n";
    // The command, the name and a value must follow.
    if i + 2 >= args.len() {
        return Err(NOT_ENOUGH.into());
    }
    let cmd_name = &args[i];
    let command = PropCommand::parse(cmd_name)
        .ok_or_else(|| "Error: Invalid command given in --property argument.\n\n".to_owned())?;
    let prop_name = &args[i + 1];
    let (_, id, kind) = PROPERTY_NAMES
        .iter()
        .find(|(n, _, _)| n.as_bytes().eq_ignore_ascii_case(prop_name))
        .copied()
        .ok_or_else(|| {
            "Error: Invalid property name given in --property argument.\n\n".to_owned()
        })?;
    let (pn, cn) = (text(prop_name), text(cmd_name));
    if !allowed(command, id) {
        return Err(format!(
            "Error: {pn} property not allowed for {cn} in --property argument.\n\n"
        ));
    }
    let (key, value, last) = if kind == PropType::StringPair {
        // A user property has a key and a value.
        if i + 3 >= args.len() {
            return Err(NOT_ENOUGH.into());
        }
        (Some(&args[i + 2]), &args[i + 3], i + 3)
    } else {
        (None, &args[i + 2], i + 2)
    };
    let not_supported =
        || format!("Error: {pn} property not supported for {cn} in --property argument.\n\n");
    use PropCommand::*;
    match command {
        Publish if id == 0x0B => return Err(not_supported()),
        Publish if id == 0x23 => c.have_topic_alias = true,
        Connect | Publish | Subscribe | Unsubscribe | Disconnect | Will => {}
        Auth | PubAck | PubRec | PubRel | PubComp | SubAck | UnsubAck => {
            return Err(not_supported());
        }
        // libmosquitto refuses these without a word.
        ConnAck => return Err(String::new()),
    }
    let out_of_range =
        |n: i64| format!("Error: Property value ({n}) out of range for property {pn}.\n\n");
    let adding = || format!("Error adding property {pn} {}\n", kind as u8);
    let property = match kind {
        PropType::Byte => {
            let n = atol(value);
            if !(0..=255).contains(&n) {
                return Err(out_of_range(n));
            }
            // Midge's codec holds these as flags: a value other than 0 or 1 is a protocol
            // error that the broker would answer by closing the connection.
            if n > 1 {
                return Err(out_of_range(n));
            }
            let b = n == 1;
            match id {
                0x01 => Property::PayloadFormatIndicator(b),
                0x17 => Property::RequestProblemInformation(b),
                _ => Property::RequestResponseInformation(b),
            }
        }
        PropType::Int16 => {
            let n = atol(value);
            if !(0..=65535).contains(&n) {
                return Err(out_of_range(n));
            }
            let n = n as u16;
            match id {
                0x13 => Property::ServerKeepAlive(n),
                0x21 => Property::ReceiveMaximum(n),
                0x22 => Property::TopicAliasMaximum(n),
                _ => Property::TopicAlias(n),
            }
        }
        PropType::Int32 | PropType::VarInt => {
            let n = atol(value);
            if !(0..=i64::from(u32::MAX)).contains(&n) {
                return Err(out_of_range(n));
            }
            let n = n as u32;
            match id {
                0x02 => Property::MessageExpiryInterval(n),
                0x0B => {
                    if !(1..=268_435_455).contains(&n) {
                        return Err(adding());
                    }
                    Property::SubscriptionIdentifier(n)
                }
                0x11 => Property::SessionExpiryInterval(n),
                0x18 => Property::WillDelayInterval(n),
                _ => Property::MaximumPacketSize(n),
            }
        }
        PropType::Binary => {
            if value.len() > 65535 {
                return Err(format!(
                    "Error: Property value too long for property {pn}.\n\n"
                ));
            }
            let data = Bytes::from(value.clone());
            match id {
                0x09 => Property::CorrelationData(data),
                _ => Property::AuthenticationData(data),
            }
        }
        PropType::String => {
            if value.len() > 65535 || !valid_utf8(value) {
                return Err(adding());
            }
            let s = text(value);
            match id {
                0x03 => Property::ContentType(ByteString::from(s)),
                0x08 => Property::ResponseTopic(
                    // A topic with wildcards is sent as given by Mosquitto; Midge's codec
                    // refuses to build one.
                    TopicName::new(s).map_err(|_| adding())?,
                ),
                0x15 => Property::AuthenticationMethod(ByteString::from(s)),
                _ => Property::ReasonString(ByteString::from(s)),
            }
        }
        PropType::StringPair => {
            let key = key.map(Vec::as_slice).unwrap_or_default();
            if key.len() > 65535 || value.len() > 65535 || !valid_utf8(key) || !valid_utf8(value) {
                return Err(adding());
            }
            Property::UserProperty(ByteString::from(text(key)), ByteString::from(text(value)))
        }
    };
    let list = match command {
        Connect => &mut c.connect_props,
        Publish => &mut c.publish_props,
        Subscribe => &mut c.subscribe_props,
        Unsubscribe => &mut c.unsubscribe_props,
        Disconnect => &mut c.disconnect_props,
        _ => &mut c.will_props,
    };
    list.push(property);
    Ok(last)
}
