"""Trust decisions that resist the attacks of issues 17 and 18, with a PKI
made here by the openssl command line: a pin that signs another device's
certificate, revocation below an intermediate when only the root is
registered, an older CRL replayed, and a deactivated CA inside a
registered hierarchy. Real broker, real TLS clients."""

import os
import subprocess
import time
import unittest

from crlserver import CrlServer
from harness import Broker, Workdir, control, mqtt_connect, ok, read
from harness import closed_within

CNF = """[req]
distinguished_name = dn
[dn]
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[dev]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
[forged]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
[signer]
keyUsage = critical, digitalSignature, keyCertSign
extendedKeyUsage = clientAuth
"""


class Pki:
    """Certificates and CRLs made with the openssl command line."""

    def __init__(self, d):
        self.d = d
        with open(self.p("openssl.cnf"), "w") as f:
            f.write(CNF)

    def p(self, name):
        return os.path.join(self.d, name)

    def run(self, *args):
        subprocess.run(["openssl"] + list(args), check=True, capture_output=True)

    def key(self, name):
        self.run("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", self.p(name + ".key"))

    def root(self, name, cn):
        self.key(name)
        self.run("req", "-new", "-x509", "-key", self.p(name + ".key"), "-subj", "/CN=" + cn, "-days", "30",
                 "-config", self.p("openssl.cnf"), "-extensions", "ca", "-out", self.p(name + ".pem"))

    def issue(self, name, cn, issuer, ext=None, serial=None):
        """A certificate for a new key, signed by issuer. ext None: no
        extensions at all (a version 1 certificate)."""
        self.key(name)
        self.run("req", "-new", "-key", self.p(name + ".key"), "-subj", "/CN=" + cn, "-config", self.p("openssl.cnf"),
                 "-out", self.p(name + ".csr"))
        args = ["x509", "-req", "-in", self.p(name + ".csr"), "-CA", self.p(issuer + ".pem"), "-CAkey", self.p(issuer + ".key"),
                "-days", "10", "-out", self.p(name + ".pem")]
        args += ["-set_serial", str(serial)] if serial else ["-CAcreateserial"]
        if ext:
            args += ["-extfile", self.p("openssl.cnf"), "-extensions", ext]
        self.run(*args)

    def self_signed(self, name, cn, ext=None):
        self.key(name)
        self.run("req", "-new", "-key", self.p(name + ".key"), "-subj", "/CN=" + cn, "-config", self.p("openssl.cnf"),
                 "-out", self.p(name + ".csr"))
        args = ["x509", "-req", "-in", self.p(name + ".csr"), "-signkey", self.p(name + ".key"), "-days", "10",
                "-out", self.p(name + ".pem")]
        if ext:
            args += ["-extfile", self.p("openssl.cnf"), "-extensions", ext]
        self.run(*args)

    def crl(self, name, issuer, revoked=(), number=1, this_update=None):
        """A CRL of issuer revoking the certificates named in revoked."""
        db = self.p(name + ".db")
        with open(db, "w") as f:
            for r in revoked:
                serial = subprocess.run(["openssl", "x509", "-in", self.p(r + ".pem"), "-noout", "-serial"],
                                        check=True, capture_output=True, text=True).stdout.strip().split("=")[1]
                f.write("R\t300101000000Z\t260101000000Z\t%s\tunknown\t/CN=%s\n" % (serial, r))
        with open(self.p(name + ".crlnumber"), "w") as f:
            f.write("%02X\n" % number)
        conf = self.p(name + ".ca.cnf")
        with open(conf, "w") as f:
            f.write("[ca]\ndefault_ca = c\n[c]\ndatabase = %s\ncrlnumber = %s\ndefault_md = sha256\ndefault_crl_days = 5\n"
                    % (db, self.p(name + ".crlnumber")))
        args = ["ca", "-gencrl", "-config", conf, "-cert", self.p(issuer + ".pem"), "-keyfile", self.p(issuer + ".key"),
                "-out", self.p(name + ".crl")]
        if this_update:
            args += ["-crl_lastupdate", this_update]
        self.run(*args)
        return read(self.p(name + ".crl"))

    def chain(self, name, *parts):
        with open(self.p(name), "w") as f:
            for part in parts:
                f.write(read(self.p(part + ".pem")))
        return self.p(name)


