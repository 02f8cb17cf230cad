"""Persistent sessions with paho-mqtt: MQTT 3.1.1 Clean Session 0, MQTT 5 Clean Start 0 with a
Session Expiry Interval. Messages published while the client is away are delivered when it
comes back; with MQTT 5 a session whose expiry has passed is gone."""

import time

from helpers import Client, main


def run(args):
    p = args.protocol
    v5 = p == "5"
    cid = f"paho-sess-{p}"

    def persistent(expiry=60, client_id=cid):
        return Client(args, client_id, clean=False, session_expiry=expiry if v5 else None)

    c = persistent().connect()
    first_connack = c.connack
    c.subscribe(f"sess/{p}/#", 2)
    c.disconnect()
    time.sleep(0.2)

    pub = Client(args, f"paho-sess-pub-{p}").connect()
    for i in range(3):
        pub.publish(f"sess/{p}/q1", f"missed-{i}", qos=1)
    pub.publish(f"sess/{p}/q2", "missed-q2", qos=2)

    c = persistent().connect()
    resumed_connack = c.connack
    missed = c.receive(4)
    missed += c.quiet()
    c.disconnect()

    result = {"first": first_connack, "resumed": resumed_connack, "missed": missed}
    if v5:
        # Session Expiry Interval 1 s: gone two seconds after the disconnect.
        short = persistent(expiry=1, client_id=f"{cid}-short").connect()
        short.subscribe(f"sess/{p}/#", 1)
        short.disconnect()
        time.sleep(2.2)
        pub.publish(f"sess/{p}/q1", "after-expiry", qos=1)
        short = persistent(expiry=1, client_id=f"{cid}-short").connect()
        result["expired"] = short.connack
        result["expired_messages"] = short.quiet()
        short.disconnect()
    pub.disconnect()
    return result


if __name__ == "__main__":
    main(run)
