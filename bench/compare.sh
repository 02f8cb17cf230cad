#!/usr/bin/env bash
# bench/compare.sh: runs the same `midge bench` scenarios against Midge, Mosquitto and rumqttd
# back to back on loopback, and prints comparison tables with ratios (Midge ÷ best peer).
#
# Installs the peers when missing: Debian's mosquitto (apt-get) and rumqttd 0.20.0
# (`cargo install`, several minutes the first time; cached in ~/.cargo/bin). Every broker is
# started fresh for every run, on a free loopback port with its own temporary configuration,
# and stopped by its PID. For each scenario the brokers run one after the other, so slow drift
# in the machine's load affects them alike.
#
# Usage: bench/compare.sh [options]
#   -d SECS          publishing time per run (default 5; the first second is warm-up)
#   -r REPS          repetitions of every run; tables show medians (default 1)
#   -o DIR           where the raw JSON reports go (default bench/results/DATE)
#   -s LIST          scenarios, comma-separated: fanin,fanout,pairs,wildcard,latency,conns
#   -b LIST          brokers: midge,midge-sync,mosquitto,rumqttd
#   -q LIST          QoS levels of the throughput scenarios (default 0,1,2)
#   -z LIST          payload sizes of the throughput scenarios (default 64,1024)
#   -c N             connections in the conns scenario (default 10000)
#   --tables DIR     only print the tables of an earlier run's DIR
# Environment: MIDGE (the midge binary; default target/release/midge, built if missing).
#
# Benchmarks report; they never pass or fail. Runs are short and bounded: each `midge bench`
# stops publishing after -d seconds and drains for at most 60 s.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=5
REPS=1
OUT=""
SCENARIOS="fanin,fanout,pairs,wildcard,latency,conns"
BROKERS="midge,midge-sync,mosquitto,rumqttd"
QOS_LEVELS="0,1,2"
SIZES="64,1024"
CONNS=10000
TABLES_ONLY=""
while [ $# -gt 0 ]; do
  case "$1" in
    -d) DURATION="$2"; shift 2 ;;
    -r) REPS="$2"; shift 2 ;;
    -o) OUT="$2"; shift 2 ;;
    -s) SCENARIOS="$2"; shift 2 ;;
    -b) BROKERS="$2"; shift 2 ;;
    -q) QOS_LEVELS="$2"; shift 2 ;;
    -z) SIZES="$2"; shift 2 ;;
    -c) CONNS="$2"; shift 2 ;;
    --tables) TABLES_ONLY="$2"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "compare.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
done
OUT="${OUT:-bench/results/$(date +%Y%m%d-%H%M%S)}"
MIDGE="${MIDGE:-target/release/midge}"
has() { case ",$1," in *",$2,"*) return 0 ;; *) return 1 ;; esac; }

if [ -n "$TABLES_ONLY" ]; then
  exec python3 "$(dirname "$0")/tables.py" "$TABLES_ONLY"
fi

# --- Peers --------------------------------------------------------------------------------
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
MOSQUITTO="$(command -v mosquitto || true)"
[ -n "$MOSQUITTO" ] || [ ! -x /usr/sbin/mosquitto ] || MOSQUITTO=/usr/sbin/mosquitto
if has "$BROKERS" mosquitto && [ -z "$MOSQUITTO" ]; then
  echo "compare.sh: installing Debian's mosquitto" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq mosquitto >/dev/null
  MOSQUITTO=/usr/sbin/mosquitto
fi
RUMQTTD="$(command -v rumqttd || true)"
[ -n "$RUMQTTD" ] || [ ! -x "$HOME/.cargo/bin/rumqttd" ] || RUMQTTD="$HOME/.cargo/bin/rumqttd"
if has "$BROKERS" rumqttd && [ -z "$RUMQTTD" ]; then
  echo "compare.sh: installing rumqttd 0.20.0 (cargo install; takes minutes)" >&2
  # With --locked first, as published; its lock file's metrics 0.22.1 may not build on newer
  # compilers, so fall back to fresh dependency resolution.
  cargo install rumqttd --version 0.20.0 --locked \
    || cargo install rumqttd --version 0.20.0
  RUMQTTD="$HOME/.cargo/bin/rumqttd"
fi
if [ ! -x "$MIDGE" ]; then
  echo "compare.sh: building $MIDGE" >&2
  cargo build --release -p midge
fi

mkdir -p "$OUT"
WORK="$(mktemp -d)"
BROKER_PID=""
cleanup() {
  if [ -n "$BROKER_PID" ]; then kill "$BROKER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_broker NAME: starts a fresh broker; sets BROKER_PID and PORT.
start_broker() {
  local name="$1" dir="$WORK/$1"
  rm -rf "$dir"
  mkdir -p "$dir"
  PORT="$(free_port)"
  case "$name" in
    midge|midge-sync)
      local durability=none
      [ "$name" = midge-sync ] && durability=sync
      cat >"$dir/midge.toml" <<EOF
[[listener]]
bind = "127.0.0.1:$PORT"
allow_anonymous = true

[limits]
max_inflight_messages = 1000
max_queued_messages = 0

[store]
durability = "$durability"
data_dir = "$dir/data"
EOF
      RUST_LOG=warn "$MIDGE" serve -c "$dir/midge.toml" >"$dir/log" 2>&1 &
      ;;
    mosquitto)
      cat >"$dir/mosquitto.conf" <<EOF
