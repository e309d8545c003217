"""Devices as first-class: the inventory of what connects, blocks of a
device id or a certificate, fleet audits. Real broker, real clients."""

import hashlib
import json
import os
import select
import ssl
import subprocess
import time
import unittest

import harness
from harness import closed_within
from harness import (BrokerTest, control, ctl, ok, pki, read, mqtt_connect, mqtt_subscribe, mqtt_messages)

SNI = "acme.test"


def der_of(path):
    return ssl.PEM_cert_to_DER_cert(read(path))


def fp_of(path):
    return hashlib.sha256(der_of(path)).hexdigest()


def serial_of(path):
    out = subprocess.run(["openssl", "x509", "-in", path, "-noout", "-serial"], capture_output=True, text=True, check=True)
    return out.stdout.strip().split("=", 1)[1].lower()


# Devices whose material a client at OpenSSL's default security level
# will not even load: the crafted fleet's weak ones.
WEAK = ("dev-rsa1024", "dev-sha1")


def weak_context(cafile, cert, key):
    """The client context of a weak device, at security level 0, where
    mqtt_connect finds it."""
    k = (cafile, cert, key)
    if k not in harness._contexts:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.load_verify_locations(cafile)
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        ctx.load_cert_chain(cert, key)
        harness._contexts[k] = ctx


def fail(cmd_response):
    return cmd_response["responses"][0].get("error")


