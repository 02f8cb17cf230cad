//! `midge bench`: an MQTT load generator for any broker, in the spirit of emqtt-bench and
//! `mqttx bench`.
//!
//! Every message carries (publisher, topic, sequence number, send time) in the first 24
//! bytes of its payload, so each run counts what was lost, duplicated or reordered on every
//! publisher→subscriber stream, and measures end-to-end latency on one clock. Publishers keep
//! at most `--window` deliveries outstanding end to end, so a run measures sustainable
//! throughput with bounded queues rather than how much a broker can buffer.
//!
//! Layout:
//! | module | what |
//! |---|---|
//! | `fanin`, `fanout`, `pairs`, `latency`, `conns`, `wildcard` | one [`plan::Plan`] per scenario |
//! | `plan` | the plan, the settings, the state tasks share |
//! | `engine` | the coordinator: setup, phases, drain, accounting |
//! | `publisher`, `subscriber` | the connection tasks |
//! | `conn` | raw MQTT over TCP with `midge-proto`; in-place packet reading |
//! | `stats` | sequence tracking and the latency histogram |
//! | `procfs` | the broker's memory and CPU from `/proc` |
//! | `report` | the summary table and `--json` |

mod conn;
mod conns;
mod engine;
mod fanin;
mod fanout;
mod latency;
mod pairs;
mod plan;
mod procfs;
mod publisher;
mod report;
mod stats;
mod subscriber;
mod wildcard;

use std::net::ToSocketAddrs;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use clap::{ArgAction, Args, ValueEnum};
use midge_proto::{ProtocolVersion, QoS};

use plan::{Limit, Plan, Settings};

/// The longest run that can be asked for, in seconds (`-d`, and the cap on `-n` runs).
const MAX_SECS: f64 = 3600.0;

const SCENARIOS_HELP: &str = "\
Scenarios:
  fanin     -c publishers (8) -> 1 subscriber, one topic
  fanout    1 publisher -> -S subscribers (100), one topic
  pairs     -c publisher/subscriber pairs (100), each pair on its own topic
  latency   -c pairs (100) sharing a fixed total rate -r (10000 msg/s); first second is warm-up
  conns     -c idle connections (1000), each subscribed to its own topic, spread over 127.0.0.x
            source addresses; held idle -d seconds (5), then one probe message each. Reports
            the connect rate and, with --pid, the broker's memory per connection
  wildcard  -c publishers (8) over a topic tree of --width^--depth leaves (4^5 = 1024) ->
            -S subscribers (200) with +/# filters, each matching 1/16 of the leaves

Every run counts, over every publisher->subscriber stream: messages received, lost
(published but never delivered, after a drain that ends when everything arrived or nothing
arrived for --drain seconds), duplicated and out of order. Rates are measured between the end
of the warm-up and the end of publishing; latency is receive time minus the send time in the
payload (same host clock) for messages sent after the warm-up. At full speed it is mostly
queueing delay (bounded by --window); use the latency scenario for the broker's own delay.

Publishers keep at most --window deliveries (messages x subscribers reached) outstanding end
to end; if no delivery arrives for a second while they wait, half a window is written off and
counted as a stall (the broker is dropping messages).

Runs are bounded: publishing stops after -d seconds (default 10, at most 3600) or -n messages
(and at most 3600 s), then the drain lasts at most 60 s. Each connection needs one file
descriptor: raise `ulimit -n` (soft limit, up to the hard limit) for large conns runs.
Only point it at brokers you are allowed to load.

Examples:
  midge bench fanin -q 1 -d 5
  midge bench latency -q 1 -r 10000 --pid $(pidof mosquitto)
  midge bench conns -c 10000 --pid $(pidof mosquitto) --json";

/// The scenarios.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Scenario {
    /// Many publishers to one subscriber.
    Fanin,
    /// One publisher to many subscribers.
    Fanout,
    /// Publisher/subscriber pairs on their own topics.
    Pairs,
    /// Pairs at a fixed total rate; latency percentiles.
    Latency,
    /// Many idle connections; connect rate and memory per connection.
    Conns,
    /// Publishers over a deep topic tree; subscribers with wildcard filters.
    Wildcard,
}

