#!/usr/bin/env python3
"""Turns the JSON reports of a bench/compare.sh run into Markdown tables with ratios.

Usage: bench/tables.py RESULTS_DIR

Each report is RESULTS_DIR/<scenario id>.<broker>.<repetition>.json (the output of
`midge bench --json`), with the 1-minute load average at its start in a `.load` file beside
it. Cells are medians over repetitions; with several repetitions, the range follows in
brackets.
"""

import glob
import json
import os
import statistics
import sys

BROKERS = ["midge", "midge-sync", "mosquitto", "rumqttd"]
PEERS = ["mosquitto", "rumqttd"]
NAMES = {
    "midge": "Midge",
    "midge-sync": "Midge (sync)",
    "mosquitto": "Mosquitto",
    "rumqttd": "rumqttd",
}


def load(directory):
    runs = {}
    for path in sorted(glob.glob(os.path.join(directory, "*.json"))):
        base = os.path.basename(path)[: -len(".json")]
        try:
            ident, broker, rep = base.rsplit(".", 2)
        except ValueError:
            continue
        with open(path) as f:
            try:
                report = json.load(f)
            except json.JSONDecodeError:
                report = {"error": "no report"}
        try:
            with open(path + ".load") as f:
                report["_load1"] = float(f.read().strip())
        except (OSError, ValueError):
            pass
        runs.setdefault((ident, broker), []).append(report)
    return runs


def si(v):
    if v is None:
        return "–"
    if v >= 1e6:
        return "%.2fM" % (v / 1e6)
    if v >= 1e3:
        return "%.0fk" % (v / 1e3) if v >= 1e5 else "%.1fk" % (v / 1e3)
    return "%.0f" % v


def values(reports, get):
    out = []
    for r in reports:
        if "error" in r and "scenario" not in r:
            continue
        try:
            v = get(r)
        except (KeyError, TypeError):
            v = None
        if v is not None:
            out.append(v)
    return out


def median(reports, get):
    vs = values(reports, get)
    return statistics.median(vs) if vs else None


def cell(reports, get, fmt=si):
    vs = values(reports, get)
    if not vs:
        return "failed" if reports else "–"
    text = fmt(statistics.median(vs))
    if len(vs) > 1:
        text += " (%s–%s)" % (fmt(min(vs)), fmt(max(vs)))
    return text


def faults(reports):
    """A note when any repetition lost, duplicated or reordered messages, or failed."""
    notes = []
    for key, label in [
        ("lost", "lost"),
        ("duplicates", "dup"),
        ("out_of_order", "reordered"),
        ("unexpected", "unexpected"),
        ("stalls", "stalls"),
    ]:
        total = sum(r.get(key, 0) or 0 for r in reports)
        if total:
            notes.append("%s %s" % (label, si(total)))
    if any(r.get("errors") for r in reports) or any("scenario" not in r for r in reports):
        notes.append("errors")
    return (" **[" + ", ".join(notes) + "]**") if notes else ""


def ids(runs, prefix):
    seen = []
    for ident, _ in runs:
        if ident.startswith(prefix) and ident not in seen:
            seen.append(ident)
    return seen


def order_key(ident):
    scenarios = ["fanin", "fanout", "pairs", "wildcard", "latency", "conns"]
    name = ident.split("_")[0]
    return (scenarios.index(name) if name in scenarios else 99, ident)


def brokers_present(runs):
    return [b for b in BROKERS if any(k[1] == b for k in runs)]


def throughput(runs, out):
    rows = sorted(
        {i for i, _ in runs if i.split("_")[0] in ("fanin", "fanout", "pairs", "wildcard")},
        key=order_key,
    )
    if not rows:
        return
    brokers = brokers_present(runs)
    peers = [b for b in PEERS if b in brokers]
    out.append("### Throughput: messages delivered per second to the subscribers\n")
    out.append(
        "| scenario | "
        + " | ".join(NAMES[b] for b in brokers)
        + " | Midge ÷ best peer |"
    )
    out.append("|---" * (len(brokers) + 2) + "|")
    rate = lambda r: r["receive_rate"]
    for ident in rows:
        cells = []
        for b in brokers:
            reports = runs.get((ident, b), [])
            cells.append(cell(reports, rate) + faults(reports) if reports else "–")
        best = [median(runs.get((ident, p), []), rate) for p in peers]
        best = max([v for v in best if v], default=None)
        mine = median(runs.get((ident, "midge"), []), rate)
        ratio = "%.2fx" % (mine / best) if mine and best else "–"
        out.append("| %s | %s | %s |" % (ident, " | ".join(cells), ratio))
    out.append("")
    out.append("### Broker CPU (% of one core), generator CPU, and peak broker memory (VmHWM)\n")
    out.append(
        "| scenario | "
        + " | ".join(NAMES[b] for b in brokers)
        + " |"
    )
    out.append("|---" * (len(brokers) + 1) + "|")
    for ident in rows:
        cells = []
        for b in brokers:
            reports = runs.get((ident, b), [])
            if not reports:
                cells.append("–")
                continue
            cpu = median(reports, lambda r: r["broker_process"]["cpu_pct"])
            gen = median(reports, lambda r: r["generator_cpu_pct"])
            peak = median(reports, lambda r: r["broker_process"]["rss_peak"])
            cells.append(
                "%s %% / gen %s %% / %s MB"
                % (
                    "–" if cpu is None else "%.0f" % cpu,
                    "–" if gen is None else "%.0f" % gen,
                    "–" if peak is None else "%.0f" % (peak / 1e6),
                )
            )
        out.append("| %s | %s |" % (ident, " | ".join(cells)))
    out.append("")


