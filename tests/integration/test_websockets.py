"""The websockets slot: Mosquitto's secure-WebSocket listener (its TLS
context is made by libwebsockets in the broker's process) is served from
the websockets slot, and devices are identified over wss:// as over MQTT."""

import json
import os
import time
import unittest

import paho.mqtt.client as mqtt

from harness import Broker, Workdir, control, ok, pki, read, served_certificate, free_port


class WebsocketsTest(unittest.TestCase):
    def setUp(self):
        self.work = Workdir()
        self.mqtt_port, self.ws_port = free_port(), free_port()
        store = self.work.store
        self.b = Broker(self.work, port=self.mqtt_port,
                        plugin_opts={"mqtt_ports": str(self.mqtt_port), "websockets_ports": str(self.ws_port)},
                        listeners=["listener %d 127.0.0.1\ncertfile %s/listener/mqtt.crt\nkeyfile %s/listener/mqtt.key"
                                   % (self.mqtt_port, store, store),
                                   "listener %d 127.0.0.1\nprotocol websockets\ncertfile %s/listener/websockets.crt\n"
                                   "keyfile %s/listener/websockets.key" % (self.ws_port, store, store)])
        self.b.start()
        ok(self.b, "addCA", tenant="default", certificate=read(pki("ca-a.pem")))
        ok(self.b, "modifyTenant", tenant="default", subscribePatterns=["{org}/#"])

    def tearDown(self):
        rc = self.b.stop()
        log = self.b.log()
        self.work.cleanup()
        self.assertEqual(rc, 0, "broker exit code\n" + log)
        self.assertNotIn("AddressSanitizer", log)

    def default_id(self, slot):
        with open(os.path.join(self.work.store, "slots", slot, "slot.json")) as f:
            return json.load(f)["default"]

    def wss(self, dev, clientid):
        c = mqtt.Client(clientid, transport="websockets")
        c.tls_set(ca_certs=os.path.join(self.work.store, "listener", "websockets.crt"),
                  certfile=pki(dev + ".pem"), keyfile=pki(dev + ".key"))
        c.tls_insecure_set(True)  # the built-in certificate names this host, not 127.0.0.1
        c.result = []
        c.on_connect = lambda cl, u, f, rc: c.result.append(rc)
        return c

    def test_wss_listener_serves_the_websockets_slot(self):
        self.assertEqual(served_certificate(self.ws_port, host="127.0.0.1")[1], self.default_id("websockets"))
        self.assertEqual(served_certificate(self.mqtt_port, host="127.0.0.1")[1], self.default_id("mqtt"))
        self.assertNotEqual(self.default_id("websockets"), self.default_id("mqtt"))
        # A new default is served from the next wss handshake.
        r = control(self.b, [{"command": "regenerateSelfSigned", "slot": "websockets", "commonName": "ws.example"}])
        new = r["responses"][0]["data"]["certificate"]["id"]
        self.assertEqual(served_certificate(self.ws_port, host="127.0.0.1")[1], new)

    def test_devices_are_identified_over_wss(self):
        got = []
        sub = self.wss("dev-a1", "d:default:sensor:a1")
        sub.on_message = lambda cl, u, m: got.append((m.topic, m.payload.decode()))
        sub.connect("127.0.0.1", self.ws_port)
        sub.subscribe("default/#")
        sub.loop_start()
        pub = self.wss("gw-a3", "g:default:gw:a3")
        pub.connect("127.0.0.1", self.ws_port)
        pub.loop_start()
        deadline = time.time() + 10
        while time.time() < deadline and not (sub.result and pub.result):
            time.sleep(0.05)
        time.sleep(0.3)
        pub.publish("default/gw/a3/t", "over wss").wait_for_publish()
        while time.time() < deadline and not got:
            time.sleep(0.05)
        for c in (sub, pub):
            c.loop_stop()
            c.disconnect()
        self.assertEqual((sub.result, pub.result), ([0], [0]))
        self.assertEqual(got, [("default/gw/a3/t", "over wss")])
        self.assertIn("as d:default:sensor:a1 (p2, c1, k60, u'd:default:sensor:a1')", self.b.log())
        # A wrong identity is refused over wss as over MQTT.
        bad = self.wss("dev-a1", "d:default:sensor:zz")
        bad.connect("127.0.0.1", self.ws_port)
        bad.loop_start()
        deadline = time.time() + 10
        while time.time() < deadline and not bad.result:
            time.sleep(0.05)
        bad.loop_stop()
        self.assertEqual(bad.result[:1], [5])


if __name__ == "__main__":
    unittest.main()