/// Options of `midge bench`.
#[derive(Debug, Args)]
#[command(
    disable_help_flag = true,
    about = "MQTT load generator: throughput, latency, loss, connections and memory of any broker",
    after_long_help = SCENARIOS_HELP
)]
pub(crate) struct BenchArgs {
    /// fanin, fanout, pairs, latency, conns or wildcard (see below).
    #[arg(value_enum, value_name = "SCENARIO")]
    scenario: Scenario,
    /// Broker host.
    #[arg(
        short = 'h',
        long = "host",
        value_name = "HOST",
        default_value = "127.0.0.1"
    )]
    host: String,
    /// Broker port.
    #[arg(
        short = 'p',
        long = "port",
        value_name = "PORT",
        default_value_t = 1883
    )]
    port: u16,
    /// QoS of every publish and subscription.
    #[arg(short = 'q', long = "qos", value_name = "QOS", default_value_t = 0,
          value_parser = clap::value_parser!(u8).range(0..=2))]
    qos: u8,
    /// Payload size in bytes (at least 24: the header every message carries).
    #[arg(short = 's', long = "size", value_name = "BYTES", default_value_t = 64)]
    size: usize,
    /// MQTT version: 31, 311 or 5 (also mqttv31, mqttv311, mqttv5).
    #[arg(
        short = 'V',
        long = "protocol-version",
        value_name = "VERSION",
        default_value = "311"
    )]
    version: String,
    /// Publishers (fanin, fanout, wildcard), pairs (pairs, latency) or connections (conns).
    #[arg(short = 'c', long = "clients", value_name = "N")]
    clients: Option<usize>,
    /// Subscribers (fanout, wildcard; fanin: subscribers of the one topic).
    #[arg(short = 'S', long = "subscribers", value_name = "N")]
    subscribers: Option<usize>,
    /// Seconds of publishing (conns: of holding the connections idle). Default 10 (conns 5).
    #[arg(
        short = 'd',
        long = "duration",
        value_name = "SECS",
        conflicts_with = "count"
    )]
    duration: Option<f64>,
    /// Publish this many messages in total (split over the publishers) instead of running
    /// for a duration.
    #[arg(short = 'n', long = "count", value_name = "N")]
    count: Option<u64>,
    /// Total publish rate in messages per second (default: as fast as the window allows;
    /// latency: 10000).
    #[arg(short = 'r', long = "rate", value_name = "MSGS")]
    rate: Option<f64>,
    /// Seconds at the start left out of rates and latency (default 0; latency 1).
    #[arg(long = "warmup", value_name = "SECS")]
    warmup: Option<f64>,
    /// The broker's process ID: report its memory (RSS before, after, peak; per connection
    /// for conns) and CPU.
    #[arg(long = "pid", value_name = "PID")]
    pid: Option<u32>,
    /// Print the result as one JSON object instead of the table.
    #[arg(long = "json")]
    json: bool,
    /// No progress line on stderr.
    #[arg(long = "quiet")]
    quiet: bool,
    /// Deliveries outstanding end to end at most.
    #[arg(long = "window", value_name = "N", default_value_t = 10_000)]
    window: u64,
    /// QoS 1/2 messages each publisher keeps unacknowledged at most (and at most the
    /// broker's Receive Maximum).
    #[arg(long = "inflight", value_name = "N", default_value_t = 256)]
    inflight: u16,
    /// The drain ends after this many seconds without a delivery.
    #[arg(long = "drain", value_name = "SECS", default_value_t = 1.0)]
    drain: f64,
    /// Spread connections over this many source addresses 127.0.0.1.. (loopback targets
    /// only; default 1, conns 16).
    #[arg(long = "sources", value_name = "N")]
    sources: Option<u8>,
    /// Connections handshaking at the same time. Keep it below the broker's listen backlog
    /// (Mosquitto's is 100): connection attempts beyond it are dropped and retried by TCP a
    /// second later, which then dominates the connect rate.
    #[arg(long = "concurrency", value_name = "N", default_value_t = 64)]
    concurrency: usize,
    /// Generator threads (1 leaves the other cores to the broker).
    #[arg(long = "threads", value_name = "N", default_value_t = 1)]
    threads: usize,
    /// wildcard: levels of the topic tree.
    #[arg(long = "depth", value_name = "N", default_value_t = 5)]
    depth: usize,
    /// wildcard: children of each node of the topic tree.
    #[arg(long = "width", value_name = "N", default_value_t = 4)]
    width: usize,
    /// User name.
    #[arg(short = 'u', long = "username", value_name = "USER")]
    username: Option<String>,
    /// Password.
    #[arg(short = 'P', long = "pw", value_name = "PASSWORD")]
    password: Option<String>,
    /// Keep Alive in seconds.
    #[arg(
        short = 'k',
        long = "keepalive",
        value_name = "SECS",
        default_value_t = 60
    )]
    keep_alive: u16,
    /// Seconds each connection step (TCP, CONNACK, SUBACK) may take.
    #[arg(long = "connect-timeout", value_name = "SECS", default_value_t = 10.0)]
    connect_timeout: f64,
    /// Print help.
    #[arg(long = "help", action = ArgAction::HelpLong)]
    help: Option<bool>,
}

