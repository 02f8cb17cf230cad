"""MQTT 5 properties with paho-mqtt: application properties forwarded, Subscription
Identifiers returned, a request/response exchange through Response Topic and Correlation
Data, and Message Expiry (counted down; an expired message is not delivered)."""

import time

from helpers import Client, main, publish_properties


def run(args):
    sub = Client(args, "paho-props-sub").connect()
    sub.subscribe("props/data/#", 1, sub_id=42)
    pub = Client(args, "paho-props-pub").connect()

    props = publish_properties(
        PayloadFormatIndicator=1,
        MessageExpiryInterval=60,
        ContentType="application/json",
        ResponseTopic="props/reply/pub",
        CorrelationData=b"\x01\x02corr",
        UserProperty=[("a", "1"), ("b", "2"), ("a", "3")],
    )
    pub.publish("props/data/x", '{"v":1}', qos=1, properties=props)
    pub.publish("props/data/plain", "plain", qos=2)
    forwarded = sub.receive(2)

    # Request / response: the responder answers on the Response Topic with the same
    # Correlation Data.
    responder = Client(args, "paho-props-responder")
    responder.c.on_message = None
    requests = []

    def answer(client, _userdata, msg):
        requests.append(msg.topic)
        reply = publish_properties(CorrelationData=msg.properties.CorrelationData)
        client.publish(msg.properties.ResponseTopic, "pong", qos=1, properties=reply)

    responder.c.on_message = answer
    responder.connect()
    responder.subscribe("props/request", 1)
    pub.subscribe("props/reply/pub", 1)
    request = publish_properties(ResponseTopic="props/reply/pub", CorrelationData=b"req-7")
    pub.publish("props/request", "ping", qos=1, properties=request)
    reply = pub.receive(1)

    # Message expiry: one message expires while its persistent subscriber is offline.
    away = Client(args, "paho-props-away", clean=False, session_expiry=60).connect()
    away.subscribe("props/expiry", 1)
    away.disconnect()
    time.sleep(0.2)
    pub.publish("props/expiry", "short", qos=1, properties=publish_properties(MessageExpiryInterval=1))
    pub.publish("props/expiry", "long", qos=1, properties=publish_properties(MessageExpiryInterval=60))
    time.sleep(2.2)
    away = Client(args, "paho-props-away", clean=False, session_expiry=60).connect()
    after_expiry = away.receive(1) + away.quiet()

    for c in (sub, pub, responder, away):
        c.disconnect()
    return {
        "forwarded": forwarded,
        "requests": requests,
        "reply": reply,
        "after_expiry": after_expiry,
    }


if __name__ == "__main__":
    main(run)
