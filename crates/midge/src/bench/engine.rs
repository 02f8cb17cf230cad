//! The coordinator: connects every subscriber and publisher of a [`Plan`], runs the phases
//! (setup, hold, warm-up, measurement, drain), samples the broker's process, and turns what
//! the tasks report into an [`Outcome`].

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::bail;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use super::conn::{ConnectSpec, Template};
use super::plan::{Limit, Phase, Plan, Settings, Shared};
use super::procfs::{self, CpuMeter};
use super::publisher::{PublisherResult, PublisherTask, Slot};
use super::stats::{Histogram, stream_key};
use super::subscriber::{SubscriberResult, SubscriberTask};

/// No run publishes for longer than this, whatever the options.
pub(crate) const MAX_RUN: Duration = Duration::from_secs(3600);
/// No drain lasts longer than this.
const MAX_DRAIN: Duration = Duration::from_secs(60);
/// Setting up all connections may take this long at most.
const MAX_SETUP: Duration = Duration::from_secs(600);

/// The broker's process, as `/proc` saw it.
#[derive(Debug, Clone, Default)]
pub(crate) struct BrokerFigures {
    pub(crate) pid: u32,
    /// Resident memory before the first connection.
    pub(crate) rss_before: Option<u64>,
    /// After every connection was set up (for `conns`: at the end of the idle hold).
    pub(crate) rss_connected: Option<u64>,
    /// At the end of the drain.
    pub(crate) rss_end: Option<u64>,
    /// Peak resident memory of the process's life (`VmHWM`).
    pub(crate) rss_peak: Option<u64>,
    /// CPU used during the measurement window, percent of one core.
    pub(crate) cpu_pct: Option<f64>,
}

/// The figures of one run.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub(crate) connections: usize,
    pub(crate) connect_failures: usize,
    /// Time to set up every connection (CONNECT, CONNACK, SUBSCRIBE, SUBACK).
    pub(crate) connect_secs: f64,
    /// Messages published (written).
    pub(crate) published: u64,
    pub(crate) acked: u64,
    pub(crate) rejected: u64,
    pub(crate) unacked: u64,
    /// Deliveries due (each message times the subscribers it should reach).
    pub(crate) expected: u64,
    /// Deliveries received, duplicates included.
    pub(crate) received: u64,
    pub(crate) lost: u64,
    pub(crate) duplicates: u64,
    pub(crate) out_of_order: u64,
    /// Deliveries no subscriber should have had (another run's, or misrouted).
    pub(crate) unexpected: u64,
    /// Times deliveries stopped for a second and part of the window was written off.
    pub(crate) stalls: u64,
    /// The measurement window: from the end of the warm-up to the end of publishing.
    pub(crate) window_secs: f64,
    pub(crate) publish_rate: f64,
    pub(crate) ack_rate: f64,
    pub(crate) receive_rate: f64,
    pub(crate) drain_secs: f64,
    pub(crate) latency: Histogram,
    pub(crate) broker: Option<BrokerFigures>,
    /// The generator's own CPU during the measurement window, percent of one core.
    pub(crate) generator_cpu_pct: Option<f64>,
    pub(crate) errors: Vec<String>,
}

/// Counters at one instant.
#[derive(Debug, Clone, Copy)]
struct Snapshot {
    at: Instant,
    published: u64,
    received: u64,
    acked: u64,
    broker_cpu: Option<f64>,
    own_cpu: Option<f64>,
}

impl Snapshot {
    fn take(shared: &Shared, broker: Option<&CpuMeter>, own: Option<&CpuMeter>) -> Snapshot {
        Snapshot {
            at: Instant::now(),
            published: shared.published.load(Ordering::SeqCst),
            received: shared.received.load(Ordering::SeqCst),
            acked: shared.acked.load(Ordering::SeqCst),
            broker_cpu: broker.and_then(CpuMeter::read).map(|(cpu, _)| cpu),
            own_cpu: own.and_then(CpuMeter::read).map(|(cpu, _)| cpu),
        }
    }
}

