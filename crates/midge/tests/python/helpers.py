"""Helpers for Midge's paho-mqtt interoperability scripts.

Each script talks to a running `midge serve` (port given with --port), checks nothing itself
beyond what it needs to proceed, and prints one JSON object with what it observed on its last
line of stdout; on any failure it prints a message to stderr and exits non-zero. Every wait
has a deadline, and a watchdog alarm ends the script if anything hangs.
"""

import argparse
import base64
import json
import queue
import signal
import sys
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

WAIT = 5.0
"""Seconds to wait for anything expected."""


class Failure(Exception):
    """Something expected did not happen."""


def main(run):
    """Parses --port/--protocol, arms a watchdog, runs `run(args)` and prints its result."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--protocol", choices=["3.1.1", "5"], default="5")
    parser.add_argument("--child", default=None, help="internal: run as a helper process")
    args = parser.parse_args()

    def watchdog(_sig, _frame):
        print("watchdog: script took longer than 15 s", file=sys.stderr, flush=True)
        sys.exit(3)

    signal.signal(signal.SIGALRM, watchdog)
    signal.alarm(15)
    try:
        result = run(args)
    except Failure as e:
        print(f"FAILED: {e}", file=sys.stderr, flush=True)
        sys.exit(1)
    print(json.dumps(result, sort_keys=True), flush=True)
    sys.exit(0)


def protocol(name):
    return mqtt.MQTTv5 if name == "5" else mqtt.MQTTv311


def message_json(msg):
    """A received message as JSON-friendly data (payload as text, properties by name)."""
    out = {
        "topic": msg.topic,
        "payload": msg.payload.decode("utf-8", "replace"),
        "qos": msg.qos,
        "retain": bool(msg.retain),
    }
    props = getattr(msg, "properties", None)
    if props is not None:
        p = {}
        for name in (
            "PayloadFormatIndicator",
            "MessageExpiryInterval",
            "ContentType",
            "ResponseTopic",
            "TopicAlias",
        ):
            if hasattr(props, name):
                p[name] = getattr(props, name)
        if hasattr(props, "CorrelationData"):
            p["CorrelationData"] = base64.b64encode(props.CorrelationData).decode()
        if hasattr(props, "UserProperty"):
            p["UserProperty"] = [list(kv) for kv in props.UserProperty]
        if hasattr(props, "SubscriptionIdentifier"):
            ids = props.SubscriptionIdentifier
            p["SubscriptionIdentifier"] = ids if isinstance(ids, list) else [ids]
        out["properties"] = p
    return out


class Client:
    """A paho client driven synchronously: each call waits (bounded) for its acknowledgement."""

    def __init__(self, args, client_id, clean=True, session_expiry=None, will=None):
        self.args = args
        self.proto = protocol(args.protocol)
        self.v5 = self.proto == mqtt.MQTTv5
        kwargs = {
            "callback_api_version": CallbackAPIVersion.VERSION2,
            "client_id": client_id,
            "protocol": self.proto,
        }
        if not self.v5:
            kwargs["clean_session"] = clean
        self.clean = clean
        self.session_expiry = session_expiry
        self.c = mqtt.Client(**kwargs)
        if will is not None:
            self.c.will_set(**will)
        self.messages = queue.Queue()
        self.connected = threading.Event()
        self.connack = None
        self.subacks = {}
        self.sub_event = threading.Condition()
        self.c.on_connect = self._on_connect
        self.c.on_message = self._on_message
        self.c.on_subscribe = self._on_subscribe

    def _on_connect(self, _c, _u, flags, reason_code, properties):
        self.connack = {
            "session_present": bool(flags.session_present),
            "reason_code": int(reason_code.value),
        }
        if self.v5 and properties is not None:
            self.connack["topic_alias_maximum"] = getattr(properties, "TopicAliasMaximum", 0)
        self.connected.set()

    def _on_message(self, _c, _u, msg):
        self.messages.put(message_json(msg))

    def _on_subscribe(self, _c, _u, mid, reason_codes, _props):
        with self.sub_event:
            self.subacks[mid] = [int(rc.value) for rc in reason_codes]
            self.sub_event.notify_all()

    def connect(self):
        kwargs = {}
        if self.v5:
            kwargs["clean_start"] = self.clean
            if self.session_expiry is not None:
                props = Properties(PacketTypes.CONNECT)
                props.SessionExpiryInterval = self.session_expiry
                kwargs["properties"] = props
        self.c.connect("127.0.0.1", self.args.port, keepalive=30, **kwargs)
        self.c.loop_start()
        if not self.connected.wait(WAIT):
            raise Failure(f"{self.c._client_id!r}: no CONNACK within {WAIT} s")
        if self.connack["reason_code"] != 0:
            raise Failure(f"connection refused: {self.connack}")
        return self

    def subscribe(self, topic, qos, sub_id=None, **options):
        props = None
        if sub_id is not None:
            props = Properties(PacketTypes.SUBSCRIBE)
            props.SubscriptionIdentifier = sub_id
        if self.v5:
            opts = mqtt.SubscribeOptions(qos=qos, **options)
            rc, mid = self.c.subscribe(topic, options=opts, properties=props)
        else:
            rc, mid = self.c.subscribe(topic, qos)
        if rc != mqtt.MQTT_ERR_SUCCESS:
            raise Failure(f"subscribe {topic}: {rc}")
        deadline = time.monotonic() + WAIT
        with self.sub_event:
            while mid not in self.subacks:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Failure(f"no SUBACK for {topic}")
                self.sub_event.wait(left)
            return self.subacks[mid]

    def publish(self, topic, payload, qos=0, retain=False, properties=None):
        info = self.c.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        info.wait_for_publish(WAIT)
        if not info.is_published():
            raise Failure(f"publish to {topic} at QoS {qos} not completed within {WAIT} s")

    def receive(self, n, timeout=WAIT):
        """The next `n` messages, failing if they do not arrive in time."""
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < n:
            left = deadline - time.monotonic()
            try:
                out.append(self.messages.get(timeout=max(left, 0.001)))
            except queue.Empty:
                raise Failure(f"received {len(out)} of {n} messages: {out}") from None
        return out

    def quiet(self, seconds=0.3):
        """Messages that arrive within `seconds` (expected to be none)."""
        time.sleep(seconds)
        out = []
        while not self.messages.empty():
            out.append(self.messages.get_nowait())
        return out

    def disconnect(self):
        self.c.disconnect()
        self.c.loop_stop()


def publish_properties(**values):
    props = Properties(PacketTypes.PUBLISH)
    for k, v in values.items():
        setattr(props, k, v)
    return props
