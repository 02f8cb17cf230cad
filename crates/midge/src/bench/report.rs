//! The result of a run: a summary table on stdout, or with `--json` one JSON object.

use std::io::Write;

use anyhow::Context;
use midge_proto::QoS;
use serde_json::{Value, json};

use super::engine::{Outcome, si};
use super::plan::{Plan, Settings};

/// Prints the outcome of `plan`.
pub(crate) fn print(
    plan: &Plan,
    settings: &Settings,
    outcome: &Outcome,
    as_json: bool,
) -> anyhow::Result<()> {
    let text = if as_json {
        let mut s = serde_json::to_string_pretty(&to_json(plan, settings, outcome))
            .context("cannot serialise the report")?;
        s.push('\n');
        s
    } else {
        table(plan, settings, outcome)
    };
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("cannot write to stdout"),
    }
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

/// Bytes of the broker's resident memory per connection: growth from before the first
/// connection to after the last, divided by the connections.
fn bytes_per_connection(plan: &Plan, outcome: &Outcome) -> Option<f64> {
    // Only `conns` holds connections idle; elsewhere the growth is mostly queued messages.
    plan.hold?;
    let b = outcome.broker.as_ref()?;
    let (before, after) = (b.rss_before?, b.rss_connected?);
    (outcome.connections > 0).then(|| (after as f64 - before as f64) / outcome.connections as f64)
}

/// Deliveries per second of broker CPU during the measurement window.
fn per_cpu_second(outcome: &Outcome) -> Option<f64> {
    let cpu = outcome.broker.as_ref()?.cpu_pct?;
    (cpu > 0.0).then(|| outcome.receive_rate / (cpu / 100.0))
}

/// The JSON form: flat where it can be, figures in messages, seconds, microseconds and bytes.
pub(crate) fn to_json(plan: &Plan, settings: &Settings, o: &Outcome) -> Value {
    let latency = if o.latency.count() > 0 {
        json!({
            "samples": o.latency.count(),
            "p50": us(o.latency.quantile(0.50)),
            "p99": us(o.latency.quantile(0.99)),
            "p999": us(o.latency.quantile(0.999)),
            "max": us(o.latency.max()),
            "mean": us(o.latency.mean()),
        })
    } else {
        Value::Null
    };
    let broker = o.broker.as_ref().map_or(Value::Null, |b| {
        json!({
            "pid": b.pid,
            "rss_before": b.rss_before,
            "rss_connected": b.rss_connected,
            "rss_end": b.rss_end,
            "rss_peak": b.rss_peak,
            "cpu_pct": b.cpu_pct,
            "bytes_per_connection": bytes_per_connection(plan, o),
            "deliveries_per_cpu_second": per_cpu_second(o),
        })
    });
    json!({
        "scenario": plan.scenario,
        "description": plan.description,
        "broker": settings.target,
        "qos": settings.qos.as_u8(),
        "payload_size": settings.size,
        "protocol": settings.version.to_string(),
        "publishers": plan.publishers.len(),
        "subscribers": plan.subscribers.len(),
        "rate_limit": plan.rate,
        "window": settings.window,
        "connections": o.connections,
        "connect_failures": o.connect_failures,
        "connect_seconds": o.connect_secs,
        "connect_rate": o.connections as f64 / o.connect_secs.max(1e-9),
        "warmup_seconds": plan.warmup.as_secs_f64(),
        "seconds": o.window_secs,
        "drain_seconds": o.drain_secs,
        "published": o.published,
        "acked": o.acked,
        "rejected": o.rejected,
        "unacked": o.unacked,
        "expected": o.expected,
        "received": o.received,
        "lost": o.lost,
        "duplicates": o.duplicates,
        "out_of_order": o.out_of_order,
        "unexpected": o.unexpected,
        "stalls": o.stalls,
        "publish_rate": o.publish_rate,
        "ack_rate": o.ack_rate,
        "receive_rate": o.receive_rate,
        "latency_us": latency,
        "broker_process": broker,
        "generator_cpu_pct": o.generator_cpu_pct,
        "errors": o.errors,
    })
}

fn mb(bytes: Option<u64>) -> String {
    bytes.map_or_else(|| "?".into(), |b| format!("{:.1} MB", b as f64 / 1e6))
}