/// Runs `plan` against the broker in `settings`.
pub(crate) async fn run(plan: Plan, settings: Settings) -> anyhow::Result<Outcome> {
    let settings = Arc::new(settings);
    let shared = Arc::new(Shared::new(settings.window));
    let mut outcome = Outcome::default();
    let mut broker = settings.pid.map(|pid| BrokerFigures {
        pid,
        rss_before: procfs::rss(pid),
        ..BrokerFigures::default()
    });
    let setup = Arc::new(Semaphore::new(settings.concurrency.max(1)));
    let progress = settings.progress.then(|| {
        tokio::spawn(progress_line(
            Arc::clone(&shared),
            plan.subscribers.len() + plan.publishers.len(),
        ))
    });
    let mut connection = 0usize;
    let mut spec = |role: char, id: usize| {
        let spec = ConnectSpec {
            addr: settings.addr,
            bind: settings.source(connection),
            version: settings.version,
            client_id: format!("mb{:08x}{role}{id}", settings.run_id),
            username: settings.username.clone(),
            password: settings.password.clone(),
            keep_alive: settings.keep_alive,
            timeout: settings.connect_timeout,
        };
        connection += 1;
        spec
    };

    // Subscribers first, so that nothing is published before everyone listens.
    let setup_start = Instant::now();
    let busy = plan.subscribers.len() <= 1000;
    let subscribers: Vec<JoinHandle<SubscriberResult>> = plan
        .subscribers
        .iter()
        .enumerate()
        .map(|(s, filters)| {
            let task = SubscriberTask {
                id: s as u32,
                spec: spec('s', s),
                filters: filters.clone(),
                chunk: if busy { 64 * 1024 } else { 2048 },
                settings: Arc::clone(&settings),
                shared: Arc::clone(&shared),
                setup: Arc::clone(&setup),
            };
            tokio::spawn(task.run())
        })
        .collect();
    let tolerate_failures = plan.hold.is_some();
    let setup_result = wait_setup(&shared, plan.subscribers.len(), tolerate_failures).await;
    let subscribers_secs = setup_start.elapsed().as_secs_f64();
    let subscribers_ready = shared.ready.load(Ordering::SeqCst);

    let publishers = match setup_result {
        Ok(()) => {
            let mut templates: HashMap<u32, Template> = HashMap::new();
            let rate = plan.rate.map(|r| r / plan.publishers.len().max(1) as f64);
            let quotas = quotas(&plan);
            let mut tasks = Vec::new();
            for (p, topics) in plan.publishers.iter().enumerate() {
                let mut slots = Vec::with_capacity(topics.len());
                for &t in topics {
                    let template = match templates.get(&t) {
                        Some(template) => template.clone(),
                        None => {
                            let template = Template::new(
                                &plan.topics[t as usize],
                                settings.qos,
                                settings.size,
                                settings.version,
                            )?;
                            templates.insert(t, template.clone());
                            template
                        }
                    };
                    slots.push(Slot {
                        topic: t,
                        fan: plan.fan(t),
                        template,
                    });
                }
                let task = PublisherTask {
                    id: p as u32,
                    spec: spec('p', p),
                    slots,
                    quota: quotas[p],
                    rate,
                    phase_offset: p as f64 / plan.publishers.len() as f64,
                    settings: Arc::clone(&settings),
                    shared: Arc::clone(&shared),
                    setup: Arc::clone(&setup),
                };
                tasks.push(tokio::spawn(task.run()));
            }
            let total = plan.subscribers.len() + plan.publishers.len();
            wait_setup(&shared, total, tolerate_failures)
                .await
                .map(|()| tasks)
        }
        Err(e) => Err(e),
    };
    let publishers = match publishers {
        Ok(publishers) => publishers,
        Err(e) => {
            shared.set_phase(Phase::Stop);
            for s in subscribers {
                s.abort();
            }
            if let Some(p) = progress {
                let _ = p.await;
            }
            return Err(e);
        }
    };
    outcome.connect_failures = shared.failed.load(Ordering::SeqCst);
    // `conns` measures the subscribers' setup; the probe publisher is not part of it.
    (outcome.connections, outcome.connect_secs) = if plan.hold.is_some() {
        (subscribers_ready, subscribers_secs)
    } else {
        (
            shared.ready.load(Ordering::SeqCst),
            setup_start.elapsed().as_secs_f64(),
        )
    };

    if let Some(hold) = plan.hold {
        shared.set_phase(Phase::Hold);
        tokio::time::sleep(hold).await;
    }
    if let Some(b) = broker.as_mut() {
        b.rss_connected = procfs::rss(b.pid);
    }

    // Publish.
    let broker_cpu = settings.pid.and_then(CpuMeter::start);
    let own_cpu = CpuMeter::start(std::process::id());
    let start = Snapshot::take(&shared, broker_cpu.as_ref(), own_cpu.as_ref());
    let start_ns = shared.now_ns();
    shared.run_start_ns.store(start_ns, Ordering::SeqCst);
    shared
        .warmup_end_ns
        .store(start_ns + plan.warmup.as_nanos() as u64, Ordering::SeqCst);
    shared.set_phase(Phase::Run);
    let run_for = match plan.limit {
        Limit::Duration(d) => d.min(MAX_RUN),
        Limit::Count(_) => MAX_RUN,
    };
    let deadline = start.at + run_for;
    let all_done =
        |shared: &Shared| shared.publishers_done.load(Ordering::SeqCst) >= plan.publishers.len();
    let mut measure_from = start;
    if !plan.warmup.is_zero() {
        wait_until(&shared, (start.at + plan.warmup).min(deadline), &all_done).await;
        if !all_done(&shared) {
            measure_from = Snapshot::take(&shared, broker_cpu.as_ref(), own_cpu.as_ref());
        }
    }
    wait_until(&shared, deadline, &all_done).await;
    let end = Snapshot::take(&shared, broker_cpu.as_ref(), own_cpu.as_ref());
    shared.set_phase(Phase::Drain);

    // Drain: until every due delivery arrived and every publisher is acknowledged, or nothing
    // arrives for the idle time.
    let drain_start = Instant::now();
    let mut last = (
        shared.received.load(Ordering::SeqCst),
        shared.acked.load(Ordering::SeqCst),
    );
    let mut last_change = Instant::now();
    loop {
        let now = (
            shared.received.load(Ordering::SeqCst),
            shared.acked.load(Ordering::SeqCst),
        );
        if now.0 >= shared.expected.load(Ordering::SeqCst) && all_done(&shared) {
            break;
        }
        if now != last {
            last = now;
            last_change = Instant::now();
        }
        if last_change.elapsed() >= settings.drain_idle || drain_start.elapsed() >= MAX_DRAIN {
            break;
        }
        let _ = tokio::time::timeout(Duration::from_millis(20), shared.changed.notified()).await;
    }
    outcome.drain_secs = drain_start.elapsed().as_secs_f64();
    if let Some(b) = broker.as_mut() {
        b.rss_end = procfs::rss(b.pid);
        b.rss_peak = procfs::peak_rss(b.pid);
    }
    shared.set_phase(Phase::Stop);
    if let Some(p) = progress {
        let _ = p.await;
    }

    // Collect.
    let mut pub_results = Vec::with_capacity(publishers.len());
    for p in publishers {
        pub_results.push(join(p).await?);
    }
    let mut sub_results = Vec::with_capacity(subscribers.len());
    for s in subscribers {
        sub_results.push(join(s).await?);
    }

    let secs = end
        .at
        .duration_since(measure_from.at)
        .as_secs_f64()
        .max(1e-9);
    outcome.window_secs = secs;
    outcome.publish_rate = (end.published - measure_from.published) as f64 / secs;
    outcome.receive_rate = (end.received - measure_from.received) as f64 / secs;
    outcome.ack_rate = (end.acked - measure_from.acked) as f64 / secs;
    if let (Some(b), Some(b0), Some(b1)) =
        (broker.as_mut(), measure_from.broker_cpu, end.broker_cpu)
    {
        b.cpu_pct = Some((b1 - b0) / secs * 100.0);
    }
    if let (Some(c0), Some(c1)) = (measure_from.own_cpu, end.own_cpu) {
        outcome.generator_cpu_pct = Some((c1 - c0) / secs * 100.0);
    }
    outcome.broker = broker;
    outcome.stalls = shared.stalls.load(Ordering::SeqCst);
    outcome.expected = shared.expected.load(Ordering::SeqCst);
    account(&plan, &pub_results, &sub_results, &mut outcome);
    if outcome.receive_rate == 0.0 && outcome.received > 0 {
        // Everything arrived after the sending window closed (a very short run): rate over
        // the window and the drain together.
        outcome.receive_rate =
            outcome.received as f64 / (outcome.window_secs + outcome.drain_secs).max(1e-9);
    }
    outcome.errors = shared.errors.lock().map(|e| e.clone()).unwrap_or_default();
    outcome.latency = shared.latency.lock().map(|h| h.clone()).unwrap_or_default();
    Ok(outcome)
}

