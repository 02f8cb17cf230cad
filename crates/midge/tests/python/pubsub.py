"""paho-mqtt publishes and subscribes through Midge at QoS 0, 1 and 2, in both directions,
with `+` and `#` filters. Prints what each client received."""

from helpers import Client, main


def run(args):
    p = args.protocol
    sub = Client(args, f"paho-sub-{p}").connect()
    pub = Client(args, f"paho-pub-{p}").connect()
    granted = [
        sub.subscribe(f"paho/{p}/+/data", 2),
        sub.subscribe(f"paho/{p}/all/#", 1),
        pub.subscribe(f"paho/{p}/back/#", 2),
    ]
    for qos in (0, 1, 2):
        pub.publish(f"paho/{p}/dev{qos}/data", f"data-{qos}", qos)
        pub.publish(f"paho/{p}/all/x/y", f"all-{qos}", qos)
        pub.publish(f"paho/{p}/dev{qos}/other", "no-match", qos)
        pub.publish(f"paho/{p}/dev{qos}/x/data", "no-match", qos)
        sub.publish(f"paho/{p}/back/{qos}", f"back-{qos}", qos)
    result = {
        "connack": [sub.connack, pub.connack],
        "granted": granted,
        "sub": sub.receive(6),
        "pub": pub.receive(3),
    }
    result["extra"] = sub.quiet() + pub.quiet(0)
    sub.disconnect()
    pub.disconnect()
    return result


if __name__ == "__main__":
    main(run)
