"""Two brokers bridged over mutual TLS on loopback, each presenting its
bridge-slot certificate and trusting the other's; messages cross the
bridge; one node's bridge certificate is rotated and the bridge
reconnects with the new one."""

import json
import os
import subprocess
import time
import unittest

from harness import Broker, Workdir, control, ok, pki, read, mqtt_connect, mqtt_publish, free_port


class BridgeTest(unittest.TestCase):
    def setUp(self):
        self.wa, self.wb = Workdir(), Workdir()
        self.port_a, self.port_b, self.peer_b = free_port(), free_port(), free_port()
        # B: devices on port_b (mqtt slot), peer brokers on peer_b (bridge slot).
        sb = self.wb.store
        self.b = Broker(self.wb, port=self.port_b,
                        plugin_opts={"mqtt_ports": str(self.port_b), "bridge_ports": str(self.peer_b)},
                        listeners=["listener %d 127.0.0.1\ncertfile %s/listener/mqtt.crt\nkeyfile %s/listener/mqtt.key" % (self.port_b, sb, sb),
                                   "listener %d 127.0.0.1\ncertfile %s/listener/bridge.crt\nkeyfile %s/listener/bridge.key" % (self.peer_b, sb, sb)])
        self.b.start()
        # A's store exists before its bridge names its files.
        self.a = Broker(self.wa, port=self.port_a)
        self.a.start()
        self.assertEqual(self.a.stop(), 0)
        sa = self.wa.store
        bridge = ("connection to_b\naddress localhost:%d\nremote_clientid node-a\ncleansession true\nrestart_timeout 1\n"
                  "bridge_cafile %s/listener/bridge.crt\nbridge_insecure true\n"
                  "bridge_certfile %s/listener/bridge.crt\nbridge_keyfile %s/listener/bridge.key\ntopic cross/# out 0\n"
                  % (self.peer_b, sb, sa, sa))
        self.a = Broker(self.wa, port=self.port_a, extra=bridge, conf_name="a.conf")
        # B's peers tenant (SNI localhost) trusts A's bridge certificate.
        ok(self.b, "createTenant", tenant="peers", hostnames=["localhost"], policy="bridge")
        self.a_bridge = self.bridge_cert(self.wa)
        ok(self.b, "trustCertificate", tenant="peers", certificate=self.a_bridge)
        # Devices: A's may publish cross/..., B's may read it.
        self.a.start()
        ok(self.a, "addCA", tenant="default", certificate=read(pki("ca-a.pem")))
        ok(self.a, "modifyTenant", tenant="default", publishPatterns=["cross/{id}/#"])
        ok(self.b, "addCA", tenant="default", certificate=read(pki("ca-a.pem")))
        ok(self.b, "modifyTenant", tenant="default", subscribePatterns=["cross/#"])

    def tearDown(self):
        for b in (self.a, self.b):
            rc = b.stop()
            self.assertEqual(rc, 0, b.log())
            self.assertNotIn("AddressSanitizer", b.log())
        self.wa.cleanup()
        self.wb.cleanup()

    def bridge_cert(self, work):
        with open(os.path.join(work.store, "listener", "bridge.crt")) as f:
            return f.read()

    def crosses(self, text):
        """A device on A publishes; a device on B must receive it."""
        sub = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(self.port_b), "--insecure",
                                "--cafile", os.path.join(self.wb.store, "listener", "mqtt.crt"),
                                "--cert", pki("dev-a1.pem"), "--key", pki("dev-a1.key"), "-i", "d:default:sensor:a1",
                                "-t", "cross/#", "-C", "1", "-W", "8"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(0.5)
        # dev-a2 is d:meter:a2 by its SubjectAltName email.
        pub = mqtt_connect(self.port_a, "d:default:meter:a2", cafile=os.path.join(self.wa.store, "listener", "mqtt.crt"),
                           cert=pki("dev-a2.pem"), key=pki("dev-a2.key"), keep=True)
        self.assertEqual(pub["result"], "accepted")
        mqtt_publish(pub["sock"], "cross/a2/t", text)
        out, _ = sub.communicate(timeout=20)
        pub["sock"].close()
        return out.strip() == text

    def wait_bridge(self, log_text, broker, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if log_text in broker.run_log():
                return True
            time.sleep(0.1)
        return False

    def test_messages_cross_and_a_rotated_bridge_certificate_reconnects(self):
        self.assertTrue(self.wait_bridge("peer broker 'node-a' from 127.0.0.1 accepted (tenant peers)", self.b),
                        self.b.run_log() + self.a.run_log())
        self.assertTrue(self.crosses("first"))
        # Rotate A's bridge certificate; B trusts only the old one so far.
        old_id = [c for c in ok(self.b, "listCAs", tenant="peers")["pinned"]][0]["id"]
        r = control(self.a, [{"command": "regenerateSelfSigned", "slot": "bridge", "commonName": "node-a-2"}])
        self.assertIn("data", r["responses"][0])
        new_pem = self.bridge_cert(self.wa)
        self.assertNotEqual(new_pem, self.a_bridge)
        # B trusts the new one and drops the old: the bridge is disconnected
        # for loss of trust and reconnects presenting the new certificate.
        ok(self.b, "trustCertificate", tenant="peers", certificate=new_pem)
        ok(self.b, "untrustCertificate", tenant="peers", id=old_id)
        self.assertTrue(self.wait_bridge("disconnecting 'node-a' (tenant peers)", self.b))
        deadline = time.time() + 20
        accepted = 0
        while time.time() < deadline and accepted < 2:
            accepted = self.b.run_log().count("peer broker 'node-a' from 127.0.0.1 accepted")
            time.sleep(0.2)
        self.assertGreaterEqual(accepted, 2, self.b.run_log())
        self.assertTrue(self.crosses("after rotation"))

    def test_trust_server_certificate_puts_a_slot_certificate_in_a_trust_list(self):
        own = ok(self.b, "listServerCertificates", slot="bridge")["certificates"][0]["id"]
        added = ok(self.b, "trustServerCertificate", slot="bridge", id=own, tenant="peers")["added"]
        self.assertEqual(added, [{"id": own, "kind": "pinned"}])
        r = control(self.b, [{"command": "trustServerCertificate", "slot": "bridge", "id": "0" * 64, "tenant": "peers"}])
        self.assertIn("no certificate", r["responses"][0]["error"])


if __name__ == "__main__":
    unittest.main()