class DevicesTest(BrokerTest):
    plugin_opts = {"audit_interval": "1"}
    extra = "sys_interval 1"
    # A broker that admits legacy devices (RSA-1024 keys, SHA-1
    # signatures): OpenSSL's default security level refuses them at the
    # handshake, and a fleet that has them runs its listener at level 0.
    legacy = False

    def setUp(self):
        if not self.legacy:
            super().setUp()
        else:
            self.work = harness.Workdir()
            b = harness.Broker(self.work)
            self.b = harness.Broker(self.work, port=b.port, plugin_opts=dict(self.plugin_opts), extra=self.extra,
                                    listeners=[b.tls_listener(b.port) + "\nciphers DEFAULT:@SECLEVEL=0"])
            self.b.start()
            self.cafile = os.path.join(self.work.store, "listener", "mqtt.crt")
            self.socks = []
        ok(self.b, "createTenant", tenant="acme", hostnames=[SNI])
        self.ca = ok(self.b, "addCA", tenant="acme", certificate=read(pki("ca-a.pem")))["ca"]["id"]

    def connect(self, dev, clientid, keep=True, session=None):
        if dev in WEAK:
            weak_context(self.cafile, pki(dev + ".pem"), pki(dev + ".key"))
        r = mqtt_connect(self.b.port, clientid, sni=SNI, cafile=self.cafile, cert=pki(dev + ".pem"), key=pki(dev + ".key"),
                         keep=keep, session=session)
        if r.get("sock"):
            self.socks.append(r["sock"])
        return r

    def attach(self, dev, clientid):
        r = self.connect(dev, clientid)
        self.assertEqual(r["result"], "accepted", "%s as %s" % (dev, clientid))
        return r["sock"]

    def devices(self, **kw):
        return ok(self.b, "listDevices", tenant="acme", **kw)

    # ------------------------------------------------------------------
    # The inventory

    def test_a_device_appears_with_the_facts_of_its_certificate(self):
        before = ok(self.b, "listDevices", tenant="acme")
        self.assertEqual(before["devices"], [])
        sock = self.attach("dev-a1", "d:acme:sensor:a1")
        data = self.devices()
        self.assertEqual(data["total"], 1)
        self.assertEqual([n["answered"] for n in data["nodes"]], [True])
        d = data["devices"][0]
        self.assertEqual(d["id"], "d:acme:sensor:a1")
        c = d["certificate"]
        self.assertEqual(c["fingerprint"], fp_of(pki("dev-a1.pem")))
        self.assertEqual(c["serial"].lstrip("0"), serial_of(pki("dev-a1.pem")).lstrip("0"))
        self.assertEqual(c["issuer"], self.ca)
        self.assertEqual((c["keyType"], c["keyBits"], c["signatureAlgorithm"]), ("ec", 256, "ecdsa-with-SHA256"))
        self.assertTrue(d["connected"])
        self.assertEqual(d["node"], data["nodes"][0]["node"])
        self.assertEqual(d["certificates"], 1)
        self.assertIsNone(d["lastRefusal"])
        self.assertFalse(d["enrolled"], "a certificate of a registered CA, not of enrollment")
        self.assertEqual(ok(self.b, "getDevice", tenant="acme", id="d:acme:sensor:a1")["device"], d)
        # A second certificate of the same device is counted, once.
        sock.close()
        for dev in ("dev-a1b", "dev-a1", "dev-a1b"):
            r = self.connect(dev, "d:acme:sensor:a1", keep=False)
            self.assertEqual(r["result"], "accepted")
        d = ok(self.b, "getDevice", tenant="acme", id="d:acme:sensor:a1")["device"]
        self.assertEqual(d["certificates"], 2)
        self.assertEqual(d["certificate"]["fingerprint"], fp_of(pki("dev-a1b.pem")))
        deadline = time.time() + 5
        while d["connected"] and time.time() < deadline:
            time.sleep(0.1)
            d = ok(self.b, "getDevice", tenant="acme", id="d:acme:sensor:a1")["device"]
        self.assertFalse(d["connected"])
        self.assertIsNone(d["node"])
        # A refusal of a known device is its last refusal.
        r = self.connect("dev-a1", "d:acme:sensor:zz", keep=False)
        self.assertNotEqual(r["result"], "accepted")
        self.assertEqual(fail(control(self.b, [{"command": "getDevice", "tenant": "acme", "id": "d:acme:sensor:zz"}])),
                         "no device 'd:acme:sensor:zz' in the inventory of tenant 'acme'")

    def test_the_inventory_is_written_in_batches_while_the_broker_runs(self):
        import signal
        path = os.path.join(self.work.store, "devices.tsv")
        self.assertEqual(self.connect("dev-a1", "d:acme:sensor:a1", keep=False)["result"], "accepted")
        # Not at the handshake: within the next batch (30 s), by the worker.
        self.assertFalse(os.path.exists(path))
        deadline = time.time() + 45
        while not os.path.exists(path) and time.time() < deadline:
            time.sleep(0.5)
        self.assertTrue(os.path.exists(path), "devices.tsv was not written")
        # Killed, not stopped: what the batch wrote is what the next start has.
        self.b.stop(sig=signal.SIGKILL)
        self.b.start()
        self.assertEqual(ok(self.b, "getDevice", tenant="acme", id="d:acme:sensor:a1")["device"]["certificate"]["fingerprint"],
                         fp_of(pki("dev-a1.pem")))

    def test_any_client_id_of_a_peer_broker_is_listed_as_it_is(self):
        ok(self.b, "createTenant", tenant="peers", hostnames=["peers.test"], policy="bridge")
        ok(self.b, "addCA", tenant="peers", certificate=read(pki("ca-b.pem")))
        cid = 'peer "one" \\ \u00e9'
        r = mqtt_connect(self.b.port, cid, sni="peers.test", cafile=self.cafile, cert=pki("dev-b1.pem"), key=pki("dev-b1.key"))
        self.assertEqual(r["result"], "accepted")
        listed = ok(self.b, "listDevices", tenant="peers")["devices"]
        self.assertEqual([d["id"] for d in listed], [cid])
        self.assertEqual(ok(self.b, "getDevice", tenant="peers", id=cid)["device"], listed[0])
        self.assertIn("control character", fail(control(self.b, [{"command": "blockDevice", "tenant": "peers", "id": cid + "\t"}])))
        ok(self.b, "blockDevice", tenant="peers", id=cid)
        self.assertEqual([d["blocked"] for d in ok(self.b, "listDevices", tenant="peers")["devices"]], [True])
        r = mqtt_connect(self.b.port, cid, sni="peers.test", cafile=self.cafile, cert=pki("dev-b1.pem"), key=pki("dev-b1.key"))
        self.assertIn(r["result"], ("refused:5", "closed"))

    def test_the_inventory_survives_a_restart(self):
        self.assertEqual(self.connect("dev-a1", "d:acme:sensor:a1", keep=False)["result"], "accepted")
        before = ok(self.b, "getDevice", tenant="acme", id="d:acme:sensor:a1")["device"]
        self.b.stop()
        self.assertTrue(os.path.exists(os.path.join(self.work.store, "devices.tsv")))
        self.b.start()
        after = ok(self.b, "getDevice", tenant="acme", id="d:acme:sensor:a1")["device"]
        before["connected"], before["node"], before["connections"] = False, None, 0
        self.assertEqual(after, before)

    # ------------------------------------------------------------------
    # Blocks

    def assert_refused_at_handshake(self, dev, clientid):
        r = self.connect(dev, clientid, keep=False)
        self.assertTrue(r["result"].startswith("tls-error"), "%s as %s: %s" % (dev, clientid, r["result"]))

    def test_blocking_a_device_disconnects_it_and_refuses_all_its_certificates(self):
        sock = self.attach("dev-a1", "d:acme:sensor:a1")
        bystander = self.attach("dev-soon", "d:acme:sensor:e1")
        t0 = time.time()
        data = ok(self.b, "blockDevice", tenant="acme", id="d:acme:sensor:a1", reason="stolen")
        t1 = time.time()
        self.assertEqual((data["blocked"]["id"], data["blocked"]["reason"]), ("d:acme:sensor:a1", "stolen"))
        took = closed_within(sock, 3)
        self.assertIsNotNone(took, "the blocked device is still connected")
        print("\nblockDevice answered %.0f ms after it was sent; disconnected %.0f ms after the answer" % (
            (t1 - t0) * 1000, took * 1000))
        self.b.wait_log("disconnecting 'd:acme:sensor:a1' (tenant acme): blocked: device 'd:acme:sensor:a1' is blocked: stolen")
        self.assertIsNone(closed_within(bystander, 0.5), "another device was disconnected")
        self.assert_refused_at_handshake("dev-a1", "d:acme:sensor:a1")
        # A fresh certificate for the blocked id is refused too.
        self.assert_refused_at_handshake("dev-a1b", "d:acme:sensor:a1")
        self.b.wait_log("device 'd:acme:sensor:a1' is blocked: stolen")
        rejected = ok(self.b, "listRejected")["rejected"]
        self.assertIn("device 'd:acme:sensor:a1' is blocked: stolen", [r["reason"] for r in rejected])
        self.assertEqual(ok(self.b, "listBlocked", tenant="acme")["devices"][0]["id"], "d:acme:sensor:a1")
        self.assertIn("is blocked already", fail(control(self.b, [{"command": "blockDevice", "tenant": "acme", "id": "d:acme:sensor:a1"}])))
        self.assertIn("names org 'other'", fail(control(self.b, [{"command": "blockDevice", "tenant": "acme", "id": "d:other:sensor:a1"}])))
        ok(self.b, "createTenant", tenant="tok", hostnames=["tok.test"], policy="token")
        self.assertIn("token policy", fail(control(self.b, [{"command": "blockDevice", "tenant": "tok", "id": "d:tok:sensor:a1"}])))
        ok(self.b, "unblockDevice", tenant="acme", id="d:acme:sensor:a1")
        self.assertEqual(self.connect("dev-a1", "d:acme:sensor:a1", keep=False)["result"], "accepted")
        self.assertIn("is not blocked", fail(control(self.b, [{"command": "unblockDevice", "tenant": "acme", "id": "d:acme:sensor:a1"}])))

    def test_blocking_a_certificate_refuses_it_and_not_the_devices_other_one(self):
        sock = self.attach("dev-a1b", "d:acme:sensor:a1")
        ok(self.b, "blockCertificate", tenant="acme", certificate=read(pki("dev-a1b.pem")), reason="key leaked")
        self.assertIsNotNone(closed_within(sock, 3))
        self.assert_refused_at_handshake("dev-a1b", "d:acme:sensor:a1")
        self.assertEqual(self.connect("dev-a1", "d:acme:sensor:a1", keep=False)["result"], "accepted")
        blocked = ok(self.b, "listBlocked", tenant="acme")["certificates"]
        self.assertEqual([(b["fingerprint"], b["reason"]) for b in blocked], [(fp_of(pki("dev-a1b.pem")), "key leaked")])
        # Given by its fingerprint, in capitals with colons: the same one.
        fp = fp_of(pki("dev-a1b.pem")).upper()
        colons = ":".join(fp[i:i + 2] for i in range(0, len(fp), 2))
        self.assertIn("is blocked already", fail(control(self.b, [{"command": "blockCertificate", "tenant": "acme", "fingerprint": colons}])))
        self.assertIn("64 hex digits", fail(control(self.b, [{"command": "blockCertificate", "tenant": "acme", "fingerprint": "abc"}])))
        self.assertIn("one of them", fail(control(self.b, [{"command": "blockCertificate", "tenant": "acme"}])))
        ok(self.b, "unblockCertificate", tenant="acme", fingerprint=colons)
        self.assertEqual(self.connect("dev-a1b", "d:acme:sensor:a1", keep=False)["result"], "accepted")

    def test_a_blocked_certificate_is_refused_whatever_id_it_claims(self):
        ok(self.b, "blockCertificate", tenant="acme", fingerprint=fp_of(pki("dev-multi.pem")))
        self.assert_refused_at_handshake("dev-multi", "d:acme:sensor:m1")
        self.assert_refused_at_handshake("dev-multi", "d:acme:sensor:m2")

    def test_a_blocked_id_of_a_certificate_naming_two_is_refused_at_connect(self):
        # The handshake cannot tell which id the device will claim: the
        # certificate also names m2, which is not blocked. CONNECT can.
        ok(self.b, "blockDevice", tenant="acme", id="d:acme:sensor:m1")
        r = self.connect("dev-multi", "d:acme:sensor:m1", keep=False)
        self.assertIn(r["result"], ("refused:5", "closed"))
        self.b.wait_log("refused client 'd:acme:sensor:m1' from 127.0.0.1 (tenant acme): blocked: device 'd:acme:sensor:m1' is blocked")
        self.assertEqual(self.connect("dev-multi", "d:acme:sensor:m2", keep=False)["result"], "accepted")

    def test_a_resumed_session_does_not_get_past_a_block(self):
        first = self.connect("dev-multi", "d:acme:sensor:m1", keep=False)
        self.assertEqual(first["result"], "accepted")
        again = self.connect("dev-multi", "d:acme:sensor:m1", keep=False, session=first["session"])
        self.assertEqual((again["result"], again["reused"]), ("accepted", True))
        ok(self.b, "blockDevice", tenant="acme", id="d:acme:sensor:m1")
        r = self.connect("dev-multi", "d:acme:sensor:m1", keep=False, session=again["session"])
        self.assertIn(r["result"], ("refused:5", "closed"))
        # The other id of the certificate resumes no session made before
        # the block either (the tenant changed), and is admitted.
        r = self.connect("dev-multi", "d:acme:sensor:m2", keep=False, session=again["session"])
        self.assertEqual((r["result"], r["reused"]), ("accepted", False))
        # A session made after the block resumes, and its CONNECT as the
        # blocked id is refused still.
        r = self.connect("dev-multi", "d:acme:sensor:m2", keep=False, session=r["session"])
        r = self.connect("dev-multi", "d:acme:sensor:m1", keep=False, session=r["session"])
        self.assertEqual(r["reused"], True)
        self.assertIn(r["result"], ("refused:5", "closed"))

    def test_the_command_line_tool(self):
        self.attach("dev-a1", "d:acme:sensor:a1")
        rc, out, err = ctl(self.b, "listDevices", "acme", "--filter", "connected")
        self.assertEqual(rc, 0, err)
        self.assertIn("d:acme:sensor:a1", out)
        self.assertIn(fp_of(pki("dev-a1.pem")), out)
        rc, out, err = ctl(self.b, "--json", "getDevice", "acme", "d:acme:sensor:a1")
        self.assertEqual((rc, json.loads(out)["data"]["device"]["id"]), (0, "d:acme:sensor:a1"), err)
        rc, out, err = ctl(self.b, "blockDevice", "acme", "d:acme:sensor:a1", "--reason", "lost")
        self.assertEqual(rc, 0, err)
        rc, out, err = ctl(self.b, "blockCertificate", "acme", "--certificate", pki("dev-a1b.pem"))
        self.assertEqual(rc, 0, err)
        rc, out, err = ctl(self.b, "listBlocked", "acme")
        self.assertEqual(rc, 0, err)
        self.assertIn("d:acme:sensor:a1", out)
        self.assertIn("lost", out)
        self.assertIn(fp_of(pki("dev-a1b.pem")), out)
        rc, out, err = ctl(self.b, "unblockCertificate", "acme", "--fingerprint", fp_of(pki("dev-a1b.pem")))
        self.assertEqual(rc, 0, err)
        rc, out, err = ctl(self.b, "auditFleet", "--tenant", "acme", "--expiring-days", "400")
        self.assertEqual(rc, 0, err)
        self.assertIn("expiringCertificate", out)
        self.assertIn("caWithoutCRL", out)
        rc, out, err = ctl(self.b, "--json", "auditFleet")
        self.assertEqual(rc, 0, err)
        self.assertIn("counts", json.loads(out)["data"])
        rc, out, err = ctl(self.b, "listDevices", "acme", "--limit", "many")
        self.assertNotEqual(rc, 0)
        rc, out, err = ctl(self.b, "unblockDevice", "acme", "d:acme:sensor:zz")
        self.assertEqual(rc, 13)
        self.assertIn("is not blocked", err)

    def test_blocks_survive_a_restart(self):
        ok(self.b, "blockDevice", tenant="acme", id="d:acme:sensor:a1", reason="stolen")
        ok(self.b, "blockCertificate", tenant="acme", fingerprint=fp_of(pki("dev-soon.pem")))
        before = ok(self.b, "listBlocked", tenant="acme")
        self.b.stop()
        with open(os.path.join(self.work.store, "tenants", "acme", "tenant.json")) as f:
            self.assertEqual(len(json.load(f)["blocked"]["devices"]), 1)
        self.b.start()
        self.assertEqual(ok(self.b, "listBlocked", tenant="acme"), before)
        self.assert_refused_at_handshake("dev-a1", "d:acme:sensor:a1")
        self.assert_refused_at_handshake("dev-soon", "d:acme:sensor:e1")

    def test_blocked_refusals_are_counted_in_the_metrics(self):
        ok(self.b, "blockDevice", tenant="acme", id="d:acme:sensor:a1")
        self.assert_refused_at_handshake("dev-a1", "d:acme:sensor:a1")
        watcher = self.admin_watcher("$SYS/broker/certmgr/handshakes/refused/blocked_total")
        values = [int(p) for t, p in mqtt_messages(watcher, 3) if t.endswith("blocked_total")]
        self.assertTrue(values and values[-1] >= 1, values)

    def admin_watcher(self, topic):
        r = mqtt_connect(self.b.port, "watcher", cert=os.path.join(self.work.store, "admin", "admin.pem"),
                         key=os.path.join(self.work.store, "admin", "admin.key"), keep=True)
        self.assertEqual(r["result"], "accepted")
        self.socks.append(r["sock"])
        self.assertEqual(mqtt_subscribe(r["sock"], topic), 0)
        return r["sock"]