listener $PORT 127.0.0.1
allow_anonymous true
persistence false
max_connections -1
max_inflight_messages 1000
max_queued_messages 0
max_keepalive 65535
set_tcp_nodelay true
sys_interval 0
log_dest stderr
log_type error
log_type warning
EOF
      [ "$(id -u)" -ne 0 ] || echo "user root" >>"$dir/mosquitto.conf"
      "$MOSQUITTO" -c "$dir/mosquitto.conf" >"$dir/log" 2>&1 &
      ;;
    rumqttd)
      cat >"$dir/rumqttd.toml" <<EOF
id = 0

[router]
id = 0
max_connections = 60010
max_outgoing_packet_count = 200
max_segment_size = 104857600
max_segment_count = 10

[v4.1]
name = "v4-1"
listen = "127.0.0.1:$PORT"
next_connection_delay_ms = 0
    [v4.1.connections]
    connection_timeout_ms = 60000
    max_payload_size = 1048576
    max_inflight_count = 500
    dynamic_filters = true
EOF
      "$RUMQTTD" -c "$dir/rumqttd.toml" >"$dir/log" 2>&1 &
      ;;
  esac
  BROKER_PID=$!
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then return 0; fi
    if ! kill -0 "$BROKER_PID" 2>/dev/null; then break; fi
    sleep 0.1
  done
  echo "compare.sh: $name did not start:" >&2
  cat "$dir/log" >&2
  stop_broker
  return 1
}

stop_broker() {
  [ -n "$BROKER_PID" ] || return 0
  kill "$BROKER_PID" 2>/dev/null || true
  for _ in $(seq 50); do
    kill -0 "$BROKER_PID" 2>/dev/null || break
    sleep 0.1
  done
  kill -9 "$BROKER_PID" 2>/dev/null || true
  wait "$BROKER_PID" 2>/dev/null || true
  BROKER_PID=""
}

# run ID BROKER REP ARGS...: one `midge bench` against a fresh BROKER.
run() {
  local id="$1" broker="$2" rep="$3"
  shift 3
  local file="$OUT/$id.$broker.$rep.json"
  start_broker "$broker" || { echo "{\"error\": \"$broker did not start\"}" >"$file"; return 0; }
  cut -d' ' -f1 /proc/loadavg >"$file.load"
  printf '%-22s %-11s rep %s ... ' "$id" "$broker" "$rep" >&2
  if "$MIDGE" bench "$@" -h 127.0.0.1 -p "$PORT" --pid "$BROKER_PID" --json --quiet \
      >"$file" 2>"$file.err"; then
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("%.0f msg/s received, lost %d" % (r["receive_rate"], r["lost"]))' "$file" >&2
  else
    echo "failed: $(tail -1 "$file.err")" >&2
    # Keep the partial report if there is one.
    python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$file" 2>/dev/null \
      || echo "{\"error\": $(python3 -c 'import json,sys; print(json.dumps(open(sys.argv[1]).read()[-500:]))' "$file.err")}" >"$file"
  fi
  stop_broker
}

{
  echo "date: $(date -Is)"
  echo "machine: $(nproc) CPUs, $(uname -sr), load at start: $(cat /proc/loadavg)"
  echo "midge: $("$MIDGE" --version)"
  [ -z "$MOSQUITTO" ] || echo "mosquitto: $("$MOSQUITTO" -h 2>&1 | head -1)"
  [ -z "$RUMQTTD" ] || echo "rumqttd: 0.20.0 ($RUMQTTD)"
  echo "duration: $DURATION s per run, $REPS repetition(s); connections (conns): $CONNS"
} | tee "$OUT/meta.txt" >&2

IFS=, read -r -a QS <<<"$QOS_LEVELS"
IFS=, read -r -a SZ <<<"$SIZES"
IFS=, read -r -a BR <<<"$BROKERS"
WARMUP=1
if python3 -c "import sys; sys.exit(0 if float('$DURATION') > 2 else 1)"; then :; else WARMUP=0; fi

for rep in $(seq "$REPS"); do
  for scenario in fanin fanout pairs wildcard; do
    has "$SCENARIOS" "$scenario" || continue
    case "$scenario" in
      fanin) shape=(-c 8) ;;
      fanout) shape=(-S 100) ;;
      pairs) shape=(-c 500) ;;
      wildcard) shape=(-c 8 -S 200) ;;
    esac
    for q in "${QS[@]}"; do
      for size in "${SZ[@]}"; do
        id="${scenario}_q$q"
        [ "$size" = 64 ] || id="${id}_$((size / 1024))k"
        for broker in "${BR[@]}"; do
          # Durability only changes QoS 1/2 runs.
          [ "$broker" != midge-sync ] || [ "$q" != 0 ] || continue
          run "$id" "$broker" "$rep" "$scenario" "${shape[@]}" -q "$q" -s "$size" \
            -d "$DURATION" --warmup "$WARMUP"
        done
      done
    done
  done
  if has "$SCENARIOS" latency; then
    for q in 0 1; do
      for broker in "${BR[@]}"; do
        [ "$broker" != midge-sync ] || [ "$q" != 0 ] || continue
        run "latency_q$q" "$broker" "$rep" latency -c 100 -r 10000 -q "$q" -d "$DURATION" \
          --warmup "$WARMUP"
      done
    done
  fi
  if has "$SCENARIOS" conns; then
    for broker in "${BR[@]}"; do
      [ "$broker" != midge-sync ] || continue
      # The probe messages go at QoS 1, so their pace follows the acknowledgements: a 10,000
      # message QoS 0 burst to 10,000 topics overwhelms rumqttd's router (it drops most).
      run "conns_$CONNS" "$broker" "$rep" conns -c "$CONNS" -d 3 -q 1 --drain 5
    done
  fi
done

python3 "$(dirname "$0")/tables.py" "$OUT" | tee "$OUT/tables.md"
