"""Load for the kill -9 crash test (crates/midge/tests/crash.rs), with paho-mqtt 2.x clients.

Runs, against a `midge serve` that the test kills with SIGKILL and restarts on the same port
and data directory, for as long as the test wants:

- publishers with unique payload ids: QoS 1 (MQTT 3.1.1 persistent session, MQTT 5 clean
  session) and QoS 2 (MQTT 3.1.1 and MQTT 5, persistent sessions); the QoS 2 ones reuse a
  small range of packet identifiers, as many embedded clients do;
- persistent subscribers to `crash/#` at QoS 2 (MQTT 3.1.1 and 5): two stay online (and
  reconnect after each crash), two go offline and come back at random;
- a publisher of QoS 1 retained updates to a few `crashret/N` topics, with increasing values.

Every client keeps its paho Client object (and so its in-memory session state) for the whole
run, reconnecting with Clean Session 0 / Clean Start 0, so the QoS 2 receive state of a
subscriber survives broker restarts.

It prints one event per line on stdout, which the test collects and checks:

  PUB <id> <mid> <rc>       a publish was handed to paho (packet id, paho's return code)
  ACK <id> <mid>            a publish was acknowledged (QoS 1: PUBACK, QoS 2: PUBREC, success)
  COMP <id> <mid> <reason>  a QoS 2 publish completed (PUBCOMP)
  RECV <sub> <id> <qos> <mid> <dup>
                            a subscriber was handed a message (QoS 2: on PUBREL)
  RACK <topic> <n>          retained update n of topic was acknowledged (PUBACK)
  READY                     every subscription is acknowledged; load is running
  ERROR <text>              something the broker must never do (e.g. a lost session)
  DONE <json>               after `finish` on stdin: final counters

On `finish` (stdin) it stops publishing, waits until everything published is acknowledged and
every subscriber has received every acknowledged message (bounded waits), prints DONE and
exits.
"""

import argparse
import json
import random
import struct
import sys
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

OUT_LOCK = threading.Lock()
TRACE = True
STOP = threading.Event()


def emit(line):
    with OUT_LOCK:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


class Client(mqtt.Client):
    """A paho client that reports PUBREC (for QoS 2 "acknowledged") and, optionally,
    reuses a small range of packet identifiers."""

    def __init__(self, name, protocol, small_ids=False):
        super().__init__(
            CallbackAPIVersion.VERSION2,
            client_id=name,
            protocol=protocol,
            clean_session=None if protocol == mqtt.MQTTv5 else False,
        )
        self.name = name
        self.small_ids = small_ids
        self.on_pubrec_ok = None
        self.ever_connected = False
        self.reconnect_delay_set(0.05, 0.3)
        self.max_inflight_messages_set(20)
        self.max_queued_messages_set(0)

    def _mid_generate(self):
        if not self.small_ids:
            return super()._mid_generate()
        with self._mid_generate_mutex:
            for _ in range(200):
                self._last_mid = self._last_mid % 64 + 1
                if self._last_mid not in self._out_messages:
                    return self._last_mid
            raise RuntimeError("no free packet identifier")

    def _messages_reconnect_reset_out(self):
        # paho 2.1 bug: every reconnect attempt runs this reset, and a second attempt before a
        # CONNACK (the broker is still down) turns "resend PUBREL" back into "resend PUBLISH"
        # with DUP 0, re-publishing a QoS 2 message whose PUBREL was already sent (forbidden by
        # [MQTT-4.3.3-4]; the broker rightly takes it for a new message once the first one is
        # complete). Keep such messages waiting for PUBCOMP so the reset yields PUBREL again.
        with self._out_message_mutex:
            for m in self._out_messages.values():
                if m.qos == 2 and m.state == mqtt.mqtt_ms_resend_pubrel:
                    m.state = mqtt.mqtt_ms_wait_for_pubcomp
            super()._messages_reconnect_reset_out()

    def _send_publish(self, mid, topic, payload=b"", qos=0, retain=False, dup=False, info=None, properties=None):
        if TRACE and qos == 2:
            p = payload.decode() if isinstance(payload, (bytes, bytearray)) else str(payload)
            emit(f"SEND {p} {mid} {int(dup)} {self._state}")
        return super()._send_publish(mid, topic, payload, qos, retain, dup, info, properties)

    def _send_pubrel(self, mid):
        if TRACE:
            msg = self._out_messages.get(mid)
            emit(f"SENDREL {msg.payload.decode() if msg else '?'} {mid}")
        return super()._send_pubrel(mid)

    def _handle_pubrec(self):
        packet = self._in_packet["packet"]
        (mid,) = struct.unpack("!H", packet[:2])
        reason = 0
        if self._protocol == mqtt.MQTTv5 and self._in_packet["remaining_length"] > 2:
            reason = packet[2]
        msg = self._out_messages.get(mid)
        if msg is not None and reason >= 0x80:
            emit(f"ERROR refused {msg.payload.decode()} PUBREC 0x{reason:02x}")
        elif msg is not None and self.on_pubrec_ok is not None:
            self.on_pubrec_ok(msg.payload.decode(), mid)
        return super()._handle_pubrec()