/// The human form.
pub(crate) fn table(plan: &Plan, settings: &Settings, o: &Outcome) -> String {
    let mut t = String::new();
    let mut line = |s: String| {
        t.push_str(&s);
        t.push('\n');
    };
    line(format!(
        "midge bench {}: {}",
        plan.scenario, plan.description
    ));
    line(format!(
        "  QoS {}, {}-byte payloads, MQTT {}, broker {}",
        settings.qos.as_u8(),
        settings.size,
        settings.version,
        settings.target
    ));
    line(format!(
        "  connections   {} set up in {:.2} s ({}/s){}",
        o.connections,
        o.connect_secs,
        si(o.connections as f64 / o.connect_secs.max(1e-9)),
        if o.connect_failures > 0 {
            format!(", {} FAILED", o.connect_failures)
        } else {
            String::new()
        }
    ));
    let warm = if plan.warmup.is_zero() {
        String::new()
    } else {
        format!(" after {:.1} s warm-up", plan.warmup.as_secs_f64())
    };
    line(format!(
        "  measured      {:.2} s{warm}; drain {:.2} s",
        o.window_secs, o.drain_secs
    ));
    let acks = settings.qos != QoS::AtMostOnce;
    line(format!(
        "  {:<14}{:>14}{:>14}{:>14}",
        "",
        "published",
        if acks { "acked" } else { "" },
        "received"
    ));
    line(format!(
        "  {:<14}{:>14}{:>14}{:>14}",
        "messages",
        o.published,
        if acks {
            o.acked.to_string()
        } else {
            String::new()
        },
        o.received
    ));
    line(format!(
        "  {:<14}{:>14}{:>14}{:>14}",
        "rate (msg/s)",
        format!("{:.0}", o.publish_rate),
        if acks {
            format!("{:.0}", o.ack_rate)
        } else {
            String::new()
        },
        format!("{:.0}", o.receive_rate)
    ));
    line(format!(
        "  lost {}   duplicates {}   out of order {}   unexpected {}   (of {} deliveries due)",
        o.lost, o.duplicates, o.out_of_order, o.unexpected, o.expected
    ));
    if o.rejected > 0 || o.unacked > 0 || o.stalls > 0 {
        line(format!(
            "  rejected by the broker {}   never acknowledged {}   window stalls {}",
            o.rejected, o.unacked, o.stalls
        ));
    }
    if o.latency.count() > 0 {
        line(format!(
            "  latency (µs)  p50 {:.0}   p99 {:.0}   p99.9 {:.0}   max {:.0}   mean {:.0}   ({} samples)",
            us(o.latency.quantile(0.50)),
            us(o.latency.quantile(0.99)),
            us(o.latency.quantile(0.999)),
            us(o.latency.max()),
            us(o.latency.mean()),
            o.latency.count()
        ));
    }
    if let Some(b) = &o.broker {
        let mut s = format!(
            "  broker        pid {}: RSS {} before, {} connected, {} at end, peak {}",
            b.pid,
            mb(b.rss_before),
            mb(b.rss_connected),
            mb(b.rss_end),
            mb(b.rss_peak)
        );
        if let Some(cpu) = b.cpu_pct {
            s.push_str(&format!("; CPU {cpu:.0} %"));
        }
        if let Some(per) = per_cpu_second(o) {
            s.push_str(&format!(" ({} deliveries per CPU-second)", si(per)));
        }
        line(s);
        if let Some(per) = bytes_per_connection(plan, o) {
            line(format!("  broker memory per connection: {:.0} bytes", per));
        }
    }
    if let Some(cpu) = o.generator_cpu_pct {
        line(format!("  generator     CPU {cpu:.0} %"));
    }
    for e in &o.errors {
        line(format!("  error: {e}"));
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::engine::BrokerFigures;
    use crate::bench::{Shape, conns};

    #[test]
    fn reports_agree() {
        let settings = crate::bench::tests::settings();
        let plan = conns::plan(&Shape::test(Some(3), None), &settings);
        let mut o = Outcome {
            connections: 3,
            connect_secs: 0.5,
            published: 100,
            received: 100,
            expected: 100,
            window_secs: 1.0,
            receive_rate: 100.0,
            broker: Some(BrokerFigures {
                pid: 1,
                rss_before: Some(1_000_000),
                rss_connected: Some(1_003_000),
                cpu_pct: Some(50.0),
                ..BrokerFigures::default()
            }),
            ..Outcome::default()
        };
        o.latency.record(1_000);
        o.latency.record(3_000);
        let v = to_json(&plan, &settings, &o);
        assert_eq!(v["received"], 100);
        assert_eq!(v["lost"], 0);
        assert_eq!(v["latency_us"]["max"], 3.0);
        assert_eq!(v["broker_process"]["bytes_per_connection"], 1000.0);
        assert_eq!(v["broker_process"]["deliveries_per_cpu_second"], 200.0);
        assert_eq!(v["connect_rate"], 6.0);
        let table = table(&plan, &settings, &o);
        assert!(
            table.contains("memory per connection: 1000 bytes"),
            "{table}"
        );
        assert!(table.contains("p50 1"), "{table}");
    }
}