/// Waits until `total` connections are set up. A failure aborts the run unless `tolerate`
/// (`conns` counts failures instead).
async fn wait_setup(shared: &Shared, total: usize, tolerate: bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + MAX_SETUP;
    loop {
        let ready = shared.ready.load(Ordering::SeqCst);
        let failed = shared.failed.load(Ordering::SeqCst);
        if failed > 0 && !tolerate {
            let errors = shared.errors.lock().map(|e| e.clone()).unwrap_or_default();
            bail!(
                "{failed} connection(s) could not be set up: {}",
                errors.first().map_or("unknown error", String::as_str)
            );
        }
        if ready + failed >= total {
            if ready == 0 && total > 0 {
                bail!("no connection could be set up");
            }
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("setting up {total} connections took longer than {MAX_SETUP:?}");
        }
        let _ = tokio::time::timeout(Duration::from_millis(20), shared.changed.notified()).await;
    }
}

/// Sleeps until `deadline` or until `done`.
async fn wait_until(shared: &Shared, deadline: Instant, done: &impl Fn(&Shared) -> bool) {
    while !done(shared) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        let _ = tokio::time::timeout(
            left.min(Duration::from_millis(50)),
            shared.changed.notified(),
        )
        .await;
    }
}

async fn join<T>(handle: JoinHandle<T>) -> anyhow::Result<T> {
    match tokio::time::timeout(Duration::from_secs(10), handle).await {
        Ok(Ok(result)) => Ok(result),
        Ok(Err(e)) => bail!("a connection task failed: {e}"),
        Err(_) => bail!("a connection task did not stop within 10 s"),
    }
}

