"""Metrics as retained messages under $SYS/broker/certmgr/ and events on
$SYS/broker/certmgr/events, read by a real subscriber from a real broker."""

import json
import os
import re
import shutil
import ssl
import subprocess
import time
import unittest
import hashlib

from crlserver import CrlServer
from harness import cert_id
from harness import (Broker, Workdir, ok, pki, read, mqtt_connect, mqtt_subscribe, mqtt_messages, test_pki)

PREFIX = "$SYS/broker/certmgr/"
EXPORTER_NAME = re.compile(r"^[a-z0-9_]+(/[a-z0-9_]+)*$")


def not_after(path):
    out = subprocess.run(["openssl", "x509", "-in", path, "-noout", "-enddate"], capture_output=True, text=True,
                         check=True).stdout.strip().split("=", 1)[1]
    return int(time.mktime(time.strptime(out, "%b %d %H:%M:%S %Y GMT")) - time.timezone)


class MetricsTest(unittest.TestCase):
    def setUp(self):
        self.work = Workdir()
        self.files = self.work.file("crls")
        os.mkdir(self.files)
        shutil.copy(pki("crl-a-empty.pem"), os.path.join(self.files, "crl-a.pem"))
        self.http = CrlServer(self.files)
        self.b = Broker(self.work, plugin_opts={"expiry_warning_days": "3650"}, extra="sys_interval 1")
        self.b.start()
        self.cafile = os.path.join(self.work.store, "listener", "mqtt.crt")
        r = mqtt_connect(self.b.port, "watcher", cert=os.path.join(self.work.store, "admin", "admin.pem"),
                         key=os.path.join(self.work.store, "admin", "admin.key"), keep=True)
        self.assertEqual(r["result"], "accepted")
        self.sock = r["sock"]
        self.assertEqual(mqtt_subscribe(self.sock, PREFIX + "#"), 0)
        self.seen = {}
        self.events = []

    def tearDown(self):
        self.sock.close()
        rc = self.b.stop()
        self.http.stop()
        log = self.b.log()
        self.work.cleanup()
        self.assertEqual(rc, 0, "broker exit code\n" + log)
        self.assertNotIn("AddressSanitizer", log)

    def drain(self, seconds):
        for topic, payload in mqtt_messages(self.sock, seconds):
            if topic == PREFIX + "events":
                self.events.append(json.loads(payload))
            else:
                self.seen[topic[len(PREFIX):]] = payload.decode()

    def metric(self, name, timeout=5):
        deadline = time.time() + timeout
        while name not in self.seen and time.time() < deadline:
            self.drain(0.5)
        return self.seen.get(name)

    def wait_for(self, name, check, timeout=5):
        deadline = time.time() + timeout
        while time.time() < deadline:
            self.drain(0.5)
            if name in self.seen and check(self.seen[name]):
                return self.seen[name]
        raise AssertionError("%s: %r" % (name, self.seen.get(name)))

    def event(self, kind, **match):
        deadline = time.time() + 5
        while time.time() < deadline:
            for e in self.events:
                if e["event"] == kind and all(e.get(k) == v for k, v in match.items()):
                    return e
            self.drain(0.5)
        raise AssertionError("no %s event with %s in %s" % (kind, match, self.events))

    def connect(self, dev, clientid, sni="acme.test", keep=False):
        return mqtt_connect(self.b.port, clientid, sni=sni, cafile=self.cafile, cert=pki(dev + ".pem"),
                            key=pki(dev + ".key"), keep=keep)

    def test_metrics_count_handshakes_by_reason_and_describe_the_store(self):
        ok(self.b, "createTenant", tenant="acme", hostnames=["acme.test"])
        ca = ok(self.b, "addCA", tenant="acme", certificate=read(pki("ca-a.pem")),
                crlUrl=self.http.url("/files/crl-a.pem"))["ca"]["id"]
        ok(self.b, "uploadCRL", tenant="acme", crl=read(pki("crl-a.pem")))
        self.assertEqual(self.connect("dev-a1", "d:acme:sensor:a1")["result"], "accepted")
        self.assertEqual(self.connect("gw-a3", "g:acme:gw:a3")["result"], "accepted")
        refused = {
            "id_mismatch": self.connect("dev-a1", "d:acme:sensor:zz"),
            "unknown_sni": self.connect("dev-a1", "d:acme:sensor:a1", sni="nobody.test"),
            "revoked": self.connect("dev-a2", "d:acme:meter:a2"),
            "expired": self.connect("dev-expired", "d:acme:sensor:a9"),
            "untrusted_chain": self.connect("self-signed-dev", "d:acme:sensor:a1"),
        }
        for reason, r in refused.items():
            self.assertNotEqual(r["result"], "accepted", reason)
            self.wait_for("handshakes/refused/%s_total" % reason, lambda v: int(v) >= 1)
        self.wait_for("handshakes/accepted_total", lambda v: int(v) >= 3)  # two devices and the watcher
        self.wait_for("handshakes/refused/policy_total", lambda v: v == "0")
        group = "tenants/acme/cas/%s/" % ca[:16]
        self.assertEqual(int(self.metric(group + "not_after_seconds")), not_after(pki("ca-a.pem")))
        self.assertEqual(self.wait_for(group + "crl/revoked", lambda v: v == "1"), "1")
        self.assertGreater(int(self.metric(group + "crl/next_update_seconds")), time.time())
        self.assertEqual(self.metric(group + "crl/fetch_failures_total"), "0")
        self.assertEqual(self.metric("tenants/count"), "2")
        self.assertEqual(self.metric("cas/count"), "1")
        self.assertGreaterEqual(int(self.metric("store/generation")), 3)
        self.assertGreaterEqual(int(self.metric("rejected/entries")), 2)
        served = os.path.join(self.work.store, "listener", "mqtt.crt")
        self.assertEqual(int(self.metric("slots/mqtt/not_after_seconds")), not_after(served))
        for name in self.seen:
            self.assertRegex(name, EXPORTER_NAME)
        # Unchanged, a CA's metrics are not sent again (they are retained);
        # the counters are, every sys_interval.
        topics = [t for t, _ in mqtt_messages(self.sock, 2.5)]
        self.assertIn(PREFIX + "handshakes/accepted_total", topics)
        self.assertEqual([t for t in topics if group in t], [])
        # A CA that goes takes its metrics with it (empty retained message).
        ok(self.b, "removeCA", tenant="acme", id=ca)
        self.wait_for(group + "not_after_seconds", lambda v: v == "")
        self.wait_for("cas/count", lambda v: v == "0")

    def test_events_for_changes_refreshes_expiry_and_revocation_disconnects(self):
        ok(self.b, "createTenant", tenant="acme", hostnames=["acme.test"])
        e = self.event("change", command="createTenant", tenant="acme")
        self.assertIn("time", e)
        self.assertTrue(e["by"])
        ca = ok(self.b, "addCA", tenant="acme", certificate=read(pki("ca-a.pem")),
                crlUrl=self.http.url("/files/crl-a.pem"))["ca"]["id"]
        self.event("change", command="addCA", tenant="acme")
        # ca-a is valid for ten years: inside a 3650-day window, announced once.
        self.event("expiryWarning", tenant="acme", id=ca)
        dev = self.connect("dev-a2", "d:acme:meter:a2", keep=True)
        self.assertEqual(dev["result"], "accepted")
        # The CRL server now revokes dev-a2: a refresh changes the CRL, and
        # the device is disconnected.
        shutil.copy(pki("crl-a.pem"), os.path.join(self.files, "crl-a.pem"))
        ok(self.b, "refreshCRL", tenant="acme", id=ca)
        e = self.event("crlUpdated", tenant="acme", ca=ca)
        self.assertEqual(e["revoked"], 1)
        e = self.event("disconnected", clientId="d:acme:meter:a2", tenant="acme")
        self.assertIn("revoked", e["reason"])
        dev["sock"].close()
        # A refresh that brings the same CRL is no event; reads are none.
        before = len([x for x in self.events if x["event"] == "crlUpdated"])
        ok(self.b, "refreshCRL", tenant="acme", id=ca)
        ok(self.b, "listTenants")
        self.drain(2)
        self.assertEqual(len([x for x in self.events if x["event"] == "crlUpdated"]), before)
        self.assertEqual([x for x in self.events if x.get("command") == "listTenants"], [])
        self.assertEqual(len([x for x in self.events if x["event"] == "expiryWarning" and x.get("id") == ca]), 1)
        for x in self.events:
            self.assertNotIn("PRIVATE", json.dumps(x))

    def test_devices_cannot_read_the_metrics(self):
        ok(self.b, "createTenant", tenant="acme", hostnames=["acme.test"])
        ok(self.b, "addCA", tenant="acme", certificate=read(pki("ca-a.pem")))
        dev = self.connect("dev-a1", "d:acme:sensor:a1", keep=True)
        self.assertEqual(mqtt_subscribe(dev["sock"], PREFIX + "#"), 0x80)
        dev["sock"].close()


class NoSysIntervalTest(unittest.TestCase):
    def test_sys_interval_0_publishes_no_metrics_but_events(self):
        work = Workdir()
        try:
            b = Broker(work, extra="sys_interval 0")
            b.start()
            r = mqtt_connect(b.port, "watcher", cert=os.path.join(work.store, "admin", "admin.pem"),
                             key=os.path.join(work.store, "admin", "admin.key"), keep=True)
            mqtt_subscribe(r["sock"], PREFIX + "#")
            ok(b, "createTenant", tenant="acme", hostnames=["acme.test"])
            got = mqtt_messages(r["sock"], 2.5)
            r["sock"].close()
            # No metric topic, only events: the change, and perhaps the
            # first tick's fleet audit when it ends after the subscription
            # (on a loaded machine it does).
            self.assertEqual({t for t, _ in got}, {PREFIX + "events"})
            kinds = [json.loads(body)["event"] for _, body in got]
            self.assertEqual(kinds.count("change"), 1, kinds)
            self.assertLessEqual(set(kinds), {"change", "audit"}, kinds)
            self.assertEqual(b.stop(), 0)
        finally:
            work.cleanup()


if __name__ == "__main__":
    unittest.main()
