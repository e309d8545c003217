"""Devices get and renew their certificates over MQTT (issue 22): a
tenant's issuing CA, claim devices on the enrollment topics only, the
auto, allowlist and approval policies, CSR checks, renewal and the issuing
CA's own CRL, proof of possession for registered CAs. Real broker, real
clients (mosquitto_rr, mosquitto_pub/sub, raw MQTT), real openssl."""

import json
import os
import ssl
import subprocess
import time
import unittest

from harness import (Broker, Workdir, control, ok, pki, mqtt_connect, mqtt_subscribe, mqtt_publish, mqtt_messages,
                     broker_uid_gid, served_certificate, free_port)

ENROLL = "$CONTROL/certmgr/enroll/v1"
ANSWER = "$CONTROL/certmgr/enroll/v1/response"


def sh(*args, data=None):
    out = subprocess.run(list(args), input=data, capture_output=True)
    if out.returncode != 0:
        raise AssertionError("%s failed: %s" % (" ".join(args), out.stderr.decode(errors="replace")))
    return out.stdout


class Pki:
    """Claim CAs, claim certificates, device keys and CSRs, made with the
    openssl command line in a scratch directory."""

    def __init__(self, d):
        self.d = d
        os.makedirs(d, exist_ok=True)

    def p(self, name):
        return os.path.join(self.d, name)

    def ca(self, name, cn):
        sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
           "-keyout", self.p(name + ".key"), "-out", self.p(name + ".pem"), "-subj", "/CN=" + cn, "-days", "30",
           "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        return self.p(name + ".pem")

    def key(self, name, spec="ec:P-256"):
        kind, arg = spec.split(":")
        if kind == "ec":
            sh("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:" + arg, "-out", self.p(name + ".key"))
        else:
            sh("openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:" + arg, "-out", self.p(name + ".key"))
        return self.p(name + ".key")

    def csr(self, name, cn=None, email=None, spec="ec:P-256", key=None):
        key = key or self.key(name, spec)
        args = ["openssl", "req", "-new", "-key", key, "-out", self.p(name + ".csr"), "-subj", "/CN=" + cn if cn else "/O=none"]
        if email:
            args += ["-addext", "subjectAltName=email:" + email]
        sh(*args)
        with open(self.p(name + ".csr")) as f:
            return f.read()

    def sign(self, name, ca, cn, ext="basicConstraints=critical,CA:FALSE\nextendedKeyUsage=clientAuth\n", key=None):
        key = key or self.key(name)
        sh("openssl", "req", "-new", "-key", key, "-out", self.p(name + ".req"), "-subj", "/CN=" + cn)
        extfile = self.p(name + ".ext")
        with open(extfile, "w") as f:
            f.write(ext)
        sh("openssl", "x509", "-req", "-in", self.p(name + ".req"), "-CA", self.p(ca + ".pem"), "-CAkey", self.p(ca + ".key"),
           "-set_serial", str(int.from_bytes(os.urandom(8), "big")), "-out", self.p(name + ".pem"), "-days", "10", "-extfile", extfile)
        return self.p(name + ".pem"), key