/// Each publisher's message budget under [`Limit::Count`]: the total split evenly.
fn quotas(plan: &Plan) -> Vec<Option<u64>> {
    let n = plan.publishers.len() as u64;
    (0..n)
        .map(|p| match plan.limit {
            Limit::Count(total) => Some(total / n + u64::from(p < total % n)),
            Limit::Duration(_) => None,
        })
        .collect()
}

/// Compares what each subscriber received with what it should have: lost, duplicated, out of
/// order, unexpected; and gathers the latency histograms.
fn account(
    plan: &Plan,
    publishers: &[PublisherResult],
    subscribers: &[SubscriberResult],
    outcome: &mut Outcome,
) {
    // Messages each (publisher, topic) stream carried.
    let mut senders: Vec<Vec<(u32, u64)>> = vec![Vec::new(); plan.topics.len()];
    for r in publishers {
        outcome.published += r.sent;
        outcome.acked += r.acked;
        outcome.rejected += r.rejected;
        outcome.unacked += r.unacked;
        let topics = &plan.publishers[r.id as usize];
        let n = topics.len() as u64;
        for (k, &t) in topics.iter().enumerate() {
            let count = r.sent / n + u64::from((k as u64) < r.sent % n);
            if count > 0 {
                senders[t as usize].push((r.id, count));
            }
        }
    }
    let topics_of = plan.topics_of_subscribers();
    for r in subscribers {
        outcome.received += r.received;
        outcome.duplicates += r.duplicates;
        outcome.out_of_order += r.out_of_order;
        outcome.unexpected += r.foreign;
        let total: u64 = r.streams.values().map(|s| s.distinct).sum();
        let mut matched = 0;
        for &t in &topics_of[r.id as usize] {
            for &(p, count) in &senders[t as usize] {
                let distinct = r.streams.get(&stream_key(p, t)).map_or(0, |s| s.distinct);
                outcome.lost += count.saturating_sub(distinct);
                outcome.unexpected += distinct.saturating_sub(count);
                matched += distinct;
            }
        }
        // Streams this subscriber should not have received at all.
        outcome.unexpected += total - matched;
    }
}

