"""Wills with paho-mqtt: a helper process connects with a will and is killed with SIGKILL
(no DISCONNECT), so its will must be published; a client that disconnects normally must not
have its will published. Prints what the watcher received."""

import select
import subprocess
import sys
import time

from helpers import WAIT, Client, Failure, main
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties


def will_for(args, name):
    p = args.protocol
    will = {"topic": f"will/{p}/{name}", "payload": f"{name}-gone", "qos": 1, "retain": False}
    if p == "5":
        props = Properties(PacketTypes.WILLMESSAGE)
        props.ContentType = "text/plain"
        props.UserProperty = [("reason", name)]
        will["properties"] = props
    return will


def child(args):
    """Connects with a will, says so, and waits to be killed."""
    c = Client(args, f"paho-will-child-{args.protocol}", will=will_for(args, "killed")).connect()
    print("connected", flush=True)
    time.sleep(30)
    c.disconnect()


def run(args):
    if args.child:
        child(args)
        return {}
    p = args.protocol
    watcher = Client(args, f"paho-will-watch-{p}").connect()
    watcher.subscribe(f"will/{p}/#", 2)

    polite = Client(args, f"paho-will-polite-{p}", will=will_for(args, "polite")).connect()
    polite.disconnect()

    proc = subprocess.Popen(
        [sys.executable, __file__, "--port", str(args.port), "--protocol", p, "--child", "1"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        ready, _, _ = select.select([proc.stdout], [], [], WAIT)
        if not ready or proc.stdout.readline().strip() != "connected":
            raise Failure("the will helper process did not connect")
        proc.kill()
        proc.wait(WAIT)
    finally:
        if proc.poll() is None:
            proc.kill()
    received = watcher.receive(1)
    received += watcher.quiet()
    watcher.disconnect()
    return {"received": received}


if __name__ == "__main__":
    main(run)
