"""Revocation: CRLs fetched with libcurl when a CA is added (and refused
when they cannot be had), uploaded, learned from device certificates, and
enforced on every handshake and resumption: real broker, real loopback
HTTP server."""

import os
import shutil
import subprocess
import time
import unittest

from crlserver import CrlServer
from harness import Broker, Workdir, control, ctl, ok, pki, read, mqtt_connect, tree_digest, test_pki


class RevocationTest(unittest.TestCase):
    def setUp(self):
        self.work = Workdir()
        self.files = self.work.file("crls")
        os.mkdir(self.files)
        for name in os.listdir(test_pki()):
            if name.startswith("crl-"):
                shutil.copy(os.path.join(test_pki(), name), self.files)
        self.http = CrlServer(self.files)
        self.b = Broker(self.work, plugin_opts={"crl_timeout": "3", "crl_connect_timeout": "2", "crl_max_size": "65536"})
        self.b.start()
        self.cafile = os.path.join(self.work.store, "listener", "mqtt.crt")
        ok(self.b, "createTenant", tenant="acme", hostnames=["acme.test"])

    def tearDown(self):
        rc = self.b.stop()
        self.http.stop()
        log = self.b.log()
        self.work.cleanup()
        self.assertEqual(rc, 0, "broker exit code\n" + log)
        self.assertNotIn("AddressSanitizer", log)

    def connect(self, dev, clientid, session=None, cert=None):
        return mqtt_connect(self.b.port, clientid, sni="acme.test", cafile=self.cafile,
                            cert=cert or pki(dev + ".pem"), key=pki(dev + ".key"), session=session)

    def accepted(self, dev, clientid, cert=None):
        return self.connect(dev, clientid, cert=cert)["result"] == "accepted"

    def make_cert(self, name, cn, issuer, ext):
        """A certificate made now, so that its extensions can name the
        server's port; ext is an openssl extension section body."""
        d = test_pki()
        cnf = self.work.file(name + ".cnf")
        with open(cnf, "w") as f:
            f.write("[ req ]\ndistinguished_name = dn\n[ dn ]\n[ ext ]\n" + ext)
        key, csr, pem = [os.path.join(self.work.path, name + s) for s in (".key", ".csr", ".pem")]
        subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", key, "-out", csr, "-subj", "/CN=" + cn, "-config", cnf], check=True, capture_output=True)
        if issuer is None:
            subprocess.run(["openssl", "x509", "-req", "-in", csr, "-signkey", key, "-days", "30", "-extfile", cnf,
                            "-extensions", "ext", "-out", pem], check=True, capture_output=True)
        else:
            subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", issuer + ".pem", "-CAkey", issuer + ".key",
                            "-CAcreateserial", "-days", "30", "-extfile", cnf, "-extensions", "ext", "-out", pem],
                           check=True, capture_output=True, cwd=d if not issuer.startswith("/") else None)
        os.chmod(key, 0o644)
        return pem, key

    # ------------------------------------------------------------------
    # The sources of a CRL

    def test_crl_url_given_at_add_time_is_enforced(self):
        ca = ok(self.b, "addCA", tenant="acme", certificate=read(pki("ca-a.pem")),
                crlUrl=self.http.url("/files/crl-a.pem"))["ca"]
        self.assertEqual(ca["crl"]["source"], "url")
        self.assertEqual(ca["crl"]["revoked"], 1)
        self.assertEqual(ca["crl"]["url"], self.http.url("/files/crl-a.pem"))
        self.assertIn("nextUpdate", ca["crl"])
        self.assertTrue(self.accepted("dev-a1", "d:acme:sensor:a1"))
        self.assertFalse(self.accepted("dev-a2", "d:acme:meter:a2"))
        self.b.wait_log("is revoked by the CRL of CA 'Test CA A'")
        # getCA shows the state; the rejected list has the reason.
        got = ok(self.b, "getCA", tenant="acme", id=ca["id"])["ca"]["crl"]
        self.assertEqual((got["source"], got["revoked"]), ("url", 1))
        self.assertIn("revoked", ok(self.b, "listRejected")["rejected"][0]["reason"])

    def test_crl_through_a_redirect_and_in_the_ca_distribution_point(self):
        d = test_pki()
        url = self.http.url("/files/crl-cdp.pem")
        ca_pem, ca_key = self.make_cert("ca-cdp", "CDP Root CA", None,
                                        "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n"
                                        "subjectKeyIdentifier=hash\ncrlDistributionPoints=URI:%s\n" % url)
        base = os.path.join(self.work.path, "ca-cdp")
        good, good_key = self.make_cert("dev-c1", "d:sensor:c1", base, "basicConstraints=critical,CA:FALSE\n")
        bad, bad_key = self.make_cert("dev-c2", "d:sensor:c2", base, "basicConstraints=critical,CA:FALSE\n")
        # The CA's own CRL revoking dev-c2.
        cnf = self.work.file("crl.cnf")
        with open(cnf, "w") as f:
            f.write("[ ca ]\ndefault_ca = c\n[ c ]\ndatabase = %s\ncrlnumber = %s\ndefault_md = sha256\ndefault_crl_days = 30\n"
                    % (self.work.file("idx"), self.work.file("num")))
        open(self.work.file("idx"), "w").close()
        with open(self.work.file("num"), "w") as f:
            f.write("01\n")
        subprocess.run(["openssl", "ca", "-batch", "-config", cnf, "-cert", ca_pem, "-keyfile", ca_key, "-revoke", bad],
                       check=True, capture_output=True)
        subprocess.run(["openssl", "ca", "-batch", "-config", cnf, "-cert", ca_pem, "-keyfile", ca_key, "-gencrl",
                        "-out", os.path.join(self.files, "crl-cdp.pem")], check=True, capture_output=True)
        ca = ok(self.b, "addCA", tenant="acme", certificate=read(ca_pem))["ca"]
        self.assertEqual(ca["crl"]["source"], "distribution-point")
        self.assertEqual(self.http.hits.get("/files/crl-cdp.pem"), 1)
        r = mqtt_connect(self.b.port, "d:acme:sensor:c1", sni="acme.test", cafile=self.cafile, cert=good, key=good_key)
        self.assertEqual(r["result"], "accepted")
        r = mqtt_connect(self.b.port, "d:acme:sensor:c2", sni="acme.test", cafile=self.cafile, cert=bad, key=bad_key)
        self.assertNotEqual(r["result"], "accepted")
        # Through a redirect, for another tenant.
        ok(self.b, "createTenant", tenant="beta", hostnames=["beta.test"])
        ca = ok(self.b, "addCA", tenant="beta", certificate=read(pki("ca-a.pem")),
                crlUrl=self.http.url("/redirect/crl-a.pem"))["ca"]
        self.assertEqual(ca["crl"]["revoked"], 1)

    def test_uploaded_crl_is_enforced(self):
        ok(self.b, "addCA", tenant="acme", certificate=read(pki("ca-a.pem")))
        self.assertTrue(self.accepted("dev-a2", "d:acme:meter:a2"))
        up = ok(self.b, "uploadCRL", tenant="acme", crl=read(pki("crl-a.pem")))
        self.assertEqual(up["revoked"], 1)
        self.assertFalse(self.accepted("dev-a2", "d:acme:meter:a2"))
        self.assertTrue(self.accepted("dev-a1", "d:acme:sensor:a1"))
        # A delta CRL is held beside its base (path validation applies it
        # on the base, never as a complete CRL).
        ok(self.b, "uploadCRL", tenant="acme", crl=read(pki("crl-a-delta.pem")))
        self.assertFalse(self.accepted("dev-a2", "d:acme:meter:a2"))
        self.assertTrue(self.accepted("dev-a1", "d:acme:sensor:a1"))
        # A CRL of a CA the tenant does not have; garbage.
        for crl, error in ((read(pki("crl-b.pem")), "not issued by any CA of tenant 'acme'"),
                           (read(pki("crl-a-expired.pem")), "out of date"),
                           ("garbage", "neither PEM nor base64 DER")):
            r = control(self.b, [{"command": "uploadCRL", "tenant": "acme", "crl": crl}])["responses"][0]
            self.assertIn(error, r.get("error", ""))

    def test_crl_learned_from_a_device_certificate(self):
        url = self.http.url("/files/crl-a.pem")
        ok(self.b, "addCA", tenant="acme", certificate=read(pki("ca-a.pem")))
        # A revoked device whose certificate names the CRL: the first
        # handshake is let in (when-available) and starts the download.
        d = test_pki()
        cnf = self.work.file("cdp.cnf")
        with open(cnf, "w") as f:
            f.write("[ ext ]\nbasicConstraints=critical,CA:FALSE\ncrlDistributionPoints=URI:%s\n" % url)
        dev = self.work.file("dev-a2-cdp.pem")
        # dev-a2's own key and serial cannot be reused by openssl x509: sign
        # a new certificate with dev-a2's serial, which crl-a revokes.
        serial = subprocess.run(["openssl", "x509", "-in", pki("dev-a2.pem"), "-noout", "-serial"],
                                capture_output=True, text=True, check=True).stdout.strip().split("=")[1]
        csr = self.work.file("a2.csr")
        subprocess.run(["openssl", "req", "-new", "-key", pki("dev-a2.key"), "-subj", "/CN=meter two", "-out", csr],
                       check=True, capture_output=True)
        subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", "ca-a.pem", "-CAkey", "ca-a.key", "-set_serial",
                        "0x" + serial, "-days", "30", "-extfile", cnf, "-extensions", "ext", "-out", dev],
                       check=True, capture_output=True, cwd=d)
        with open(dev) as f, open(self.work.file("dev-a2-cdp-email.pem"), "w") as g:
            g.write(f.read())
        r = mqtt_connect(self.b.port, "d:acme:x:y", sni="acme.test", cafile=self.cafile, cert=dev, key=pki("dev-a2.key"))
        self.b.wait_log("learnCRL | tenant=acme")
        ca = ok(self.b, "listCAs", tenant="acme")["cas"][0]
        self.assertEqual((ca["crl"]["source"], ca["crl"]["revoked"]), ("learned", 1))
        self.assertFalse(self.accepted("dev-a2", "d:acme:meter:a2"))
        self.assertTrue(self.accepted("dev-a1", "d:acme:sensor:a1"))

    # ------------------------------------------------------------------
    # Admission refused, store unchanged

    def test_add_ca_is_refused_when_its_crl_cannot_be_had(self):
        closed = self.http.url("/x").replace(str(self.http.port), "1")
        cases = [
            (self.http.url("/404"), "404"),
            (closed, "onnect"),
            (self.http.url("/hang"), "timed out"),
            (self.http.url("/garbage"), "not a CRL"),
            (self.http.url("/files/crl-b.pem"), "not signed by the CA it is for"),
            (self.http.url("/files/crl-a-expired.pem"), "nextUpdate has passed"),
            (self.http.url("/big"), "larger than the limit"),
            (self.http.url("/loop"), "edirect"),
            (self.http.url("/files/crl-a-delta.pem"), "delta CRLs"),
            ("ftp://127.0.0.1/crl", "must be an http:// or https:// URL"),
        ]
        digest = tree_digest(self.work.store)
        for url, error in cases:
            started = time.time()
            r = control(self.b, [{"command": "addCA", "tenant": "acme", "certificate": read(pki("ca-a.pem")),
                                  "crlUrl": url}], timeout=20)["responses"][0]
            self.assertIn(error, r.get("error", ""), url)
            self.assertNotIn("data", r)
            self.assertLess(time.time() - started, 10, url)
        self.assertEqual(tree_digest(self.work.store), digest)
        self.assertEqual(ok(self.b, "listCAs", tenant="acme")["cas"], [])

    def test_other_requests_are_served_while_a_download_hangs(self):
        import json
        slow = subprocess.Popen(["mosquitto_rr", "-h", "localhost", "-p", str(self.b.port), "-t", "$CONTROL/certmgr/v1",
                                 "-e", "$CONTROL/certmgr/v1/response", "-W", "20",
                                 "--cafile", self.cafile, "--cert", os.path.join(self.work.store, "admin", "admin.pem"),
                                 "--key", os.path.join(self.work.store, "admin", "admin.key"),
                                 "-m", json.dumps({"commands": [
                                     {"command": "addCA", "tenant": "acme", "certificate": read(pki("ca-a.pem")),
                                      "crlUrl": self.http.url("/hang"), "correlationData": "1"},
                                     {"command": "listCAs", "tenant": "acme", "correlationData": "2"}]})],
                                stdout=subprocess.PIPE, text=True)
        time.sleep(0.5)
        started = time.time()
        self.assertEqual(ok(self.b, "listTenants")["tenants"][0]["tenant"], "acme")
        self.assertTrue(self.accepted("dev-a1", "d:acme:sensor:a1") is False)
        self.assertLess(time.time() - started, 2)
        out, _ = slow.communicate(timeout=30)
        r = json.loads(out)["responses"]
        self.assertIn("timed out", r[0]["error"])
        # The later command of the same request waited for the first.
        self.assertEqual(r[1]["data"]["cas"], [])

    # ------------------------------------------------------------------
    # Enforcement

    def test_a_revoked_intermediate_shuts_out_its_devices(self):
        ok(self.b, "addCA", tenant="acme", certificate=read(pki("ca-a.pem")), crlUrl=self.http.url("/files/crl-a-empty.pem"))
        ok(self.b, "addCA", tenant="acme", certificate=read(pki("ca-int.pem")), crlUrl=self.http.url("/files/crl-int-empty.pem"))
        self.assertTrue(self.accepted("dev-i1", "d:acme:sensor:i1"))
        ok(self.b, "uploadCRL", tenant="acme", crl=read(pki("crl-a-int.pem")))
        self.assertFalse(self.accepted("dev-i1", "d:acme:sensor:i1"))
        self.assertTrue(self.accepted("dev-a1", "d:acme:sensor:a1"))

    def test_a_revoked_device_cannot_resume_its_session(self):
        ok(self.b, "addCA", tenant="acme", certificate=read(pki("ca-a.pem")), crlUrl=self.http.url("/files/crl-a-empty.pem"))
        first = self.connect("dev-a2", "d:acme:meter:a2")
        self.assertEqual(first["result"], "accepted")
        again = self.connect("dev-a2", "d:acme:meter:a2", session=first["session"])
        self.assertTrue(again["reused"])
        ok(self.b, "uploadCRL", tenant="acme", crl=read(pki("crl-a.pem")))
        late = self.connect("dev-a2", "d:acme:meter:a2", session=again["session"])
        self.assertNotEqual(late["result"], "accepted")
        self.assertFalse(late["reused"])

    def test_required_revocation_refuses_a_chain_with_an_unknown_crl(self):
        ok(self.b, "modifyTenant", tenant="acme", revocation="required")
        ok(self.b, "addCA", tenant="acme", certificate=read(pki("ca-b.pem")))
        self.assertFalse(self.accepted("dev-b1", "d:acme:sensor:b1"))
        self.b.wait_log("no CRL is known for CA 'Test CA B' (revocation required)")
        ok(self.b, "uploadCRL", tenant="acme", crl=read(pki("crl-b.pem")))
        self.assertTrue(self.accepted("dev-b1", "d:acme:sensor:b1"))
        # when-available lets a chain with an unknown CRL in
        ok(self.b, "addCA", tenant="acme", certificate=read(pki("ca-a.pem")))
        self.assertFalse(self.accepted("dev-a1", "d:acme:sensor:a1"))
        ok(self.b, "modifyTenant", tenant="acme", revocation="when-available")
        self.assertTrue(self.accepted("dev-a1", "d:acme:sensor:a1"))

    def test_crls_survive_a_restart_without_the_server(self):
        ok(self.b, "addCA", tenant="acme", certificate=read(pki("ca-a.pem")), crlUrl=self.http.url("/files/crl-a.pem"))
        self.http.stop()
        self.assertEqual(self.b.stop(), 0)
        self.b.start()
        self.assertFalse(self.accepted("dev-a2", "d:acme:meter:a2"))
        self.assertTrue(self.accepted("dev-a1", "d:acme:sensor:a1"))
        self.http = CrlServer(self.files)

    def test_cli_sets_crl_sources(self):
        rc, out, err = ctl(self.b, "addCA", "acme", pki("ca-a.pem"), "--crl-url", self.http.url("/files/crl-a-empty.pem"))
        self.assertEqual(rc, 0, err)
        ca_id = [l.split()[-1] for l in out.splitlines() if l.startswith("Id:")][0]
        rc, out, err = ctl(self.b, "uploadCRL", "acme", pki("crl-a.pem"))
        self.assertEqual(rc, 0, err)
        self.assertFalse(self.accepted("dev-a2", "d:acme:meter:a2"))
        rc, out, err = ctl(self.b, "modifyCA", "acme", ca_id, "--crl-url", self.http.url("/404"))
        self.assertEqual(rc, 13)
        self.assertIn("404", err)
        rc, out, err = ctl(self.b, "modifyCA", "acme", ca_id, "--crl-url", self.http.url("/files/crl-a-empty.pem"))
        self.assertEqual(rc, 0, err)
        self.assertTrue(self.accepted("dev-a2", "d:acme:meter:a2"))


if __name__ == "__main__":
    unittest.main()