/// Prints one line a second on stderr: connection progress during setup, rates while
/// publishing, what is outstanding while draining. On a terminal the line is rewritten in
/// place.
async fn progress_line(shared: Arc<Shared>, connections: usize) {
    let tty = std::io::stderr().is_terminal();
    let mut phase = shared.phase.subscribe();
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.tick().await;
    let started = Instant::now();
    let mut last = (Instant::now(), 0u64, 0u64, 0u64);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            changed = phase.wait_for(|p| *p == Phase::Stop) => {
                let _ = changed;
                break;
            }
        }
        let now = Instant::now();
        let published = shared.published.load(Ordering::Relaxed);
        let received = shared.received.load(Ordering::Relaxed);
        let acked = shared.acked.load(Ordering::Relaxed);
        let dt = now.duration_since(last.0).as_secs_f64().max(1e-9);
        let line = match shared.phase() {
            Phase::Setup => {
                let ready = shared.ready.load(Ordering::Relaxed);
                format!(
                    "connecting: {ready}/{connections} ({:.0}/s), {} failed",
                    ready as f64 / started.elapsed().as_secs_f64().max(1e-9),
                    shared.failed.load(Ordering::Relaxed)
                )
            }
            Phase::Hold => format!(
                "holding {} idle connections",
                shared.ready.load(Ordering::Relaxed)
            ),
            Phase::Run => {
                let start = shared.run_start_ns.load(Ordering::Relaxed);
                let outstanding = shared.expected.load(Ordering::Relaxed) as i64 - received as i64;
                format!(
                    "[{:5.1}s] published {}/s  received {}/s  acked {}/s  outstanding {}",
                    shared.now_ns().saturating_sub(start) as f64 / 1e9,
                    si((published - last.1) as f64 / dt),
                    si((received - last.2) as f64 / dt),
                    si((acked - last.3) as f64 / dt),
                    outstanding
                )
            }
            Phase::Drain => format!(
                "draining: {} deliveries outstanding",
                shared.expected.load(Ordering::Relaxed) as i64 - received as i64
            ),
            Phase::Stop => break,
        };
        last = (now, published, received, acked);
        let mut err = std::io::stderr().lock();
        let _ = if tty {
            write!(err, "\r{line}\x1b[K")
        } else {
            writeln!(err, "{line}")
        };
        let _ = err.flush();
    }
    if tty {
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[K");
        let _ = err.flush();
    }
}

/// A rate with an SI suffix: 950, 12.3k, 1.45M.
pub(crate) fn si(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::stats::SeqTracker;

    fn plan() -> Plan {
        // Two publishers on topic 0, one of them also on topic 1; subscriber 0 gets topic 0,
        // subscriber 1 both.
        Plan {
            scenario: "test",
            description: String::new(),
            topics: vec!["a".into(), "b".into()],
            publishers: vec![vec![0], vec![0, 1]],
            subscribers: vec![vec!["a".into()], vec!["+".into()]],
            subscribers_of: vec![vec![0, 1], vec![1]],
            limit: Limit::Count(10),
            rate: None,
            warmup: Duration::ZERO,
            hold: None,
        }
    }

    fn tracker(seqs: impl IntoIterator<Item = u64>) -> SeqTracker {
        let mut t = SeqTracker::default();
        for s in seqs {
            t.record(s);
        }
        t
    }

    #[test]
    fn accounting_counts_lost_and_unexpected_per_stream() {
        let plan = plan();
        plan.check();
        assert_eq!(quotas(&plan), vec![Some(5), Some(5)]);
        let publishers = vec![
            PublisherResult {
                id: 0,
                sent: 4,
                ..PublisherResult::default()
            },
            // 3 messages to topic 0 (seq 0..3), 2 to topic 1.
            PublisherResult {
                id: 1,
                sent: 5,
                ..PublisherResult::default()
            },
        ];
        let mut s0 = SubscriberResult::default();
        s0.streams.insert(stream_key(0, 0), tracker(0..4));
        s0.streams.insert(stream_key(1, 0), tracker([0, 2])); // seq 1 lost
        s0.streams.insert(stream_key(1, 1), tracker([0])); // not subscribed: unexpected
        let mut s1 = SubscriberResult {
            id: 1,
            ..SubscriberResult::default()
        };
        s1.streams.insert(stream_key(0, 0), tracker(0..4));
        s1.streams.insert(stream_key(1, 0), tracker(0..3));
        s1.streams.insert(stream_key(1, 1), tracker(0..2));
        let mut outcome = Outcome::default();
        account(&plan, &publishers, &[s0, s1], &mut outcome);
        assert_eq!(outcome.published, 9);
        assert_eq!(outcome.lost, 1);
        assert_eq!(outcome.unexpected, 1);
    }

    #[test]
    fn si_suffixes() {
        assert_eq!(si(950.0), "950");
        assert_eq!(si(12_345.0), "12.3k");
        assert_eq!(si(1_450_000.0), "1.45M");
    }
}