def start(client, port, session_expiry):
    """Connects in the background (retrying while the broker is down) with a persistent
    session when `session_expiry` > 0."""
    if client._protocol == mqtt.MQTTv5:
        props = Properties(PacketTypes.CONNECT)
        if session_expiry:
            props.SessionExpiryInterval = session_expiry
        client.connect_async(
            "127.0.0.1",
            port,
            keepalive=10,
            clean_start=mqtt.MQTT_CLEAN_START_FIRST_ONLY if session_expiry else True,
            properties=props,
        )
    else:
        client.connect_async("127.0.0.1", port, keepalive=10)
    client.loop_start()


def watch_sessions(client, persistent):
    """Reports a persistent session the broker lost: after the first CONNACK every
    reconnect must find the session (Session Present 1)."""

    def on_connect(c, _userdata, flags, reason_code, _properties):
        emit(f"CONNECT {c.name} {int(flags.session_present)} {reason_code}")
        if reason_code.is_failure:
            return
        if persistent and c.ever_connected and not flags.session_present:
            emit(f"ERROR session-lost {c.name}")
        c.ever_connected = True
        if c.on_connected is not None:
            c.on_connected()

    def on_disconnect(c, _userdata, _flags, reason_code, _properties):
        emit(f"DISCONNECT {c.name} {reason_code}")

    client.on_connected = None
    client.on_connect = on_connect
    client.on_disconnect = on_disconnect


class Publisher:
    def __init__(self, name, protocol, qos, persistent, port, rate):
        self.name = name
        self.qos = qos
        self.topic = f"crash/{name}"
        self.rate = rate
        self.port = port
        self.persistent = persistent
        self.client = Client(name, protocol, small_ids=(qos == 2))
        self.lock = threading.Condition()
        self.outstanding = set()
        self.acked = set()
        self.sent = 0
        watch_sessions(self.client, persistent)
        self.client.on_publish = self.on_publish
        self.client.on_pubrec_ok = self.on_ack if qos == 2 else None

    def on_ack(self, payload, mid):
        with self.lock:
            if payload not in self.acked:
                self.acked.add(payload)
                emit(f"ACK {payload} {mid}")

    def on_publish(self, client, _userdata, mid, reason_code, _properties):
        msg = client._out_messages.get(mid)
        if msg is None:
            return
        payload = msg.payload.decode()
        ok = not reason_code.is_failure
        if self.qos == 1:
            if ok:
                self.on_ack(payload, mid)
            else:
                emit(f"ERROR refused {payload} PUBACK {reason_code}")
        else:
            # PUBCOMP. "Packet identifier not found" (0x92) is the right answer to a PUBREL
            # resent after a crash that came after the broker had completed the message.
            emit(f"COMP {payload} {mid} {reason_code.value}")
        with self.lock:
            self.outstanding.discard(payload)
            self.lock.notify_all()

    def run(self):
        start(self.client, self.port, 3600 if self.persistent else 0)
        n = 0
        while not STOP.is_set():
            with self.lock:
                while len(self.outstanding) >= 40 and not STOP.is_set():
                    self.lock.wait(0.1)
                if STOP.is_set():
                    break
                n += 1
                payload = f"{self.name}:{n:06d}"
                self.outstanding.add(payload)
                self.sent = n
            info = self.client.publish(self.topic, payload, qos=self.qos)
            emit(f"PUB {payload} {info.mid} {info.rc}")
            time.sleep(random.uniform(0, 2.0 / self.rate))

    def drain(self, deadline):
        with self.lock:
            while self.outstanding and time.time() < deadline:
                self.lock.wait(0.1)
            return len(self.outstanding)