/// What the scenarios read from the command line.
#[derive(Debug, Clone)]
pub(crate) struct Shape {
    pub(crate) clients: Option<usize>,
    pub(crate) subscribers: Option<usize>,
    duration: Option<Duration>,
    count: Option<u64>,
    /// Whether `-d` was given (conns uses it for the hold time).
    pub(crate) duration_given: bool,
    pub(crate) rate: Option<f64>,
    warmup: Option<Duration>,
    pub(crate) depth: usize,
    pub(crate) width: usize,
}

impl Shape {
    /// When publishing stops: `-n`, else `-d`, else 10 s.
    pub(crate) fn limit(&self) -> Limit {
        match (self.count, self.duration) {
            (Some(n), _) => Limit::Count(n),
            (None, Some(d)) => Limit::Duration(d),
            (None, None) => Limit::Duration(Duration::from_secs(10)),
        }
    }

    /// `--warmup`, else 1 s for the latency scenario of a timed run of 2 s or more, else 0.
    pub(crate) fn warmup(&self, latency: bool) -> Duration {
        if let Some(w) = self.warmup {
            return w;
        }
        match self.limit() {
            Limit::Duration(d) if latency && d >= Duration::from_secs(2) => Duration::from_secs(1),
            _ => Duration::ZERO,
        }
    }

    #[cfg(test)]
    pub(crate) fn test(clients: Option<usize>, subscribers: Option<usize>) -> Shape {
        Shape {
            clients,
            subscribers,
            duration: None,
            count: None,
            duration_given: false,
            rate: None,
            warmup: None,
            depth: 5,
            width: 4,
        }
    }
}