def latency(runs, out):
    rows = sorted(ids(runs, "latency"), key=order_key)
    if not rows:
        return
    brokers = brokers_present(runs)
    out.append("### Latency at a fixed 10,000 msg/s over 100 pairs (µs, after 1 s warm-up)\n")
    out.append("| scenario | broker | p50 | p99 | p99.9 | max | broker CPU % |")
    out.append("|---|---|---|---|---|---|---|")
    us = lambda v: "%.0f" % v
    for ident in rows:
        for b in brokers:
            reports = runs.get((ident, b), [])
            if not reports:
                continue
            out.append(
                "| %s | %s%s | %s | %s | %s | %s | %s |"
                % (
                    ident,
                    NAMES[b],
                    faults(reports),
                    cell(reports, lambda r: r["latency_us"]["p50"], us),
                    cell(reports, lambda r: r["latency_us"]["p99"], us),
                    cell(reports, lambda r: r["latency_us"]["p999"], us),
                    cell(reports, lambda r: r["latency_us"]["max"], us),
                    cell(reports, lambda r: r["broker_process"]["cpu_pct"], us),
                )
            )
        p99 = lambda r: r["latency_us"]["p99"]
        mine = median(runs.get((ident, "midge"), []), p99)
        mosq = median(runs.get((ident, "mosquitto"), []), p99)
        if mine and mosq:
            out.append(
                "| %s | **Midge p99 ÷ Mosquitto p99** | | **%.2fx** | | | |"
                % (ident, mine / mosq)
            )
    out.append("")


def connections(runs, out):
    rows = sorted(ids(runs, "conns"), key=order_key)
    if not rows:
        return
    brokers = [b for b in brokers_present(runs) if b != "midge-sync"]
    for ident in rows:
        n = median(runs.get((ident, brokers[0]), []), lambda r: r["subscribers"])
        out.append(
            "### Idle connections (%s, each subscribed to its own topic)\n"
            % (si(n) if n else ident)
        )
        out.append("| metric | " + " | ".join(NAMES[b] for b in brokers) + " | Midge vs best peer |")
        out.append("|---" * (len(brokers) + 2) + "|")
        metrics = [
            ("connect + subscribe per second", lambda r: r["connect_rate"], si, True),
            (
                "broker memory per connection (bytes)",
                lambda r: r["broker_process"]["bytes_per_connection"],
                lambda v: "%.0f" % v,
                False,
            ),
            (
                "broker RSS with all connected (MB)",
                lambda r: r["broker_process"]["rss_connected"] / 1e6,
                lambda v: "%.1f" % v,
                False,
            ),
            ("connections refused or failed", lambda r: r["connect_failures"], lambda v: "%d" % v, None),
            ("probe messages lost", lambda r: r["lost"], lambda v: "%d" % v, None),
        ]
        for label, get, fmt, higher_better in metrics:
            cells = [cell(runs.get((ident, b), []), get, fmt) for b in brokers]
            ratio = ""
            if higher_better is not None:
                mine = median(runs.get((ident, "midge"), []), get)
                peers = [median(runs.get((ident, p), []), get) for p in PEERS if p in brokers]
                peers = [p for p in peers if p]
                if mine and peers:
                    best = max(peers) if higher_better else min(peers)
                    ratio = "%.2fx" % (mine / best)
            out.append("| %s | %s | %s |" % (label, " | ".join(cells), ratio))
        out.append("")


def correctness(runs, out):
    bad = []
    for (ident, broker), reports in sorted(runs.items()):
        for i, r in enumerate(reports):
            problems = []
            if "scenario" not in r:
                problems.append("no report: %s" % str(r.get("error", ""))[:200].strip())
            for key in ("lost", "duplicates", "out_of_order", "unexpected", "stalls", "unacked"):
                if r.get(key):
                    problems.append("%s=%s" % (key, r[key]))
            if r.get("errors"):
                problems.append("errors: %s" % "; ".join(r["errors"][:2]))
            if problems:
                bad.append("- %s on %s (rep %d): %s" % (ident, NAMES.get(broker, broker), i + 1, ", ".join(problems)))
    out.append("### Losses, duplicates, reordering, errors\n")
    out.extend(bad or ["None in any run."])
    out.append("")
    loads = [r["_load1"] for rs in runs.values() for r in rs if "_load1" in r]
    if loads:
        out.append(
            "Load average (1 min) at the start of the runs: %.2f–%.2f (median %.2f)."
            % (min(loads), max(loads), statistics.median(loads))
        )
        out.append("")


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    runs = load(sys.argv[1])
    if not runs:
        sys.exit("no reports in %s" % sys.argv[1])
    out = []
    meta = os.path.join(sys.argv[1], "meta.txt")
    if os.path.exists(meta):
        with open(meta) as f:
            out.append("```\n" + f.read().strip() + "\n```\n")
    throughput(runs, out)
    latency(runs, out)
    connections(runs, out)
    correctness(runs, out)
    print("\n".join(out))


if __name__ == "__main__":
    main()
