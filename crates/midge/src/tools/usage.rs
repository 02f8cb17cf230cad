//! `--help` and `--version` of `midge pub`, `midge sub` and `midge rr`: Mosquitto's usage
//! texts (2.0.11), with Midge's names and the options Midge adds or refuses marked.

use super::client_args::Tool;

const CONNECTION: &str = "\
 -A : bind the outgoing socket to this host/ip address. Use to control which interface
      the client communicates over.
 -c : disable clean session/enable persistent client mode
      When this argument is used, the broker will be instructed not to clean existing sessions
      for the same client id when the client connects, and sessions will never expire when the
      client disconnects. MQTT v5 clients can change their session expiry interval with the -x
      argument.
 -d : enable debug messages.
 -D : Define MQTT v5 properties: -D command identifier value, or
      -D command user-property key value. Commands: connect, publish, subscribe,
      unsubscribe, disconnect, will.
 -h : mqtt host to connect to. Defaults to localhost.
 -i : id to use for this client. Defaults to none (the broker assigns one).
 -I : define the client id as id_prefix appended with the process id. Useful for when the
      broker is using the clientid_prefixes option.
 -k : keep alive in seconds for this client. Defaults to 60.
 -L : specify user, password, hostname, port and topic as a URL in the form:
      mqtt(s)://[username[:password]@]host[:port]/topic
      ws(s)://[username[:password]@]host[:port]/topic
 -M : the maximum inflight messages for QoS 1/2.
 -o : read options from this file first (one option per line), instead of the default
      $XDG_CONFIG_HOME/midge_TOOL or ~/.config/midge_TOOL (else mosquitto_TOOL).
 -p : network port to connect to. Defaults to 1883 for plain MQTT and 8883 for MQTT over TLS.
 -P : provide a password
 -u : provide a username
 -x : Set the session-expiry-interval property on the CONNECT packet. Applies to MQTT v5
      clients only. Set to 0-4294967294 to specify the session will expire in that many
      seconds after the client disconnects, or use -1, 4294967295, or ∞ for a session
      that does not expire. Defaults to -1 if -c is also given, or 0 if -c not given.
 --help : display this message.
 --nodelay : disable Nagle's algorithm, to reduce socket sending latency at the possible
             expense of more packets being sent.
 --quiet : don't print error messages.
 --unix : connect to a broker through a unix domain socket instead of a TCP socket,
          e.g. /tmp/mosquitto.sock
 --version : print the version.
 --will-payload : payload for the client Will, which is sent by the broker in case of
                  unexpected disconnection. If not given and will-topic is set, a zero
                  length message will be sent.
 --will-qos : QoS level for the client Will.
 --will-retain : if given, make the client Will retained.
 --will-topic : the topic on which to publish the client Will.

Accepted, but refused until Midge's clients have TLS and WebSocket transports (issue 7):
 --cafile, --capath, --cert, --key, --keyform, --ciphers, --tls-version, --tls-alpn,
 --tls-engine, --tls-engine-kpass-sha1, --tls-use-os-certs, --tls-keylog, --insecure,
 --psk, --psk-identity, mqtts:// and wss:// URLs, port 8883 (TLS, unless --no-tls),
 --ws and ws:// URLs. Not supported: --proxy (SOCKS5), -S (DNS SRV).
";

const OUTPUT: &str = "\
 -F : output format: %t topic, %p payload, %x/%X payload in hex, %l length, %m message id,
      %q QoS, %r retain, %I ISO-8601 time, %U Unix time, %j/%J JSON, %A %C %D %E %F %P %R %S
      MQTT v5 properties, @ strftime conversions, \\ escapes; flags 0, -, width, .precision.
 -N : do not add an end of line character when printing the payload.
 -R : do not print stale messages (those with retain set).
 -v : print published messages verbosely.
 -V : specify the version of the MQTT protocol to use when connecting.
      Can be mqttv5, mqttv311 or mqttv31 (or 5, 311, 31).
 -W : Specifies a timeout in seconds; the tool exits with status 27 when it runs out.
 --pretty : print formatted output rather than minimised output when using the
            JSON output format option.
 --retain-as-published : MQTT v5: keep the retain flag of messages as published.
 --retain-handling : MQTT v5: always, new or never send retained messages on subscribing.
";