/// "1 publisher", "8 publishers".
pub(crate) fn describe(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

fn parse_version(v: &str) -> anyhow::Result<ProtocolVersion> {
    Ok(match v {
        "31" | "mqttv31" => ProtocolVersion::V3_1,
        "311" | "mqttv311" => ProtocolVersion::V3_1_1,
        "5" | "mqttv5" => ProtocolVersion::V5,
        other => bail!("-V must be 31, 311 or 5, not {other:?}"),
    })
}

fn seconds(what: &str, secs: f64, max: f64) -> anyhow::Result<Duration> {
    if !secs.is_finite() || secs < 0.0 || secs > max {
        bail!("{what} must be between 0 and {max} seconds, not {secs}");
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Runs `midge bench`.
pub(crate) fn run(args: BenchArgs) -> anyhow::Result<()> {
    let qos = QoS::from_u8(args.qos).ok_or_else(|| anyhow!("-q must be 0, 1 or 2"))?;
    let version = parse_version(&args.version)?;
    if args.size < stats::HEADER_LEN {
        bail!(
            "-s must be at least {} bytes: every payload carries a {}-byte header",
            stats::HEADER_LEN,
            stats::HEADER_LEN
        );
    }
    if args.size > 16 << 20 {
        bail!("-s must be at most 16 MiB");
    }
    let duration = args
        .duration
        .map(|d| seconds("-d", d, MAX_SECS))
        .transpose()?;
    if duration.is_some_and(|d| d.is_zero()) {
        bail!("-d must be more than 0 seconds");
    }
    if args.count == Some(0) {
        bail!("-n must be at least 1");
    }
    let warmup = args
        .warmup
        .map(|w| seconds("--warmup", w, MAX_SECS))
        .transpose()?;
    if let (Some(w), Some(d)) = (warmup, duration)
        && w >= d
        && args.scenario != Scenario::Conns
    {
        bail!("--warmup must be shorter than -d");
    }
    if let Some(rate) = args.rate
        && (!rate.is_finite() || rate <= 0.0)
    {
        bail!("-r must be a positive number of messages per second");
    }
    if args.window == 0 || args.inflight == 0 || args.concurrency == 0 {
        bail!("--window, --inflight and --concurrency must be at least 1");
    }
    if !(1..=64).contains(&args.threads) {
        bail!("--threads must be between 1 and 64");
    }
    if !(1..=16).contains(&args.depth) || !(1..=1000).contains(&args.width) {
        bail!("--depth must be 1 to 16 and --width 1 to 1000");
    }
    if args.scenario == Scenario::Wildcard
        && args
            .width
            .checked_pow(args.depth as u32)
            .is_none_or(|l| l > 1 << 20)
    {
        bail!("--width^--depth must be at most 1048576 leaves");
    }
    if args.scenario == Scenario::Conns && args.count.is_some() {
        bail!("conns sends one probe message per connection; -n does not apply");
    }
    for (flag, n) in [("-c", args.clients), ("-S", args.subscribers)] {
        if n == Some(0) || n.is_some_and(|n| n > 1_000_000) {
            bail!("{flag} must be between 1 and 1000000");
        }
    }
    let addr = (args.host.as_str(), args.port)
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {}", args.host))?
        .next()
        .ok_or_else(|| anyhow!("{} resolves to no address", args.host))?;
    let sources = args
        .sources
        .unwrap_or(if args.scenario == Scenario::Conns {
            16
        } else {
            1
        })
        .max(1);
    let settings = Settings {
        addr,
        target: format!("{}:{}", args.host, args.port),
        qos,
        size: args.size,
        version,
        window: args.window,
        inflight: args.inflight,
        drain_idle: seconds("--drain", args.drain, 60.0)?,
        sources,
        concurrency: args.concurrency,
        pid: args.pid,
        username: args.username,
        password: args.password,
        keep_alive: args.keep_alive,
        connect_timeout: seconds("--connect-timeout", args.connect_timeout, 600.0)?,
        progress: !args.quiet,
        run_id: run_id(),
    };
    let shape = Shape {
        clients: args.clients,
        subscribers: args.subscribers,
        duration,
        count: args.count,
        duration_given: args.duration.is_some(),
        rate: args.rate,
        warmup,
        depth: args.depth,
        width: args.width,
    };
    let plan: Plan = match args.scenario {
        Scenario::Fanin => fanin::plan(&shape, &settings),
        Scenario::Fanout => fanout::plan(&shape, &settings),
        Scenario::Pairs => pairs::plan(&shape, &settings),
        Scenario::Latency => latency::plan(&shape, &settings),
        Scenario::Conns => conns::plan(&shape, &settings),
        Scenario::Wildcard => wildcard::plan(&shape, &settings),
    };
    let connections = (plan.subscribers.len() + plan.publishers.len()) as u64;
    if let Some(limit) = procfs::open_files_limit()
        && connections + 32 > limit
    {
        bail!(
            "{connections} connections need as many file descriptors, but `ulimit -n` is \
             {limit}: raise it (up to `ulimit -Hn`) or use fewer clients"
        );
    }
    let runtime = if args.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()
    }
    .context("cannot start the async runtime")?;
    let report_settings = settings.clone();
    let report_plan = plan.clone();
    let outcome = runtime.block_on(engine::run(plan, settings))?;
    // Connection tasks are done; do not wait for anything else.
    runtime.shutdown_background();
    report::print(&report_plan, &report_settings, &outcome, args.json)?;
    if !outcome.errors.is_empty() {
        bail!(
            "{} connection error(s) during the run; the figures above are incomplete",
            outcome.errors.len()
        );
    }
    Ok(())
}

/// A number that differs between runs, to keep their client identifiers and topics apart.
fn run_id() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mixed = (nanos ^ (u64::from(std::process::id()) << 32)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (mixed >> 32) as u32
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn settings() -> Settings {
        Settings {
            addr: "127.0.0.1:1883".parse().expect("addr"),
            target: "127.0.0.1:1883".into(),
            qos: QoS::AtMostOnce,
            size: 64,
            version: ProtocolVersion::V3_1_1,
            window: 100,
            inflight: 10,
            drain_idle: Duration::from_secs(1),
            sources: 1,
            concurrency: 1,
            pid: None,
            username: None,
            password: None,
            keep_alive: 60,
            connect_timeout: Duration::from_secs(1),
            progress: false,
            run_id: 0xabcd,
        }
    }

    #[test]
    fn versions_parse_like_mosquitto() {
        assert_eq!(parse_version("mqttv5").ok(), Some(ProtocolVersion::V5));
        assert_eq!(parse_version("311").ok(), Some(ProtocolVersion::V3_1_1));
        assert!(parse_version("4").is_err());
    }

    #[test]
    fn defaults_bound_every_run() {
        let shape = Shape::test(None, None);
        assert_eq!(shape.limit(), Limit::Duration(Duration::from_secs(10)));
        assert_eq!(shape.warmup(true), Duration::from_secs(1));
        assert_eq!(shape.warmup(false), Duration::ZERO);
        let plan = fanin::plan(&shape, &settings());
        assert_eq!(plan.publishers.len(), 8);
        plan.check();
        let plan = fanout::plan(&shape, &settings());
        assert_eq!(plan.subscribers.len(), 100);
        plan.check();
        let plan = latency::plan(&shape, &settings());
        assert_eq!(plan.rate, Some(latency::DEFAULT_RATE));
    }
}