class ConformanceTest(unittest.TestCase):
    def setUp(self):
        self.work = Workdir()
        os.makedirs(self.work.file("pki"))
        self.pki = Pki(self.work.file("pki"))
        self.b = Broker(self.work)
        self.b.start()
        self.cafile = os.path.join(self.work.store, "listener", "mqtt.crt")
        self.socks = []
        self.http = None

    def tearDown(self):
        for s in self.socks:
            s.close()
        if self.http:
            self.http.stop()
        rc = self.b.stop()
        log = self.b.log()
        self.work.cleanup()
        self.assertEqual(rc, 0, "broker exit code\n" + log)
        self.assertNotIn("AddressSanitizer", log)

    def connect(self, clientid, cert, key, keep=False):
        r = mqtt_connect(self.b.port, clientid, sni="acme.test", cafile=self.cafile, cert=cert, key=key, keep=keep)
        if keep and r["result"] == "accepted":
            self.socks.append(r["sock"])
        return r

    def tenant(self, **extra):
        ok(self.b, "createTenant", tenant="acme", hostnames=["acme.test"], **extra)

    # ------------------------------------------------------------------
    # A pin admits exactly itself (issue 18, 1)

    def assert_pin_signs_nothing(self, ext):
        p = self.pki
        p.self_signed("pin", "d:sensor:pin", ext)
        p.issue("forged", "d:sensor:victim", "pin", "forged")
        self.tenant()
        ok(self.b, "trustCertificate", tenant="acme", certificate=read(p.p("pin.pem")))
        self.assertEqual(len(ok(self.b, "listCAs", tenant="acme")["pinned"]), 1)
        # The pin itself is admitted, as the leaf.
        self.assertEqual(self.connect("d:acme:sensor:pin", p.p("pin.pem"), p.p("pin.key"))["result"], "accepted")
        # A leaf it signed is not, alone or with the pin sent along.
        self.assertNotEqual(self.connect("d:acme:sensor:victim", p.p("forged.pem"), p.p("forged.key"))["result"], "accepted")
        both = p.chain("forged-chain.pem", "forged", "pin")
        self.assertNotEqual(self.connect("d:acme:sensor:victim", both, p.p("forged.key"))["result"], "accepted")
        self.b.wait_log("refused client certificate")

    def test_a_pinned_v1_certificate_signs_nothing(self):
        self.assert_pin_signs_nothing(None)

    def test_a_pinned_certificate_with_keycertsign_signs_nothing(self):
        self.assert_pin_signs_nothing("signer")

    # ------------------------------------------------------------------
    # Revocation below an intermediate, only the root registered (17, 18.5)

    def hierarchy(self):
        p = self.pki
        p.root("root", "Conformance Root")
        p.issue("inter", "Conformance Intermediate", "root", "ca")
        p.issue("dev1", "d:sensor:one", "inter", "dev")
        p.issue("dev2", "d:sensor:two", "inter", "dev")
        return p

    def test_an_intermediates_crl_revokes_a_connected_device_with_only_the_root_registered(self):
        p = self.hierarchy()
        self.tenant(revocation="required")
        ok(self.b, "addCA", tenant="acme", certificate=read(p.p("root.pem")))
        ok(self.b, "uploadCRL", tenant="acme", crl=p.crl("root-crl", "root"))
        chain1, chain2 = p.chain("c1.pem", "dev1", "inter"), p.chain("c2.pem", "dev2", "inter")
        # No CRL of the intermediate yet: refused under required.
        self.assertNotEqual(self.connect("d:acme:sensor:one", chain1, p.p("dev1.key"))["result"], "accepted")
        self.b.wait_log("no CRL is known for CA 'Conformance Intermediate' (revocation required)")
        # Its CRL, sent with the intermediate: both devices in.
        r = ok(self.b, "uploadCRL", tenant="acme", crl=p.crl("inter-crl1", "inter"), issuerCertificates=read(p.p("inter.pem")))
        self.assertEqual(r["revoked"], 0)
        issuers = ok(self.b, "listCAs", tenant="acme")["issuers"]
        self.assertEqual([i["commonName"] for i in issuers], ["Conformance Intermediate"])
        one = self.connect("d:acme:sensor:one", chain1, p.p("dev1.key"), keep=True)
        self.assertEqual(one["result"], "accepted")
        self.assertEqual(self.connect("d:acme:sensor:two", chain2, p.p("dev2.key"))["result"], "accepted")
        # The intermediate revokes device one: disconnected now, refused
        # after; device two still in.
        ok(self.b, "uploadCRL", tenant="acme", crl=p.crl("inter-crl2", "inter", revoked=["dev1"], number=2))
        self.assertTrue(closed_within(one["sock"], 5))
        self.b.wait_log("certificate 'd:sensor:one' is revoked by the CRL of CA 'Conformance Intermediate'")
        self.assertNotEqual(self.connect("d:acme:sensor:one", chain1, p.p("dev1.key"))["result"], "accepted")
        self.assertEqual(self.connect("d:acme:sensor:two", chain2, p.p("dev2.key"))["result"], "accepted")

    def test_an_issuer_that_does_not_chain_to_the_trust_list_is_refused(self):
        p = self.hierarchy()
        p.root("stranger", "Stranger Root")
        p.issue("sinter", "Conformance Intermediate", "stranger", "ca")
        self.tenant()
        ok(self.b, "addCA", tenant="acme", certificate=read(p.p("root.pem")))
        r = control(self.b, [{"command": "uploadCRL", "tenant": "acme", "crl": p.crl("s-crl", "sinter"),
                              "issuerCertificates": [read(p.p("sinter.pem"))]}])["responses"][0]
        self.assertIn("does not chain to the trust list of tenant 'acme'", r.get("error", ""))
        self.assertEqual(ok(self.b, "listCAs", tenant="acme")["issuers"], [])
        # Malformed issuerCertificates: refused by name, nothing kept.
        crl = p.crl("i-crl", "inter")
        for bad, words in ((5, "issuerCertificates"), ([5], "issuerCertificates"), ("not a certificate", "certificate")):
            r = control(self.b, [{"command": "uploadCRL", "tenant": "acme", "crl": crl, "issuerCertificates": bad}])["responses"][0]
            self.assertIn(words, r.get("error", ""), bad)
        self.assertEqual(ok(self.b, "listCAs", tenant="acme")["issuers"], [])
        # A signer under certmgr's admin CA is no issuer of the tenant's.

    def test_an_intermediate_and_its_crl_are_learned_from_the_devices(self):
        """Only the root registered, revocation required, and the devices'
        certificates name their issuer's CRL: the first attempts are
        refused for want of it, and teach certmgr the intermediate and
        where its CRL is; then the device is admitted and the one that CRL
        revokes is not."""
        p = self.pki
        files = os.path.join(p.d, "www")
        os.makedirs(files)
        self.http = CrlServer(files)
        with open(p.p("openssl.cnf"), "a") as f:
            f.write("[devcdp]\nbasicConstraints = CA:FALSE\nkeyUsage = critical, digitalSignature\n"
                    "extendedKeyUsage = clientAuth\ncrlDistributionPoints = URI:%s\n" % self.http.url("/files/inter.crl"))
        p.root("root", "Conformance Root")
        p.issue("inter", "Conformance Intermediate", "root", "ca")
        p.issue("dev1", "d:sensor:one", "inter", "devcdp")
        p.issue("dev2", "d:sensor:two", "inter", "devcdp")
        with open(os.path.join(files, "inter.crl"), "w") as f:
            f.write(p.crl("inter-crl", "inter", revoked=["dev2"]))
        self.tenant(revocation="required")
        ok(self.b, "addCA", tenant="acme", certificate=read(p.p("root.pem")))
        ok(self.b, "uploadCRL", tenant="acme", crl=p.crl("root-crl", "root"))
        chain1, chain2 = p.chain("c1.pem", "dev1", "inter"), p.chain("c2.pem", "dev2", "inter")
        results = []
        deadline = time.time() + 20
        while time.time() < deadline:
            results.append(self.connect("d:acme:sensor:one", chain1, p.p("dev1.key"))["result"])
            if results[-1] == "accepted":
                break
            time.sleep(0.5)
        self.assertNotEqual(results[0], "accepted")
        self.assertEqual(results[-1], "accepted", results)
        issuers = ok(self.b, "listCAs", tenant="acme")["issuers"]
        self.assertEqual([(i["commonName"], i["crl"]["source"]) for i in issuers], [("Conformance Intermediate", "learned")])
        self.assertNotEqual(self.connect("d:acme:sensor:two", chain2, p.p("dev2.key"))["result"], "accepted")
        self.b.wait_log("certificate 'd:sensor:two' is revoked by the CRL of CA 'Conformance Intermediate'")

    # ------------------------------------------------------------------
    # No rollback to an older CRL (18, 6)

    def test_an_older_crl_does_not_unrevoke_a_device(self):
        p = self.hierarchy()
        self.tenant()
        ok(self.b, "addCA", tenant="acme", certificate=read(p.p("inter.pem")))
        older = p.crl("old", "inter", number=1, this_update="20260101000000Z")
        newer = p.crl("new", "inter", revoked=["dev1"], number=2)
        ok(self.b, "uploadCRL", tenant="acme", crl=newer)
        self.assertNotEqual(self.connect("d:acme:sensor:one", p.p("dev1.pem"), p.p("dev1.key"))["result"], "accepted")
        # By upload:
        r = control(self.b, [{"command": "uploadCRL", "tenant": "acme", "crl": older}])["responses"][0]
        self.assertIn("older than the one in force", r.get("error", ""))
        self.assertNotEqual(self.connect("d:acme:sensor:one", p.p("dev1.pem"), p.p("dev1.key"))["result"], "accepted")
        # By a refresh from a URL an attacker on the path serves:
        files = os.path.join(self.pki.d, "www")
        os.makedirs(files)
        with open(os.path.join(files, "inter.crl"), "w") as f:
            f.write(newer)
        self.http = CrlServer(files)
        ca = ok(self.b, "listCAs", tenant="acme")["cas"][0]["id"]
        ok(self.b, "modifyCA", tenant="acme", id=ca, crlUrl=self.http.url("/files/inter.crl"))
        with open(os.path.join(files, "inter.crl"), "w") as f:
            f.write(older)
        r = control(self.b, [{"command": "refreshCRL", "tenant": "acme", "id": ca}])["responses"][0]
        self.assertIn("older than the one in force", r.get("error", ""))
        got = ok(self.b, "getCA", tenant="acme", id=ca)["ca"]["crl"]
        self.assertIn("older than the one in force", got.get("lastError", ""))
        self.assertNotEqual(self.connect("d:acme:sensor:one", p.p("dev1.pem"), p.p("dev1.key"))["result"], "accepted")
        self.assertEqual(self.connect("d:acme:sensor:two", p.p("dev2.pem"), p.p("dev2.key"))["result"], "accepted")

    # ------------------------------------------------------------------
    # A registered hierarchy (17, 1)

    def test_a_registered_intermediate_is_validated_through_its_registered_root(self):
        p = self.hierarchy()
        self.tenant()
        root = ok(self.b, "addCA", tenant="acme", certificate=read(p.p("root.pem")))["ca"]["id"]
        inter = ok(self.b, "addCA", tenant="acme", certificate=read(p.p("inter.pem")))["ca"]["id"]
        # The device sends its leaf alone: the registered intermediate
        # completes the chain.
        dev = self.connect("d:acme:sensor:one", p.p("dev1.pem"), p.p("dev1.key"), keep=True)
        self.assertEqual(dev["result"], "accepted")
        # The root revokes the intermediate: the device goes, although the
        # intermediate itself is registered.
        ok(self.b, "uploadCRL", tenant="acme", crl=p.crl("root-crl", "root", revoked=["inter"]))
        self.assertTrue(closed_within(dev["sock"], 5))
        self.assertNotEqual(self.connect("d:acme:sensor:one", p.p("dev1.pem"), p.p("dev1.key"))["result"], "accepted")
        ok(self.b, "uploadCRL", tenant="acme", crl=p.crl("root-crl2", "root", number=2))
        self.assertEqual(self.connect("d:acme:sensor:one", p.p("dev1.pem"), p.p("dev1.key"))["result"], "accepted")
        # Deactivating the root does not make the intermediate an anchor.
        ok(self.b, "setCAState", tenant="acme", id=root, active=False)
        self.assertNotEqual(self.connect("d:acme:sensor:one", p.p("dev1.pem"), p.p("dev1.key"))["result"], "accepted")
        ok(self.b, "setCAState", tenant="acme", id=root, active=True)
        # A deactivated intermediate refuses its devices even when they
        # send it themselves.
        ok(self.b, "setCAState", tenant="acme", id=inter, active=False)
        chain = p.chain("c1.pem", "dev1", "inter")
        self.assertNotEqual(self.connect("d:acme:sensor:one", chain, p.p("dev1.key"))["result"], "accepted")
        self.b.wait_log("CA 'Conformance Intermediate' of its path is deactivated")


if __name__ == "__main__":
    unittest.main()