/// The usage text of `tool`.
pub(crate) fn usage(tool: Tool) -> String {
    let version = env!("CARGO_PKG_VERSION");
    match tool {
        Tool::Pub => format!(
            "midge pub is a simple mqtt client that will publish a message on a single topic and exit.
midge pub version {version} (mosquitto_pub 2.0.11 compatible).

Usage: midge pub {{[-h host] [--unix path] [-p port] [-u username] [-P password] -t topic | -L URL}}
                 {{-f file | -l | -n | -m message | -s}}
                 [-c] [-k keepalive] [-q qos] [-r] [--repeat N] [--repeat-delay time] [-x session-expiry]
                 [-A bind_address] [--nodelay]
                 [-i id] [-I id_prefix]
                 [-d] [--quiet]
                 [-M max_inflight]
                 [-u username [-P password]]
                 [--will-topic [--will-payload payload] [--will-qos qos] [--will-retain]]
                 [-D command identifier value] [-o options-file]
       midge pub --help

 -f : send the contents of a file as the message.
 -l : read messages from stdin, sending a separate message for each line.
 -m : message payload to send.
 -n : send a null (zero length) message.
 -q : quality of service level to use for all messages. Defaults to 0.
 -r : message should be retained.
 -s : read message from stdin, sending the entire input as a message.
 -t : mqtt topic to publish to.
 -V : specify the version of the MQTT protocol to use when connecting.
      Can be mqttv5, mqttv311 or mqttv31. Defaults to mqttv311.
 --repeat : if publish mode is -f, -m, or -s, then repeat the publish N times.
 --repeat-delay : if using --repeat, wait time seconds between publishes. Defaults to 0.
{CONNECTION}
See https://mosquitto.org/man/mosquitto_pub-1.html: midge pub takes the same options.
"
        ),
        Tool::Sub => format!(
            "midge sub is a simple mqtt client that will subscribe to a set of topics and print all messages it receives.
midge sub version {version} (mosquitto_sub 2.0.11 compatible).

Usage: midge sub {{[-h host] [--unix path] [-p port] [-u username] [-P password] -t topic | -L URL [-t topic]}}
                 [-c] [-k keepalive] [-q qos] [-x session-expiry-interval]
                 [-C msg_count] [-E] [-R] [--retained-only] [--remove-retained] [-T filter_out] [-U topic ...]
                 [-F format] [--pretty]
                 [-W timeout_secs]
                 [-A bind_address] [--nodelay]
                 [-i id] [-I id_prefix]
                 [-d] [-N] [--quiet] [-v]
                 [--will-topic [--will-payload payload] [--will-qos qos] [--will-retain]]
                 [-D command identifier value] [-o options-file]
       midge sub --help

 -C : disconnect and exit after receiving the 'msg_count' messages.
 -E : Exit once all subscriptions have been acknowledged by the broker.
 -q : quality of service level to use for the subscription. Defaults to 0.
 -t : mqtt topic to subscribe to. May be repeated multiple times.
 -T : topic string to filter out of results. May be repeated.
 -U : unsubscribe from a topic. May be repeated.
 --random-filter : only print a percentage of received messages. Set to 100 to have all
                   messages printed, 50.0 to have half of the messages received on average
                   printed, and so on.
 --retained-only : only handle messages with the retained flag set, and exit when the
                   first non-retained message is received.
 --remove-retained : send a message to the server to clear any received retained messages
                     Use -T to filter out messages you do not want to be cleared.
{OUTPUT}{CONNECTION}
See https://mosquitto.org/man/mosquitto_sub-1.html: midge sub takes the same options.
"
        ),
        Tool::Rr => format!(
            "midge rr is an mqtt client that can be used to publish a request message and wait for a response.
         Defaults to MQTT v5, where the Request-Response feature will be used, but v3.1.1 can also be used
         with v3.1.1 brokers.
midge rr version {version} (mosquitto_rr 2.0.11 compatible).

Usage: midge rr {{[-h host] [--unix path] [-p port] [-u username] [-P password] -t topic | -L URL}} -e response-topic
                {{-f file | -n | -m message | -s}}
                [-c] [-k keepalive] [-q qos] [-R] [-x session-expiry-interval]
                [-F format] [--pretty] [--latency]
                [-W timeout_secs]
                [-A bind_address] [--nodelay]
                [-i id] [-I id_prefix]
                [-d] [-N] [--quiet] [-v]
                [--will-topic [--will-payload payload] [--will-qos qos] [--will-retain]]
                [-D command identifier value] [-o options-file]
       midge rr --help

 -e : Response topic. The client will subscribe to this topic to wait for a response.
 -f : send the contents of a file as the request.
 -m : request payload to send.
 -n : send a null (zero length) request.
 -q : quality of service level to use for communications. Defaults to 0.
 -s : read the request from stdin, sending the entire input as a message.
 -t : topic where the request message will be sent.
 --latency : print the time from request to response (turns on --nodelay).
{OUTPUT}{CONNECTION}
See https://mosquitto.org/man/mosquitto_rr-1.html: midge rr takes the same options
(-V defaults to 5 for midge rr).
"
        ),
    }
}

/// The `--version` line.
pub(crate) fn version(tool: Tool) -> String {
    let mosquitto = match tool {
        Tool::Pub => "mosquitto_pub",
        Tool::Sub => "mosquitto_sub",
        Tool::Rr => "mosquitto_rr",
    };
    format!(
        "{} version {} ({mosquitto} 2.0.11 compatible).\n",
        tool.name(),
        env!("CARGO_PKG_VERSION")
    )
}
