"""Retained messages with paho-mqtt: stored, sent with RETAIN to new subscribers, sent
without it on live subscriptions, and cleared by an empty retained message."""

from helpers import Client, main


def run(args):
    p = args.protocol
    topic = f"ret/{p}/state"
    pub = Client(args, f"paho-ret-pub-{p}").connect()
    pub.publish(topic, "old", qos=1, retain=True)
    pub.publish(topic, "current", qos=1, retain=True)

    first = Client(args, f"paho-ret-first-{p}").connect()
    first.subscribe(f"ret/{p}/#", 2)
    at_subscribe = first.receive(1)
    at_subscribe += first.quiet()

    pub.publish(topic, "live", qos=1, retain=True)
    live = first.receive(1)

    pub.publish(topic, "", qos=1, retain=True)
    cleared_live = first.receive(1)

    later = Client(args, f"paho-ret-later-{p}").connect()
    later.subscribe(f"ret/{p}/#", 1)
    after_clear = later.quiet()
    for c in (pub, first, later):
        c.disconnect()
    return {
        "at_subscribe": at_subscribe,
        "live": live,
        "cleared_live": cleared_live,
        "after_clear": after_clear,
    }


if __name__ == "__main__":
    main(run)
