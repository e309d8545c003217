"""Trust lists as a whole, disconnecting devices that are no longer
trusted, and the rejected-chains list: real broker, real clients."""

import base64
import hashlib
import json
import os
import shutil
import select
import ssl
import subprocess
import time
import unittest

from harness import cert_id, closed_within
from harness import (Broker, BrokerTest, Workdir, control, ctl, ok, pki, read, mqtt_connect, tree_digest, test_pki)


class TrustTest(BrokerTest):
    plugin_opts = {"rejected_max": "3"}

    def acme(self, **extra):
        ok(self.b, "createTenant", tenant="acme", hostnames=["acme.test"], **extra)
        return ok(self.b, "addCA", tenant="acme", certificate=read(pki("ca-a.pem")))["ca"]["id"]

    def attach(self, dev="dev-a1", clientid="d:acme:sensor:a1", sni="acme.test", cert=None):
        r = mqtt_connect(self.b.port, clientid, sni=sni, cafile=self.cafile,
                         cert=cert or pki(dev + ".pem"), key=pki(dev + ".key"), keep=True)
        self.assertEqual(r["result"], "accepted")
        self.socks.append(r["sock"])
        return r["sock"]

    # ------------------------------------------------------------------
    # Disconnect on loss of trust

    def assert_change_disconnects(self, change, reason):
        ca = self.acme()
        sock = self.attach()
        bystander = None
        if change != "tenant":
            ok(self.b, "createTenant", tenant="other", hostnames=["other.test"])
            ok(self.b, "addCA", tenant="other", certificate=read(pki("ca-b.pem")))
            bystander = self.attach("dev-b1", "d:other:sensor:b1", "other.test")
        if change == "removeCA":
            ok(self.b, "removeCA", tenant="acme", id=ca)
        elif change == "deactivate":
            ok(self.b, "setCAState", tenant="acme", id=ca, active=False)
        elif change == "tenant":
            ok(self.b, "deleteTenant", tenant="acme")
        elif change == "hostname":
            ok(self.b, "modifyTenant", tenant="acme", hostnames=["elsewhere.test"])
        elif change == "policy":
            ok(self.b, "modifyTenant", tenant="acme", policy="certificate+token")
        elif change == "org":
            ok(self.b, "modifyTenant", tenant="acme", orgId="acme2")
        elif change == "clearCAs":
            ok(self.b, "clearCAs", tenant="acme")
        self.assertTrue(closed_within(sock, 5), "device still connected after " + change)
        self.b.wait_log("disconnecting 'd:acme:sensor:a1' (tenant acme): " + reason)
        if bystander:
            self.assertFalse(closed_within(bystander, 0.5), "a device of another tenant was disconnected")

    def test_removing_its_ca_disconnects_a_device(self):
        self.assert_change_disconnects("removeCA", "its certificate no longer verifies")

    def test_deactivating_its_ca_disconnects_a_device(self):
        self.assert_change_disconnects("deactivate", "its certificate no longer verifies")

    def test_clearing_the_cas_disconnects_a_device(self):
        self.assert_change_disconnects("clearCAs", "its certificate no longer verifies")

    def test_deleting_its_tenant_disconnects_a_device(self):
        self.assert_change_disconnects("tenant", "its tenant was deleted")

    def test_removing_its_host_name_disconnects_a_device(self):
        self.assert_change_disconnects("hostname", "its host name no longer belongs to its tenant")

    def test_changing_the_policy_disconnects_a_device(self):
        self.assert_change_disconnects("policy", "its tenant's policy changed")

    def test_changing_the_org_id_disconnects_a_device(self):
        self.assert_change_disconnects("org", "its tenant's org id changed")

    def test_untrusting_a_pinned_certificate_disconnects_its_device(self):
        ok(self.b, "createTenant", tenant="acme", hostnames=["acme.test"])
        added = ok(self.b, "trustCertificate", tenant="acme", certificate=read(pki("dev-a1.pem")))["added"]
        self.assertEqual(added, [{"id": cert_id(pki("dev-a1.pem")), "kind": "pinned"}])
        sock = self.attach()
        # Another device of the same CA is not pinned: refused.
        r = mqtt_connect(self.b.port, "d:acme:meter:a2", sni="acme.test", cafile=self.cafile,
                         cert=pki("dev-a2.pem"), key=pki("dev-a2.key"))
        self.assertTrue(r["result"].startswith("tls-error"))
        ok(self.b, "untrustCertificate", tenant="acme", id=added[0]["id"])
        self.assertTrue(closed_within(sock, 5))

    def test_changes_that_keep_trust_leave_devices_connected(self):
        self.acme()
        sock = self.attach()
        ok(self.b, "addCA", tenant="acme", certificate=read(pki("ca-b.pem")))
        ok(self.b, "modifyTenant", tenant="acme", publishPatterns=["{org}/#"], hostnames=["acme.test", "more.test"])
        ok(self.b, "createTenant", tenant="third")
        self.assertFalse(closed_within(sock, 1))

    def test_a_device_is_disconnected_when_its_certificate_expires(self):
        self.acme()
        d = test_pki()
        key, csr, crt = [os.path.join(self.work.path, n) for n in ("short.key", "short.csr", "short.pem")]
        subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", key, "-out", csr, "-subj", "/CN=d:sensor:short"], check=True, capture_output=True)
        os.chmod(key, 0o644)
        end = time.strftime("%Y%m%d%H%M%SZ", time.gmtime(time.time() + 4))
        subprocess.run(["openssl", "ca", "-batch", "-config", "openssl.cnf", "-cert", "ca-a.pem", "-keyfile", "ca-a.key",
                        "-in", csr, "-startdate", "20200101000000Z", "-enddate", end, "-extfile", "openssl.cnf",
                        "-extensions", "v3_dev", "-notext", "-out", crt], check=True, capture_output=True, cwd=d)
        r = mqtt_connect(self.b.port, "d:acme:sensor:short", sni="acme.test", cafile=self.cafile, cert=crt, key=key, keep=True)
        self.assertEqual(r["result"], "accepted")
        self.socks.append(r["sock"])
        started = time.time()
        self.assertTrue(closed_within(r["sock"], 12), "not disconnected at expiry")
        self.assertGreater(time.time() - started, 1)
        self.b.wait_log("disconnecting 'd:acme:sensor:short' (tenant acme): its certificate no longer verifies: certificate has expired")

    def test_a_device_is_disconnected_when_its_ca_expires(self):
        ok(self.b, "createTenant", tenant="acme", hostnames=["acme.test"])
        w = self.work.path
        shutil.copy(os.path.join(test_pki(), "openssl.cnf"), w)
        open(os.path.join(w, "index.txt"), "w").close()
        with open(os.path.join(w, "serial"), "w") as f:
            f.write("01\n")

        def run(*args):
            subprocess.run(args, check=True, capture_output=True, cwd=w)

        def when(seconds):
            return time.strftime("%Y%m%d%H%M%SZ", time.gmtime(time.time() + seconds))

        # A CA that expires in 6 s, and a device of it valid for a day.
        for name, cn in (("sca", "Short-lived CA"), ("sdev", "d:sensor:sca")):
            run("openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + cn, "-config", "openssl.cnf")
            os.chmod(os.path.join(w, name + ".key"), 0o644)
        run("openssl", "ca", "-batch", "-config", "openssl.cnf", "-selfsign", "-keyfile", "sca.key", "-in", "sca.csr",
            "-startdate", "20200101000000Z", "-enddate", when(6), "-extfile", "openssl.cnf", "-extensions", "v3_ca",
            "-notext", "-out", "sca.pem")
        run("openssl", "ca", "-batch", "-config", "openssl.cnf", "-cert", "sca.pem", "-keyfile", "sca.key", "-in", "sdev.csr",
            "-startdate", "20200101000000Z", "-enddate", when(86400), "-extfile", "openssl.cnf", "-extensions", "v3_dev",
            "-notext", "-out", "sdev.pem")
        ok(self.b, "addCA", tenant="acme", certificate=read(os.path.join(w, "sca.pem")))
        r = mqtt_connect(self.b.port, "d:acme:sensor:sca", sni="acme.test", cafile=self.cafile,
                         cert=os.path.join(w, "sdev.pem"), key=os.path.join(w, "sdev.key"), keep=True)
        self.assertEqual(r["result"], "accepted")
        self.socks.append(r["sock"])
        started = time.time()
        self.assertTrue(closed_within(r["sock"], 15), "not disconnected when its CA expired")
        self.assertGreater(time.time() - started, 1)
        self.b.wait_log("disconnecting 'd:acme:sensor:sca' (tenant acme): its certificate no longer verifies: certificate has expired")

    # ------------------------------------------------------------------
    # Trust lists as a whole

    def test_a_bundle_of_three_enters_in_one_trust_certificate(self):
        ok(self.b, "createTenant", tenant="acme", hostnames=["acme.test"])
        bundle = read(pki("ca-a.pem")) + read(pki("ca-b.pem")) + read(pki("dev-b1.pem"))
        added = ok(self.b, "trustCertificate", tenant="acme", certificate=bundle, description="bundle")["added"]
        self.assertEqual([a["kind"] for a in added], ["ca", "ca", "pinned"])
        listed = ok(self.b, "listCAs", tenant="acme")
        self.assertEqual(sorted(c["id"] for c in listed["cas"]), sorted([cert_id(pki("ca-a.pem")), cert_id(pki("ca-b.pem"))]))
        self.assertEqual([c["id"] for c in listed["pinned"]], [cert_id(pki("dev-b1.pem"))])
        self.assertEqual(mqtt_connect(self.b.port, "d:acme:sensor:a1", sni="acme.test", cafile=self.cafile,
                                      cert=pki("dev-a1.pem"), key=pki("dev-a1.key"))["result"], "accepted")

    def test_a_bundle_with_one_bad_certificate_adds_nothing(self):
        ok(self.b, "createTenant", tenant="acme")
        digest = tree_digest(self.work.store)
        resp = control(self.b, [{"command": "trustCertificate", "tenant": "acme",
                                 "certificate": read(pki("ca-a.pem")) + read(pki("ca-expired.pem"))}])
        self.assertIn("certificate 2 of 2: the CA certificate has expired", resp["responses"][0]["error"])
        self.assertEqual(tree_digest(self.work.store), digest)
        self.assertEqual(ok(self.b, "listCAs", tenant="acme"), {"cas": [], "pinned": [], "issuers": []})

    def test_export_trust_list_round_trips(self):
        ok(self.b, "createTenant", tenant="acme")
        ok(self.b, "trustCertificate", tenant="acme", certificate=read(pki("ca-a.pem")) + read(pki("dev-b1.pem")))
        exported = ok(self.b, "exportTrustList", tenant="acme")
        self.assertEqual(exported["count"], 2)
        ok(self.b, "createTenant", tenant="copy")
        ok(self.b, "trustCertificate", tenant="copy", certificate=exported["trustList"])
        again = ok(self.b, "exportTrustList", tenant="copy")
        self.assertEqual(again["trustList"], exported["trustList"])

    def test_inspect_certificate_stores_nothing(self):
        digest = tree_digest(self.work.store)
        der = base64.b64encode(ssl.PEM_cert_to_DER_cert(read(pki("dev-a1.pem")))).decode()
        for given in (read(pki("two-cas.pem")), der):
            certs = ok(self.b, "inspectCertificate", certificate=given)["certificates"]
            self.assertTrue(certs)
        certs = ok(self.b, "inspectCertificate", certificate=read(pki("two-cas.pem")))["certificates"]
        self.assertEqual([c["subject"] for c in certs], ["CN=Test CA A", "CN=Test CA B"])
        self.assertEqual(tree_digest(self.work.store), digest)

    def test_trust_list_bad_inputs_change_nothing(self):
        ca = self.acme()
        digest = tree_digest(self.work.store)
        cases = [
            ({"command": "setCAState", "tenant": "acme", "id": ca}, "'active' is missing"),
            ({"command": "setCAState", "tenant": "acme", "id": ca, "active": "no"}, "'active' must be true or false"),
            ({"command": "setCAState", "tenant": "acme", "id": "x" * 64, "active": False}, "no CA"),
            ({"command": "trustCertificate", "tenant": "acme", "certificate": read(pki("ca-a.pem"))}, "already in tenant 'acme'"),
            ({"command": "trustCertificate", "tenant": "acme", "certificate": read(pki("ca-no-certsign.pem"))}, "lacks keyCertSign"),
            ({"command": "trustCertificate", "tenant": "nope", "certificate": read(pki("ca-b.pem"))}, "no tenant 'nope'"),
            ({"command": "untrustCertificate", "tenant": "acme", "id": "0" * 64}, "no certificate"),
            ({"command": "inspectCertificate", "certificate": "garbage!"}, "not a PEM certificate nor base64 DER"),
            ({"command": "inspectCertificate"}, "'certificate' is missing"),
            ({"command": "exportTrustList", "tenant": 3}, "'tenant' must be a string"),
            ({"command": "trustRejected", "id": "0" * 64, "tenant": "acme", "anchor": "leaf"}, "no rejected chain"),
            ({"command": "getRejected", "id": "zz"}, "no rejected chain"),
        ]
        for cmd, error in cases:
            r = control(self.b, [cmd])["responses"][0]
            self.assertIn(error, r.get("error", ""), cmd)
        self.assertEqual(tree_digest(self.work.store), digest)

    # ------------------------------------------------------------------
    # Rejected chains

    def refuse(self, dev, clientid="d:acme:sensor:x", cert=None):
        r = mqtt_connect(self.b.port, clientid, sni="acme.test", cafile=self.cafile,
                         cert=cert or pki(dev + ".pem"), key=pki(dev + ".key"))
        self.assertTrue(r["result"].startswith("tls-error"), dev)

    def test_refused_chain_is_listed_and_trusted_by_its_root(self):
        ok(self.b, "createTenant", tenant="acme", hostnames=["acme.test"])
        chain = os.path.join(self.work.path, "a1-chain.pem")
        with open(chain, "w") as f:
            f.write(read(pki("dev-a1.pem")) + read(pki("ca-a.pem")))
        self.refuse("dev-a1", cert=chain)
        self.refuse("dev-a1", cert=chain)
        rejected = ok(self.b, "listRejected")["rejected"]
        self.assertEqual(len(rejected), 1)
        r = rejected[0]
        # An entry is the chain as sent: its id is the SHA-256 of the
        # certificates' DER one after the other.
        sent = b"".join(ssl.PEM_cert_to_DER_cert(read(pki(n + ".pem"))) for n in ("dev-a1", "ca-a"))
        self.assertEqual((r["id"], r["leafId"], r["count"], r["sni"], r["tenant"], r["address"], r["chainLength"], r["commonName"]),
                         (hashlib.sha256(sent).hexdigest(), cert_id(pki("dev-a1.pem")), 2, "acme.test", "acme", "127.0.0.1", 2,
                          "d:sensor:a1"))
        self.assertIn("self-signed certificate in certificate chain", r["reason"])
        full = ok(self.b, "getRejected", id=r["id"])["rejected"]
        self.assertEqual(full["chain"].strip(), (read(pki("dev-a1.pem")) + read(pki("ca-a.pem"))).strip())
        # The client sent its CA: that top certificate becomes a CA of acme.
        done = ok(self.b, "trustRejected", id=r["id"], tenant="acme", anchor="root")
        self.assertEqual(done, {"id": cert_id(pki("ca-a.pem")), "kind": "ca"})
        self.assertEqual(ok(self.b, "listRejected")["rejected"], [])
        self.assertEqual(mqtt_connect(self.b.port, "d:acme:sensor:a1", sni="acme.test", cafile=self.cafile,
                                      cert=chain, key=pki("dev-a1.key"))["result"], "accepted")

    def test_refused_leaf_is_trusted_by_pinning_it(self):
        ok(self.b, "createTenant", tenant="acme", hostnames=["acme.test"])
        self.refuse("dev-b1")
        rid = cert_id(pki("dev-b1.pem"))
        r = control(self.b, [{"command": "trustRejected", "id": rid, "tenant": "acme", "anchor": "root"}])["responses"][0]
        self.assertIn("not a CA: trust its leaf instead", r["error"])
        r = control(self.b, [{"command": "trustRejected", "id": rid, "tenant": "acme", "anchor": "middle"}])["responses"][0]
        self.assertIn("'anchor' must be root or leaf", r["error"])
        self.assertEqual(ok(self.b, "trustRejected", id=rid, tenant="acme", anchor="leaf"), {"id": rid, "kind": "pinned"})
        self.assertEqual(mqtt_connect(self.b.port, "d:acme:sensor:b1", sni="acme.test", cafile=self.cafile,
                                      cert=pki("dev-b1.pem"), key=pki("dev-b1.key"))["result"], "accepted")

    def test_the_rejected_list_is_bounded_persisted_and_cleared(self):
        ok(self.b, "createTenant", tenant="acme", hostnames=["acme.test"])
        for dev in ("dev-a1", "dev-a2", "gw-a3", "dev-b1", "self-signed-dev"):
            self.refuse(dev)
            time.sleep(1.05)  # distinct lastSeen seconds: the oldest goes first
        listed = ok(self.b, "listRejected")["rejected"]
        self.assertEqual([r["id"] for r in listed],
                         [cert_id(pki(d + ".pem")) for d in ("self-signed-dev", "dev-b1", "gw-a3")])
        self.assertEqual(ok(self.b, "getStatus")["status"]["rejected"], 3)
        # Saved in batches, and at shutdown: a restart keeps the list.
        self.assertEqual(self.b.stop(), 0)
        self.assertTrue(os.path.exists(os.path.join(self.work.store, "rejected.json")))
        self.b.start()
        self.assertEqual([r["id"] for r in ok(self.b, "listRejected")["rejected"]], [r["id"] for r in listed])
        self.assertEqual(ok(self.b, "clearRejected"), {"removed": 3})
        self.assertEqual(ok(self.b, "listRejected")["rejected"], [])

    def test_get_status_counts(self):
        self.acme()
        ok(self.b, "trustCertificate", tenant="acme", certificate=read(pki("dev-b1.pem")))
        self.attach()
        st = ok(self.b, "getStatus")["status"]
        self.assertEqual((st["tenants"], st["cas"], st["pinned"], st["connectedDevices"]), (2, 1, 1, 1))
        self.assertEqual(st["nearestExpiry"]["kind"], "pinned")
        self.assertEqual(st["nearestExpiry"]["id"], cert_id(pki("dev-b1.pem")))

    def test_cli_covers_the_trust_commands(self):
        self.acme()
        ca = cert_id(pki("ca-a.pem"))
        rc, out, err = ctl(self.b, "setCAState", "acme", ca, "--inactive")
        self.assertEqual(rc, 0, err)
        rc, out, err = ctl(self.b, "setCAState", "acme", ca)
        self.assertEqual(rc, 3)
        rc, out, err = ctl(self.b, "trustCertificate", "acme", pki("dev-b1.pem"))
        self.assertEqual(rc, 0, err)
        rc, out, err = ctl(self.b, "listCAs", "acme")
        self.assertIn("inactive", out)
        self.assertIn("pinned", out)
        target = os.path.join(self.work.path, "trust.pem")
        rc, out, err = ctl(self.b, "-o", target, "exportTrustList", "acme")
        self.assertEqual(rc, 0, err)
        self.assertEqual(read(target).count("BEGIN CERTIFICATE"), 2)
        rc, out, err = ctl(self.b, "inspectCertificate", pki("two-cas.pem"))
        self.assertEqual(rc, 0, err)
        self.assertIn("CN=Test CA B", out)
        self.refuse("dev-a2")
        rc, out, err = ctl(self.b, "listRejected")
        self.assertIn(cert_id(pki("dev-a2.pem")), out)
        rc, out, err = ctl(self.b, "trustRejected", cert_id(pki("dev-a2.pem")), "acme", "--anchor", "leaf")
        self.assertEqual(rc, 0, err)
        rc, out, err = ctl(self.b, "untrustCertificate", "acme", cert_id(pki("dev-b1.pem")))
        self.assertEqual(rc, 0, err)
        rc, out, err = ctl(self.b, "getStatus")
        self.assertEqual(json.loads(out)["status"]["pinned"], 1)
        rc, out, err = ctl(self.b, "clearCAs", "acme")
        self.assertEqual(json.loads(out), {"removed": 1})
        rc, out, err = ctl(self.b, "getCA", "acme", ca, "--anchor", "x")
        self.assertEqual(rc, 3)


if __name__ == "__main__":
    unittest.main()