class Subscriber:
    def __init__(self, name, protocol, port, flapping):
        self.name = name
        self.port = port
        self.flapping = flapping
        self.client = Client(name, protocol)
        self.subscribed = threading.Event()
        self.online = False
        self.received = {}
        self.lock = threading.Lock()
        watch_sessions(self.client, True)
        self.client.on_connected = self.on_connected
        self.client.on_message = self.on_message
        self.client.on_subscribe = lambda *a: self.subscribed.set()

    def on_connected(self):
        if not self.subscribed.is_set():
            self.client.subscribe("crash/#", qos=2)

    def on_message(self, _client, _userdata, msg):
        payload = msg.payload.decode()
        with self.lock:
            self.received[payload] = self.received.get(payload, 0) + 1
        emit(f"RECV {self.name} {payload} {msg.qos} {msg.mid} {int(msg.dup)}")

    def connect(self):
        start(self.client, self.port, 3600)
        self.online = True

    def go_offline(self):
        # A clean DISCONNECT: the session (and its queue) stays on the broker.
        self.client.disconnect()
        self.client.loop_stop()
        self.online = False

    def flap(self):
        while not STOP.is_set():
            time.sleep(random.uniform(0.3, 1.5))
            if STOP.is_set():
                break
            self.go_offline()
            time.sleep(random.uniform(0.3, 1.5))
            self.connect()


class Retainer:
    def __init__(self, port, topics, rate):
        self.client = Client("retainer", mqtt.MQTTv311)
        self.port = port
        self.topics = [f"crashret/{i}" for i in range(topics)]
        self.rate = rate
        self.lock = threading.Condition()
        self.outstanding = set()
        watch_sessions(self.client, True)
        self.client.on_publish = self.on_publish

    def on_publish(self, client, _userdata, mid, reason_code, _properties):
        msg = client._out_messages.get(mid)
        if msg is None:
            return
        emit(f"RACK {msg.topic} {msg.payload.decode()}")
        with self.lock:
            self.outstanding.discard(mid)
            self.lock.notify_all()

    def run(self):
        start(self.client, self.port, 3600)
        n = 0
        while not STOP.is_set():
            n += 1
            for topic in self.topics:
                with self.lock:
                    while len(self.outstanding) >= 20 and not STOP.is_set():
                        self.lock.wait(0.1)
                info = self.client.publish(topic, str(n), qos=1, retain=True)
                with self.lock:
                    self.outstanding.add(info.mid)
            time.sleep(random.uniform(0, 2.0 / self.rate))

    def drain(self, deadline):
        with self.lock:
            while self.outstanding and time.time() < deadline:
                self.lock.wait(0.1)
            return len(self.outstanding)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rate", type=float, default=60.0, help="messages/s per publisher")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    random.seed(args.seed)
    v3, v5 = mqtt.MQTTv311, mqtt.MQTTv5

    subscribers = [
        Subscriber("sub-on-3", v3, args.port, flapping=False),
        Subscriber("sub-on-5", v5, args.port, flapping=False),
        Subscriber("sub-flap-3", v3, args.port, flapping=True),
        Subscriber("sub-flap-5", v5, args.port, flapping=True),
    ]
    for s in subscribers:
        s.connect()
    for s in subscribers:
        if not s.subscribed.wait(20):
            emit(f"ERROR no-suback {s.name}")
            sys.exit(1)
    publishers = [
        Publisher("q1-3", v3, 1, True, args.port, args.rate),
        Publisher("q1-5clean", v5, 1, False, args.port, args.rate),
        Publisher("q2-3", v3, 2, True, args.port, args.rate),
        Publisher("q2-5", v5, 2, True, args.port, args.rate),
    ]
    retainer = Retainer(args.port, 4, args.rate / 4)
    threads = [threading.Thread(target=p.run, daemon=True) for p in publishers]
    threads.append(threading.Thread(target=retainer.run, daemon=True))
    threads += [
        threading.Thread(target=s.flap, daemon=True) for s in subscribers if s.flapping
    ]
    for t in threads:
        t.start()
    emit("READY")

    for line in sys.stdin:
        if line.strip() == "finish":
            break
    STOP.set()
    for t in threads:
        t.join(10)
    deadline = time.time() + 60
    unacked = {p.name: p.drain(deadline) for p in publishers}
    unacked["retainer"] = retainer.drain(deadline)
    for s in subscribers:
        if not s.online:
            s.connect()
    acked = set()
    for p in publishers:
        with p.lock:
            acked |= p.acked
    missing = {}
    while time.time() < deadline:
        missing = {}
        for s in subscribers:
            with s.lock:
                n = sum(1 for m in acked if m not in s.received)
            if n:
                missing[s.name] = n
        if not missing:
            break
        time.sleep(0.1)
    # Let late duplicates show up, then stop.
    time.sleep(0.5)
    for s in subscribers:
        s.client.disconnect()
    for c in [p.client for p in publishers] + [retainer.client]:
        c.disconnect()
    for c in [s.client for s in subscribers] + [p.client for p in publishers] + [retainer.client]:
        c.loop_stop()
    emit(
        "DONE "
        + json.dumps(
            {
                "sent": {p.name: p.sent for p in publishers},
                "unacked": unacked,
                "missing_at_end": missing,
            },
            sort_keys=True,
        )
    )


if __name__ == "__main__":
    main()