class LegacyFleetTest(DevicesTest):
    """The listings and the audits, on a broker that admits the crafted
    fleet's weak devices."""
    legacy = True

    def test_list_pages_filters_and_prefixes(self):
        for dev, cid in (("dev-a1", "d:acme:sensor:a1"), ("dev-soon", "d:acme:sensor:e1"), ("dev-sha1", "d:acme:sensor:s1"),
                         ("dev-rsa1024", "d:acme:sensor:w1")):
            self.assertEqual(self.connect(dev, cid, keep=False)["result"], "accepted")
        keep = self.attach("dev-a1", "d:acme:sensor:a1")
        ids = [d["id"] for d in self.devices()["devices"]]
        self.assertEqual(ids, sorted(ids))
        self.assertEqual(len(ids), 4)
        page = self.devices(limit=2, offset=1)
        self.assertEqual(([d["id"] for d in page["devices"]], page["total"], page["offset"]), (ids[1:3], 4, 1))
        self.assertEqual([d["id"] for d in self.devices(prefix="d:acme:sensor:s")["devices"]], ["d:acme:sensor:s1"])
        self.assertEqual([d["id"] for d in self.devices(filter="expiring")["devices"]], ["d:acme:sensor:e1"])
        self.assertEqual([d["id"] for d in self.devices(filter="connected")["devices"]], ["d:acme:sensor:a1"])
        ok(self.b, "blockDevice", tenant="acme", id="d:acme:sensor:w1")
        self.assertEqual([d["id"] for d in self.devices(filter="blocked")["devices"]], ["d:acme:sensor:w1"])
        self.assertNotEqual(self.connect("dev-rsa1024", "d:acme:sensor:w1", keep=False)["result"], "accepted")
        refused = self.devices(filter="refused")["devices"]
        self.assertEqual([d["id"] for d in refused], ["d:acme:sensor:w1"])
        self.assertEqual(refused[0]["lastRefusal"]["reason"], "blocked")
        self.assertIn("unknown filter 'nope'", fail(control(self.b, [{"command": "listDevices", "tenant": "acme", "filter": "nope"}])))
        self.assertIn("'limit' must be at most 1000", fail(control(self.b, [{"command": "listDevices", "tenant": "acme", "limit": 1001}])))
        keep.close()

    # ------------------------------------------------------------------
    # Audits

    def findings(self, **kw):
        data = ok(self.b, "auditFleet", **kw)
        return data, {(f["finding"], tuple(f.get("devices", f.get("cas", [])))): f for f in data["findings"]}

    def crafted_fleet(self):
        for dev, cid in (("dev-rsa1024", "d:acme:sensor:w1"), ("dev-sha1", "d:acme:sensor:s1"),
                         ("dev-soon", "d:acme:sensor:e1"), ("dev-multi", "d:acme:sensor:m1"), ("dev-multi", "d:acme:sensor:m2")):
            self.assertEqual(self.connect(dev, cid, keep=False)["result"], "accepted", dev)
        # One id, two certificates, from two clients at once: the second
        # takes the session over from the first.
        self.attach("dev-a1", "d:acme:sensor:a1")
        self.attach("dev-a1b", "d:acme:sensor:a1")
        self.b.wait_log("device 'd:acme:sensor:a1' (tenant acme) connected with certificate")

    def test_each_finding_comes_from_a_crafted_fleet(self):
        self.crafted_fleet()
        soon_ca = self.work.file("ca-soon")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", soon_ca + ".key", "-out", soon_ca + ".pem", "-subj", "/CN=CA expiring soon", "-days", "10",
                        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
                       check=True, capture_output=True)
        soon_id = ok(self.b, "addCA", tenant="acme", certificate=read(soon_ca + ".pem"))["ca"]["id"]
        data, got = self.findings(tenant="acme")
        self.assertEqual(got[("expiringCertificate", ("d:acme:sensor:e1",))]["certificate"], fp_of(pki("dev-soon.pem")))
        self.assertEqual(got[("weakKey", ("d:acme:sensor:w1",))]["keyBits"], 1024)
        self.assertEqual(got[("weakSignature", ("d:acme:sensor:s1",))]["signatureAlgorithm"], "ecdsa-with-SHA1")
        self.assertEqual(got[("sharedCertificate", ("d:acme:sensor:m1", "d:acme:sensor:m2"))]["certificate"], fp_of(pki("dev-multi.pem")))
        self.assertEqual(sorted(got[("clonedDevice", ("d:acme:sensor:a1",))]["certificates"]),
                         sorted([fp_of(pki("dev-a1.pem")), fp_of(pki("dev-a1b.pem"))]))
        self.assertIn(("expiringCA", (soon_id,)), got)
        self.assertNotIn(("expiringCA", (self.ca,)), got)
        self.assertIn(("caWithoutCRL", (self.ca,)), got)
        self.assertEqual(data["counts"]["expiringCertificate"], 1)

    def test_connected_devices_a_block_or_a_crl_refuses_are_findings(self):
        self.attach("dev-a2", "d:acme:meter:a2")
        self.attach("dev-a1", "d:acme:sensor:a1")
        resp = control(self.b, [{"command": "uploadCRL", "tenant": "acme", "crl": read(pki("crl-a.pem"))},
                                {"command": "blockDevice", "tenant": "acme", "id": "d:acme:sensor:a1"},
                                {"command": "auditFleet", "tenant": "acme"}])
        for r in resp["responses"]:
            self.assertNotIn("error", r, r)
        found = {(f["finding"], tuple(f["devices"])) for f in resp["responses"][2]["data"]["findings"] if "devices" in f}
        self.assertIn(("revokedButConnected", ("d:acme:meter:a2",)), found)
        self.assertIn(("blockedButConnected", ("d:acme:sensor:a1",)), found)
        # After the tick, neither is connected: no such finding.
        time.sleep(1.5)
        data, got = self.findings(tenant="acme")
        self.assertEqual((data["counts"]["revokedButConnected"], data["counts"]["blockedButConnected"]), (0, 0))

    def test_a_clean_fleet_has_no_findings(self):
        ok(self.b, "uploadCRL", tenant="acme", crl=read(pki("crl-a-empty.pem")))
        self.attach("dev-a1", "d:acme:sensor:a1")
        self.assertEqual(self.connect("dev-a2", "d:acme:meter:a2", keep=False)["result"], "accepted")
        data, got = self.findings()
        self.assertEqual(data["findings"], [], data)
        self.assertEqual(set(data["counts"].values()), {0})
        self.assertFalse(data["truncated"])

    def test_audit_counts_are_metrics_and_the_periodic_audit_is_an_event(self):
        self.crafted_fleet()
        watcher = self.admin_watcher("$SYS/broker/certmgr/#")
        seen, events = {}, []
        deadline = time.time() + 12
        # The trust lists' part of an audit is counted at once, the
        # inventory's a few ticks later on the worker: wait for both.
        while time.time() < deadline and not (events and seen.get("audit/weak_keys") == "1"
                                               and seen.get("audit/weak_signatures") == "1"):
            for topic, payload in mqtt_messages(watcher, 1):
                if topic.endswith("/events"):
                    e = json.loads(payload)
                    if e["event"] == "audit":
                        events.append(e)
                else:
                    seen[topic[len("$SYS/broker/certmgr/"):]] = payload.decode()
        self.assertTrue(events, "no audit event")
        self.assertEqual(events[-1]["counts"]["weakKey"], 1)
        self.assertEqual(events[-1]["counts"]["clonedDevice"], 1)
        for name in ("expiring_certificates", "shared_certificates", "cloned_devices", "weak_keys", "weak_signatures",
                     "expiring_cas", "cas_without_crl", "blocked_connected", "revoked_connected"):
            self.assertIn("audit/" + name, seen)
        self.assertEqual(seen["audit/weak_signatures"], "1")
        self.assertEqual(seen["audit/revoked_connected"], "0")
        self.assertEqual(seen["devices/entries"], "6")



for name in [n for n in vars(DevicesTest) if n.startswith("test_")]:
    # The block tests run once, on the default broker.
    setattr(LegacyFleetTest, name, None)


if __name__ == "__main__":
    unittest.main()