class EnrollTest(unittest.TestCase):
    plugin_opts = {}

    def setUp(self):
        self.work = Workdir()
        self.crl_dir = self.work.file("www")
        os.mkdir(self.crl_dir)
        uid, gid = broker_uid_gid()
        os.chown(self.crl_dir, uid, gid)
        opts = {"enroll_crl_dir": self.crl_dir}
        opts.update(self.plugin_opts)
        self.b = self.broker(opts)
        self.b.start()
        self.cafile = os.path.join(self.work.store, "listener", "mqtt.crt")
        self.pki = Pki(self.work.file("pki"))
        self.socks = []

    def tearDown(self):
        for s in self.socks:
            s.close()
        rc = self.b.stop()
        log = self.b.log()
        self.work.cleanup()
        self.assertEqual(rc, 0, "broker exit code\n" + log)
        self.assertNotIn("AddressSanitizer", log)
        self.assertNotIn("runtime error:", log)

    def broker(self, opts):
        return Broker(self.work, plugin_opts=opts)

    # --- helpers ---

    def issuing_ca(self, **fields):
        fields.setdefault("subject", {"CN": "Default Devices CA", "O": "Example"})
        return ok(self.b, "createIssuingCA", tenant="default", **fields)["ca"]

    def claim_setup(self, mode="auto", **enrollment):
        self.ca = self.issuing_ca()
        self.pki.ca("claim-ca", "Claim CA")
        with open(self.pki.p("claim-ca.pem")) as f:
            ok(self.b, "addCA", tenant="default", certificate=f.read(), purpose="claim")
        self.claim_cert, self.claim_key = self.pki.sign("claim", "claim-ca", "batch-1")
        enrollment["mode"] = mode
        ok(self.b, "modifyTenant", tenant="default", enrollment=enrollment)

    def rr(self, payload, cert, key, clientid="claimer-1", wait=5):
        """One request on the enrollment topic with mosquitto_rr (MQTT v5
        correlation data); the parsed answer, or None."""
        out = subprocess.run(["mosquitto_rr", "-h", "localhost", "-p", str(self.b.port), "-i", clientid, "-t", ENROLL, "-e", ANSWER,
                              "-W", str(wait), "--insecure", "--cafile", self.cafile, "--cert", cert, "--key", key, "-m", payload],
                             capture_output=True, text=True, timeout=wait + 10)
        if out.returncode != 0 or not out.stdout.strip():
            return None
        return json.loads(out.stdout)

    def enroll(self, csr, clientid="claimer-1", cert=None, key=None, corr="c1"):
        return self.rr(json.dumps({"csr": csr, "correlationData": corr}), cert or self.claim_cert, key or self.claim_key, clientid)

    def write(self, name, text):
        path = self.pki.p(name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def device_pub(self, clientid, cert, key, topic="default/sensor/s1/x"):
        return subprocess.run(["mosquitto_pub", "-h", "localhost", "-p", str(self.b.port), "-i", clientid, "-t", topic, "-m", "hi",
                               "-q", "1", "--insecure", "--cafile", self.cafile, "--cert", cert, "--key", key],
                              capture_output=True, text=True, timeout=15)

    def raw(self, clientid, cert, key):
        r = mqtt_connect(self.b.port, clientid, cert=cert, key=key, keep=True)
        self.assertEqual(r["result"], "accepted", r)
        self.socks.append(r["sock"])
        return r["sock"]

    def enrolled_device(self, ident="d:sensor:s1", clientid="d:default:sensor:s1"):
        csr = self.pki.csr("dev", cn=ident)
        a = self.enroll(csr)
        self.assertIn("certificate", a, a)
        return self.write("dev.pem", a["certificate"]), self.pki.p("dev.key")


class ClaimTest(EnrollTest):
    def test_claim_device_enrolls_then_connects_with_its_new_certificate(self):
        self.claim_setup(idPattern="d:sensor:*")
        admin = self.raw("watcher-admin", os.path.join(self.work.store, "admin", "admin.pem"),
                         os.path.join(self.work.store, "admin", "admin.key"))
        self.assertEqual(mqtt_subscribe(admin, "$SYS/broker/certmgr/events"), 0)
        csr = self.pki.csr("dev", cn="d:sensor:s1")
        a = self.enroll(csr)
        events = [json.loads(m[1]) for m in mqtt_messages(admin, 3)]
        self.assertIn(("issued", "d:sensor:s1", "claimer-1", "default"),
                      [(e.get("outcome"), e.get("identity"), e.get("clientId"), e.get("tenant")) for e in events
                       if e.get("event") == "enrollment"])
        self.assertIn("certificate", a, a)
        self.assertEqual(a["correlationData"], "c1")
        chain = self.write("dev.pem", a["certificate"])
        # Leaf first, then the issuing CA; the leaf verifies against it.
        self.assertEqual(a["certificate"].count("BEGIN CERTIFICATE"), 2)
        with open(self.pki.p("ca.pem"), "w") as f:
            f.write(self.ca["certificate"])
        out = subprocess.run(["openssl", "verify", "-CAfile", self.pki.p("ca.pem"), "-purpose", "sslclient", chain],
                             capture_output=True, text=True)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        text = sh("openssl", "x509", "-in", chain, "-noout", "-subject", "-ext", "extendedKeyUsage").decode()
        self.assertIn("CN = d:sensor:s1", text)
        self.assertIn("TLS Web Client Authentication", text)
        # As the device: its own topics.
        sock = self.raw("d:default:sensor:s1", chain, self.pki.p("dev.key"))
        self.assertEqual(mqtt_subscribe(sock, "default/sensor/s1/cmd"), 0)
        self.assertEqual(mqtt_subscribe(sock, "default/sensor/s2/cmd"), 0x80)
        r = self.device_pub("d:default:sensor:s1", chain, self.pki.p("dev.key"))
        self.assertEqual(r.returncode, 0, r.stderr)
        # The inventory tells how the device got its certificate.
        d = ok(self.b, "getDevice", tenant="default", id="d:default:sensor:s1")["device"]
        self.assertTrue(d["enrolled"], d)
        self.assertEqual(d["certificate"]["issuer"], self.ca["id"])
        self.assertTrue(ok(self.b, "listDevices", tenant="default")["devices"][0]["enrolled"])

    def test_claim_device_reaches_the_enrollment_topics_only(self):
        self.claim_setup()
        # Under no device client id: the claim certificate proves none.
        r = mqtt_connect(self.b.port, "d:default:sensor:s1", cert=self.claim_cert, key=self.claim_key)
        self.assertNotEqual(r["result"], "accepted")
        watcher = self.raw("d-watch", self.claim_cert, self.claim_key)
        sock = self.raw("claimer-x", self.claim_cert, self.claim_key)
        for topic in ["#", "default/sensor/s1/#", "$CONTROL/certmgr/v1/response", "$SYS/#", "$CONTROL/#", ENROLL, "+/+/+"]:
            self.assertEqual(mqtt_subscribe(sock, topic), 0x80, topic)
        self.assertEqual(mqtt_subscribe(sock, ANSWER), 0)
        # Publishing elsewhere: dropped (an authorised subscriber sees nothing).
        self.assertEqual(mqtt_subscribe(watcher, ANSWER), 0)
        # A device of the tenant watches its own topics: nothing the claim
        # device publishes there arrives.
        chain, key = self.enrolled_device()
        device = self.raw("d:default:sensor:s1", chain, key)
        self.assertEqual(mqtt_subscribe(device, "default/sensor/s1/#"), 0)
        mqtt_publish(sock, "default/sensor/s1/x", "from claim")
        mqtt_publish(sock, "$CONTROL/certmgr/v1", json.dumps({"commands": [{"command": "listTenants"}]}))
        self.assertEqual(mqtt_messages(device, 1.5), [])
        self.assertEqual(mqtt_messages(sock, 1), [])
        # Its own request's answer reaches it, and not the other claim
        # client subscribed to the same topic.
        mqtt_publish(sock, ENROLL, json.dumps({"csr": self.pki.csr("dev", cn="d:sensor:s7"), "correlationData": "mine"}))
        got = mqtt_messages(sock, 5, first_only=True)
        self.assertEqual(len(got), 1)
        self.assertIn("certificate", json.loads(got[0][1]))
        self.assertEqual(mqtt_messages(watcher, 1.5), [])
        self.assertIn("claim device 'claimer-x'", self.b.log())

    def test_a_flood_of_requests_queues_bounded_work(self):
        self.claim_setup()
        sock = self.raw("claimer-flood", self.claim_cert, self.claim_key)
        self.assertEqual(mqtt_subscribe(sock, ANSWER), 0)
        csrs = [self.pki.csr("f%d" % i, cn="d:sensor:f%d" % i) for i in range(12)]

        class Batch:
            """Collects the PUBLISH packets, sent in one write: the broker
            reads them before its next tick hands back any signature."""
            data = b""

            def sendall(self, b):
                Batch.data += b
        for csr in csrs:
            mqtt_publish(Batch(), ENROLL, json.dumps({"csr": csr}))
        sock.sendall(Batch.data)
        answers = [json.loads(m[1]) for m in mqtt_messages(sock, 10, count=12)]
        self.assertEqual(len(answers), 12)
        self.assertTrue(any("too many requests of this connection" in a.get("error", "") for a in answers), answers)
        self.assertTrue(any("certificate" in a for a in answers))

    def test_identity_outside_the_pattern_or_malformed_is_refused(self):
        self.claim_setup(idPattern="d:sensor:*")
        a = self.enroll(self.pki.csr("x1", cn="d:meter:m1"))
        self.assertIn("outside this tenant's idPattern", a["error"])
        # A client id's form, another org's: not an identity.
        a = self.enroll(self.pki.csr("x2", cn="d:other:sensor:s1"))
        self.assertIn("not a device identity", a["error"])
        # Two identities in one CSR.
        a = self.enroll(self.pki.csr("x3", cn="d:sensor:s1", email="d:sensor:s2"))
        self.assertIn("two identities", a["error"])
        a = self.enroll(self.pki.csr("x4", cn="plain name"))
        self.assertIn("not a device identity", a["error"])
        a = self.rr("not json", self.claim_cert, self.claim_key)
        self.assertIn("not a JSON object", a["error"])
        a = self.rr(json.dumps({"csr": "x", "extra": 1}), self.claim_cert, self.claim_key)
        self.assertIn("unknown field 'extra'", a["error"])

    def test_weak_key_and_bad_signature_are_refused(self):
        self.claim_setup()
        a = self.enroll(self.pki.csr("weak", cn="d:sensor:w1", spec="rsa:1024"))
        self.assertIn("weak", a["error"])
        a = self.enroll(self.pki.csr("p224", cn="d:sensor:w2", spec="ec:P-224"))
        self.assertIn("refused", a["error"])
        # A CSR whose signature does not verify: its signature altered.
        csr = self.pki.csr("bad", cn="d:sensor:w3")
        der = bytearray(sh("openssl", "req", "-in", self.pki.p("bad.csr"), "-outform", "DER"))
        der[-3] ^= 0x01
        pem = sh("openssl", "req", "-inform", "DER", "-outform", "PEM", data=bytes(der)).decode()
        a = self.enroll(pem)
        self.assertIn("signature does not verify", a["error"])
        self.assertNotEqual(csr, pem)
        a = self.enroll(self.pki.csr("rsa", cn="d:sensor:w4", spec="rsa:2048"))
        self.assertIn("certificate", a)

    def test_allowlist(self):
        self.claim_setup(mode="allowlist")
        a = self.enroll(self.pki.csr("a1", cn="d:sensor:a1"))
        self.assertIn("not pre-registered", a["error"])
        ok(self.b, "preRegisterDevices", tenant="default", ids=["d:sensor:a1", "d:sensor:a2"])
        a = self.enroll(self.pki.csr("a1", cn="d:sensor:a1"))
        self.assertIn("certificate", a, a)
        # Once each: the claim certificate cannot mint a second one.
        a = self.enroll(self.pki.csr("a1b", cn="d:sensor:a1"))
        self.assertIn("not pre-registered", a["error"])
        self.assertEqual(ok(self.b, "listEnrollments", tenant="default")["preRegistered"], ["d:sensor:a2"])
        r = control(self.b, [{"command": "preRegisterDevices", "tenant": "default", "ids": ["d:acme:sensor:x"]}])
        self.assertIn("not a device identity", r["responses"][0]["error"])

    def test_claim_ca_of_another_tenant_or_none_admits_nothing(self):
        # No issuing CA: a claim device is answered with the reason.
        self.pki.ca("claim-ca", "Claim CA")
        with open(self.pki.p("claim-ca.pem")) as f:
            ok(self.b, "addCA", tenant="default", certificate=f.read(), purpose="claim")
        cert, key = self.pki.sign("claim", "claim-ca", "batch-1")
        a = self.rr(json.dumps({"csr": self.pki.csr("d", cn="d:sensor:s1")}), cert, key)
        self.assertIn("has no issuing CA", a["error"])
        # A device of a CA of purpose devices may not enroll a new identity.
        self.issuing_ca()
        with open(pki("ca-a.pem")) as f:
            ok(self.b, "addCA", tenant="default", certificate=f.read())
        a = self.rr(json.dumps({"csr": self.pki.csr("d2", cn="d:sensor:zz")}), pki("dev-a1.pem"), pki("dev-a1.key"),
                    clientid="d:default:sensor:a1")
        self.assertIn("own identity", a["error"])
        a = self.rr(json.dumps({"csr": self.pki.csr("d3", cn="d:sensor:a1")}), pki("dev-a1.pem"), pki("dev-a1.key"),
                    clientid="d:default:sensor:a1")
        self.assertIn("from another CA", a["error"])


class IssuingCATest(EnrollTest):
    def test_imported_and_subordinate_issuing_cas(self):
        # An issuing CA signed by another tenant's: device chains hold both.
        self.issuing_ca()
        ok(self.b, "createTenant", tenant="sub", orgId="sub", hostnames=["sub.test"])
        r = control(self.b, [{"command": "createIssuingCA", "tenant": "sub", "subject": {"CN": "Sub CA"}, "parent": "nobody"}])
        self.assertIn("no issuing CA", r["responses"][0]["error"])
        ca = ok(self.b, "createIssuingCA", tenant="sub", subject={"CN": "Sub CA", "C": "DE"}, parent="default",
                key={"type": "rsa", "bits": 2048})["ca"]
        self.assertEqual(ca["issuer"], "CN=Default Devices CA,O=Example")
        self.assertEqual(ca["keyType"], "rsa")
        r = control(self.b, [{"command": "createIssuingCA", "tenant": "sub", "subject": {"CN": "Again"}}])
        self.assertIn("has an issuing CA already", r["responses"][0]["error"])
        # An imported one: its key must be the certificate's.
        ok(self.b, "createTenant", tenant="imp", orgId="imp", hostnames=["imp.test"])
        r = control(self.b, [{"command": "createIssuingCA", "tenant": "imp", "subject": {"CN": "X", "C": "Germany"}}])
        self.assertIn("two upper-case letters", r["responses"][0]["error"])
        self.pki.ca("own", "Own Issuing CA")
        self.pki.ca("wrong", "Wrong")
        with open(self.pki.p("own.pem")) as f:
            own = f.read()
        with open(self.pki.p("wrong.key")) as f:
            r = control(self.b, [{"command": "importIssuingCA", "tenant": "imp", "certificate": own, "privateKey": f.read()}])
        self.assertIn("not the CA certificate's", r["responses"][0]["error"])
        with open(self.pki.p("own.key")) as f:
            d = ok(self.b, "importIssuingCA", tenant="imp", certificate=own, privateKey=f.read())
        self.assertEqual(d["ca"]["crl"]["source"], "issued")
        # Restarted, the keys load again and sign.
        self.b.stop()
        self.b.start()
        self.pki.ca("claim-ca", "Claim CA")
        with open(self.pki.p("claim-ca.pem")) as f:
            ok(self.b, "addCA", tenant="default", certificate=f.read(), purpose="claim")
        ok(self.b, "modifyTenant", tenant="default", enrollment={"mode": "auto"})
        cert, key = self.pki.sign("claim", "claim-ca", "batch-1")
        a = self.rr(json.dumps({"csr": self.pki.csr("dev", cn="d:sensor:s1")}), cert, key)
        self.assertIn("certificate", a, a)


class HttpDirTest(EnrollTest):
    """The issuing CA's CRL where the websockets listener's http_dir
    serves it to other relying parties."""

    def setUp(self):
        self.ws_port = free_port()
        super().setUp()

    def broker(self, opts):
        store = self.work.store
        mqtt_port = free_port()
        opts = dict(opts, mqtt_ports=str(mqtt_port), websockets_ports=str(self.ws_port))
        return Broker(self.work, port=mqtt_port, plugin_opts=opts, listeners=[
            "listener %d localhost\ncertfile %s/listener/mqtt.crt\nkeyfile %s/listener/mqtt.key" % (mqtt_port, store, store),
            "listener %d 127.0.0.1\nprotocol websockets\nhttp_dir %s\ncertfile %s/listener/websockets.crt\n"
            "keyfile %s/listener/websockets.key" % (self.ws_port, self.crl_dir, store, store)])

    def test_the_crl_is_served_by_http_dir(self):
        import http.client
        self.claim_setup()
        chain, key = self.enrolled_device()
        with open(chain) as f:
            ok(self.b, "revokeCertificate", tenant="default", certificate=f.read())
        ctx = ssl.create_default_context(cafile=os.path.join(self.work.store, "listener", "websockets.crt"))
        ctx.check_hostname = False
        ctx.load_cert_chain(os.path.join(self.work.store, "admin", "admin.pem"), os.path.join(self.work.store, "admin", "admin.key"))
        conn = http.client.HTTPSConnection("127.0.0.1", self.ws_port, context=ctx, timeout=10)
        conn.request("GET", "/default.crl")
        body = conn.getresponse().read()
        with open(os.path.join(self.crl_dir, "default.crl"), "rb") as f:
            self.assertEqual(body, f.read())
        with open(self.pki.p("ca.pem"), "w") as f:
            f.write(self.ca["certificate"])
        out = subprocess.run(["openssl", "crl", "-inform", "DER", "-noout", "-verify", "-CAfile", self.pki.p("ca.pem")],
                             input=body, capture_output=True)
        self.assertEqual(out.returncode, 0, out.stderr)


class PassphraseTest(EnrollTest):
    def setUp(self):
        self.passfile = "/tmp/certmgr-enroll-pass-%d" % os.getpid()
        with open(self.passfile, "w") as f:
            f.write("a long enough passphrase\n")
        os.chmod(self.passfile, 0o644)
        self.plugin_opts = {"key_passphrase_file": self.passfile}
        super().setUp()
        # The listener files hold a placeholder: trust what is served.
        der, _ = served_certificate(self.b.port)
        self.cafile = self.work.admin_cafile = self.work.file("served.pem")
        with open(self.cafile, "w") as f:
            f.write(ssl.DER_cert_to_PEM_cert(der))

    def tearDown(self):
        super().tearDown()
        os.unlink(self.passfile)

    def test_the_issuing_key_is_encrypted_at_rest(self):
        self.claim_setup()
        with open(os.path.join(self.work.store, "tenants", "default", "tenant.json")) as f:
            record = json.load(f)
        self.assertIn("ENCRYPTED PRIVATE KEY", record["enrollment"]["issuingCA"]["key"])
        self.b.stop()
        self.b.start()
        self.assertIn("certificate", self.enroll(self.pki.csr("dev", cn="d:sensor:s1")))


class ApprovalTest(EnrollTest):
    def test_approval_answers_the_waiting_device_and_its_next_request(self):
        self.claim_setup(mode="approval")
        csr = self.pki.csr("dev", cn="d:sensor:p1")
        sock = self.raw("claimer-p", self.claim_cert, self.claim_key)
        self.assertEqual(mqtt_subscribe(sock, ANSWER), 0)
        mqtt_publish(sock, ENROLL, json.dumps({"csr": csr, "correlationData": "p"}))
        got = mqtt_messages(sock, 5, first_only=True)
        self.assertEqual(json.loads(got[0][1]), {"pending": True, "identity": "d:sensor:p1", "correlationData": "p"})
        lst = ok(self.b, "listEnrollments", tenant="default")["enrollments"]
        self.assertEqual([(e["identity"], e["state"], e["clientId"]) for e in lst], [("d:sensor:p1", "pending", "claimer-p")])
        # Another key asking for the same identity meanwhile: refused.
        a = self.enroll(self.pki.csr("other", cn="d:sensor:p1"), clientid="claimer-q")
        self.assertIn("another key", a["error"])
        d = ok(self.b, "approveEnrollment", tenant="default", identity="d:sensor:p1")
        self.assertEqual(d["enrollment"]["state"], "approved")
        got = mqtt_messages(sock, 5, first_only=True)
        pushed = json.loads(got[0][1])
        self.assertIn("certificate", pushed)
        self.assertEqual(pushed["correlationData"], "p")
        # The next request with the same key gets it too, and ends the request.
        a = self.enroll(csr, clientid="claimer-p2")
        self.assertEqual(a["certificate"], pushed["certificate"])
        self.assertEqual(ok(self.b, "listEnrollments", tenant="default")["enrollments"], [])

    def test_rejection(self):
        self.claim_setup(mode="approval")
        csr = self.pki.csr("dev", cn="d:sensor:r1")
        self.assertTrue(self.enroll(csr)["pending"])
        ok(self.b, "rejectEnrollment", tenant="default", identity="d:sensor:r1", reason="unknown serial")
        a = self.enroll(csr)
        self.assertIn("rejected by an operator: unknown serial", a["error"])
        r = control(self.b, [{"command": "approveEnrollment", "tenant": "default", "identity": "d:sensor:r1"}])
        self.assertIn("no enrollment request", r["responses"][0]["error"])

    def test_pending_approval_survives_a_restart(self):
        self.claim_setup(mode="approval")
        csr = self.pki.csr("dev", cn="d:sensor:k1")
        self.assertTrue(self.enroll(csr)["pending"])
        self.b.stop()
        self.b.start()
        lst = ok(self.b, "listEnrollments", tenant="default")["enrollments"]
        self.assertEqual([e["identity"] for e in lst], ["d:sensor:k1"])
        ok(self.b, "approveEnrollment", tenant="default", identity="d:sensor:k1")
        self.b.stop()
        self.b.start()
        a = self.enroll(csr)
        self.assertIn("certificate", a, a)
        chain = self.write("dev.pem", a["certificate"])
        self.assertEqual(self.device_pub("d:default:sensor:k1", chain, self.pki.p("dev.key"), "default/sensor/k1/x").returncode, 0)


class RenewalTest(EnrollTest):
    def crl_verifies(self):
        path = os.path.join(self.crl_dir, "default.crl")
        with open(self.pki.p("ca.pem"), "w") as f:
            f.write(self.ca["certificate"])
        out = subprocess.run(["openssl", "crl", "-inform", "DER", "-in", path, "-noout", "-verify", "-CAfile", self.pki.p("ca.pem"),
                              "-text"], capture_output=True, text=True)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn("verify OK", out.stdout + out.stderr)
        return out.stdout

    def test_renewal_window_grace_and_crl(self):
        self.claim_setup(validityDays=2, renewWithinDays=1, graceDays=0.0001)
        chain, key = self.enrolled_device()
        csr2 = self.pki.csr("dev2", cn="d:sensor:s1")
        # Outside the window: two days of validity, renewal opens one day before.
        a = self.rr(json.dumps({"csr": csr2}), chain, key, clientid="d:default:sensor:s1")
        self.assertIn("too early to renew", a["error"])
        ok(self.b, "modifyTenant", tenant="default", enrollment={"renewWithinDays": 3})
        # Another identity than its own: refused.
        a = self.rr(json.dumps({"csr": self.pki.csr("dev3", cn="d:sensor:s9")}), chain, key, clientid="d:default:sensor:s1")
        self.assertIn("own identity", a["error"])
        a = self.rr(json.dumps({"csr": csr2}), chain, key, clientid="d:default:sensor:s1")
        self.assertIn("certificate", a, a)
        chain2 = self.write("dev2.pem", a["certificate"])
        # Once per certificate: no minting more while the old one lasts.
        a = self.rr(json.dumps({"csr": self.pki.csr("dev4", cn="d:sensor:s1")}), chain, key, clientid="d:default:sensor:s1")
        self.assertIn("renewed (or revoked) already", a["error"])
        old_serial = sh("openssl", "x509", "-in", chain, "-noout", "-serial").decode().strip().split("=")[1]
        # After the grace period (8.6 s), the old certificate is refused
        # through certmgr's own CRL; the new one is accepted.
        deadline = time.time() + 30
        while time.time() < deadline and old_serial not in self.crl_verifies().replace(":", "").upper():
            time.sleep(1)
        text = self.crl_verifies()
        self.assertIn(old_serial, text.replace(":", "").upper())
        self.assertIn("Superseded", text)
        r = mqtt_connect(self.b.port, "d:default:sensor:s1", cert=chain, key=key)
        self.assertNotEqual(r["result"], "accepted")
        self.assertIn("revoked", self.b.log())
        self.assertEqual(self.device_pub("d:default:sensor:s1", chain2, self.pki.p("dev2.key")).returncode, 0)

    def test_two_renewals_at_once_get_one_certificate(self):
        self.claim_setup(validityDays=2, renewWithinDays=3)
        chain, key = self.enrolled_device()
        sock = self.raw("d:default:sensor:s1", chain, key)
        self.assertEqual(mqtt_subscribe(sock, ANSWER), 0)

        class Batch:
            data = b""

            def sendall(self, b):
                Batch.data += b
        for i in range(2):
            mqtt_publish(Batch(), ENROLL, json.dumps({"csr": self.pki.csr("r%d" % i, cn="d:sensor:s1")}))
        sock.sendall(Batch.data)
        answers = [json.loads(m[1]) for m in mqtt_messages(sock, 10, count=2)]
        self.assertEqual(sorted("certificate" in a for a in answers), [False, True], answers)
        self.assertIn("renewed (or revoked) already", [a for a in answers if "error" in a][0]["error"])

    def test_revoke_certificate_enforced_at_once(self):
        self.claim_setup()
        chain, key = self.enrolled_device()
        sock = self.raw("d:default:sensor:s1", chain, key)
        with open(chain) as f:
            d = ok(self.b, "revokeCertificate", tenant="default", certificate=f.read(), reason="keyCompromise")
        self.assertEqual(d["revoked"]["reason"], "keyCompromise")
        self.assertIn("Key Compromise", self.crl_verifies())
        # The connected device is disconnected, a new connection refused.
        self.assertEqual(mqtt_messages(sock, 3), [])
        self.b.wait_log("disconnecting 'd:default:sensor:s1'")
        r = mqtt_connect(self.b.port, "d:default:sensor:s1", cert=chain, key=key)
        self.assertNotEqual(r["result"], "accepted")
        r = control(self.b, [{"command": "modifyCA", "tenant": "default", "id": self.ca["id"], "crlUrl": "http://127.0.0.1:1/x.crl"}])
        self.assertIn("certmgr issues its CRL", r["responses"][0]["error"])
        # The issuing CA stays in the trust list.
        r = control(self.b, [{"command": "removeCA", "tenant": "default", "id": self.ca["id"]},
                             {"command": "clearCAs", "tenant": "default"}])
        self.assertIn("issuing CA", r["responses"][0]["error"])
        self.assertIn("issuing CA", r["responses"][1]["error"])
        # Only the issuing CA's certificates.
        with open(pki("dev-a1.pem")) as f:
            r = control(self.b, [{"command": "revokeCertificate", "tenant": "default", "certificate": f.read()}])
        self.assertIn("not issued by", r["responses"][0]["error"])


class ProofOfPossessionTest(EnrollTest):
    def vcert(self, name, code, ca):
        cert, _ = self.pki.sign(name, ca, code, ext="basicConstraints=critical,CA:FALSE\n")
        with open(cert) as f:
            return f.read()

    def test_ca_refused_without_proof_accepted_with_it(self):
        ok(self.b, "modifyTenant", tenant="default", requireProofOfPossession=True)
        self.pki.ca("mine", "My Devices CA")
        self.pki.ca("other", "Other CA")
        with open(self.pki.p("mine.pem")) as f:
            ca = f.read()
        r = control(self.b, [{"command": "addCA", "tenant": "default", "certificate": ca}])
        self.assertIn("requires proof of possession", r["responses"][0]["error"])
        code = ok(self.b, "getRegistrationCode", tenant="default")["registrationCode"]
        self.assertRegex(code, r"^[0-9a-f]{32}$")
        # Signed by another key: refused, and the code is still unused.
        r = control(self.b, [{"command": "addCA", "tenant": "default", "certificate": ca,
                              "verificationCertificate": self.vcert("v-other", code, "other")}])
        self.assertIn("not signed by this CA's key", r["responses"][0]["error"])
        # The wrong code: refused.
        r = control(self.b, [{"command": "addCA", "tenant": "default", "certificate": ca,
                              "verificationCertificate": self.vcert("v-wrong", "0" * 32, "mine")}])
        self.assertIn("no registration code", r["responses"][0]["error"])
        good = self.vcert("v-good", code, "mine")
        d = ok(self.b, "addCA", tenant="default", certificate=ca, verificationCertificate=good)
        self.assertIn("id", d["ca"])
        # The code is single use.
        self.pki.ca("mine2", "Second CA")
        with open(self.pki.p("mine2.pem")) as f:
            ca2 = f.read()
        r = control(self.b, [{"command": "addCA", "tenant": "default", "certificate": ca2,
                              "verificationCertificate": self.vcert("v-replay", code, "mine2")}])
        self.assertIn("unknown, or used already", r["responses"][0]["error"])


class EnrollToolTest(EnrollTest):
    def tool(self, *extra, wait=5):
        argv = [os.environ["CERTMGR_ENROLL"], "-h", "localhost", "-p", str(self.b.port), "--cafile", self.cafile, "--insecure",
                "--id", "d:sensor:t1", "--org", "default", "--key", self.pki.p("t1.key"), "--cert", self.pki.p("t1.pem"),
                "--claim-cert", self.claim_cert, "--claim-key", self.claim_key, "--wait", str(wait)] + list(extra)
        return subprocess.run(argv, capture_output=True, text=True, timeout=wait + 20)

    def test_enroll_tool_gets_renews_and_leaves_alone(self):
        self.claim_setup(validityDays=30)
        r = self.tool()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("written to", r.stdout)
        self.assertEqual(os.stat(self.pki.p("t1.key")).st_mode & 0o777, 0o600)
        with open(self.pki.p("t1.pem")) as f:
            first = f.read()
        self.assertEqual(self.device_pub("d:default:sensor:t1", self.pki.p("t1.pem"), self.pki.p("t1.key"),
                                         "default/sensor/t1/x").returncode, 0)
        # Run again outside the window: nothing to do.
        r = self.tool("--renew-within-days", "5")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("renewal opens at", r.stdout)
        with open(self.pki.p("t1.pem")) as f:
            self.assertEqual(f.read(), first)
        # Inside it (on both sides): renewed over the device's own connection, a new key.
        ok(self.b, "modifyTenant", tenant="default", enrollment={"renewWithinDays": 40})
        with open(self.pki.p("t1.key")) as f:
            old_key = f.read()
        r = self.tool("--renew-within-days", "40")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        with open(self.pki.p("t1.pem")) as f:
            self.assertNotEqual(f.read(), first)
        with open(self.pki.p("t1.key")) as f:
            self.assertNotEqual(f.read(), old_key)
        self.assertIn("renewed for 'd:default:sensor:t1'", self.b.log())
        self.assertEqual(self.device_pub("d:default:sensor:t1", self.pki.p("t1.pem"), self.pki.p("t1.key"),
                                         "default/sensor/t1/x").returncode, 0)

    def test_enroll_tool_falls_back_to_the_claim_certificate(self):
        self.claim_setup(renewWithinDays=400)
        self.assertEqual(self.tool().returncode, 0)
        with open(self.pki.p("t1.pem")) as f:
            first = f.read()
            ok(self.b, "revokeCertificate", tenant="default", certificate=first)
        r = self.tool("--renew-within-days", "400")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("asking with the claim certificate", r.stderr)
        with open(self.pki.p("t1.pem")) as f:
            self.assertNotEqual(f.read(), first)
        self.assertEqual(self.device_pub("d:default:sensor:t1", self.pki.p("t1.pem"), self.pki.p("t1.key"),
                                         "default/sensor/t1/x").returncode, 0)

    def test_enroll_tool_waits_for_approval(self):
        self.claim_setup(mode="approval")
        r = self.tool(wait=2)
        self.assertEqual(r.returncode, 3, r.stdout + r.stderr)
        self.assertIn("pending", r.stdout)
        self.assertFalse(os.path.exists(self.pki.p("t1.pem")))
        ok(self.b, "approveEnrollment", tenant="default", identity="d:sensor:t1")
        r = self.tool()
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(self.device_pub("d:default:sensor:t1", self.pki.p("t1.pem"), self.pki.p("t1.key"),
                                         "default/sensor/t1/x").returncode, 0)
        # Refused: the reason, exit 1.
        r = subprocess.run([os.environ["CERTMGR_ENROLL"], "-h", "localhost", "-p", str(self.b.port), "--cafile", self.cafile,
                            "--insecure", "--id", "d:meter:m1", "--org", "default", "--key", self.pki.p("m1.key"),
                            "--cert", self.pki.p("m1.pem"), "--claim-cert", self.claim_cert, "--claim-key", self.claim_key,
                            "--key-type", "rsa", "--key-bits", "2048"], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 3, r.stdout + r.stderr)
        ok(self.b, "rejectEnrollment", tenant="default", identity="d:meter:m1", reason="no such meter")
        r = subprocess.run([os.environ["CERTMGR_ENROLL"], "-h", "localhost", "-p", str(self.b.port), "--cafile", self.cafile,
                            "--insecure", "--id", "d:meter:m1", "--org", "default", "--key", self.pki.p("m1.key"),
                            "--cert", self.pki.p("m1.pem"), "--claim-cert", self.claim_cert, "--claim-key", self.claim_key],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("no such meter", r.stderr)


if __name__ == "__main__":
    unittest.main()
