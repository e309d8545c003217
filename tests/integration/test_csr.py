"""The CSR flow: a CSR made by certmgr, signed outside by a CA made with
openssl, installed and served; the slot's key reused; a large key made
while devices keep connecting; bad answers refused."""

import hashlib
import os
import ssl
import subprocess
import threading
import time
import unittest

from harness import Broker, Workdir, control, ctl, ok, pki, read, mqtt_connect, served_certificate, tree_digest


def run(*args, cwd=None):
    subprocess.run(list(args), check=True, capture_output=True, cwd=cwd)


class CsrTest(unittest.TestCase):
    def setUp(self):
        self.work = Workdir()
        self.d = self.work.file("ca")
        os.mkdir(self.d)
        self.cnf = os.path.join(self.d, "ca.cnf")
        with open(self.cnf, "w") as f:
            f.write("[ req ]\ndistinguished_name = dn\n[ dn ]\n[ ca ]\nbasicConstraints=critical,CA:TRUE\n"
                    "keyUsage=critical,keyCertSign\nsubjectKeyIdentifier=hash\n")
        run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", self.f("ca.key"), "-out", self.f("ca.pem"), "-subj", "/CN=Operator CA", "-days", "30",
            "-config", self.cnf, "-extensions", "ca")
        self.b = Broker(self.work)
        self.b.start()
        self.work.admin_cafile = self.f("trust.pem")
        with open(self.work.admin_cafile, "w") as f:
            f.write(read(os.path.join(self.work.store, "listener", "mqtt.crt")) + read(self.f("ca.pem")))
        os.chmod(self.work.admin_cafile, 0o644)

    def tearDown(self):
        rc = self.b.stop()
        log = self.b.log()
        self.work.cleanup()
        self.assertEqual(rc, 0, "broker exit code\n" + log)
        self.assertNotIn("AddressSanitizer", log)
        self.assertNotIn("PRIVATE KEY", log)

    def f(self, name):
        return os.path.join(self.d, name)

    def sign(self, csr_pem, name):
        """What the operator's CA answers: a certificate for the CSR, with
        the CSR's SubjectAltNames, and the CA in the chain."""
        with open(self.f(name + ".csr"), "w") as f:
            f.write(csr_pem)
        run("openssl", "x509", "-req", "-in", self.f(name + ".csr"), "-CA", self.f("ca.pem"), "-CAkey", self.f("ca.key"),
            "-CAcreateserial", "-days", "20", "-copy_extensions", "copy", "-out", self.f(name + ".pem"))
        return read(self.f(name + ".pem")) + read(self.f("ca.pem"))

    def test_full_csr_flow_is_served(self):
        csr = ok(self.b, "createCSR", slot="mqtt", subject={"CN": "broker.acme.test", "O": "ACME", "C": "DE"},
                 subjectAltNames=["DNS:broker.acme.test", "DNS:localhost", "IP:127.0.0.1"])["csr"]
        self.assertEqual(csr["subject"], "CN=broker.acme.test,O=ACME,C=DE")
        self.assertEqual((csr["keyType"], csr["reusedKey"]), ("ec", False))
        listed = ok(self.b, "listCSRs", slot="mqtt")["csrs"]
        self.assertEqual([c["id"] for c in listed], [csr["id"]])
        pem = ok(self.b, "getCSR", slot="mqtt", id=csr["id"])["csr"]["csr"]
        out = subprocess.run(["openssl", "req", "-noout", "-text", "-verify"], input=pem, capture_output=True, text=True)
        self.assertIn("DNS:broker.acme.test", out.stdout)
        self.assertIn("IP Address:127.0.0.1", out.stdout)
        self.assertIn("verify OK", out.stdout + out.stderr)
        answer = self.sign(pem, "broker")
        done = ok(self.b, "installCertificate", slot="mqtt", csr=csr["id"], certificate=answer, makeDefault=True)
        der = ssl.PEM_cert_to_DER_cert(read(self.f("broker.pem")))
        self.assertEqual(done["id"], hashlib.sha256(der).hexdigest())
        self.assertEqual(served_certificate(self.b.port)[1], done["id"])
        self.assertEqual(ok(self.b, "listCSRs", slot="mqtt")["csrs"], [])
        self.assertFalse(os.path.exists(os.path.join(self.work.store, "slots", "mqtt", "csrs", csr["id"] + ".key")))
        # The restart serves it too.
        self.assertEqual(self.b.stop(), 0)
        self.b.start()
        self.assertEqual(served_certificate(self.b.port)[1], done["id"])

    def test_reuse_key_signs_with_the_slots_current_key(self):
        before = ok(self.b, "listServerCertificates", slot="bridge")["certificates"][0]["id"]
        key_pem = ok(self.b, "getServerCertificate", slot="bridge", id=before, includePrivateKey=True)["certificate"]["privateKey"]
        csr = ok(self.b, "createCSR", slot="bridge", subject={"CN": "node1"}, reuseKey=True)["csr"]
        self.assertTrue(csr["reusedKey"])
        pem = ok(self.b, "getCSR", slot="bridge", id=csr["id"])["csr"]["csr"]
        with open(self.f("k.pem"), "w") as f:
            f.write(key_pem)
        pub_csr = subprocess.run(["openssl", "req", "-noout", "-pubkey"], input=pem, capture_output=True, text=True).stdout
        pub_key = subprocess.run(["openssl", "pkey", "-in", self.f("k.pem"), "-pubout"], capture_output=True, text=True).stdout
        self.assertEqual(pub_csr, pub_key)
        done = ok(self.b, "installCertificate", slot="bridge", csr=csr["id"], certificate=self.sign(pem, "node1"))
        self.assertFalse(done["default"])

    def test_a_4096_bit_key_is_made_while_devices_keep_connecting(self):
        ok(self.b, "addCA", tenant="default", certificate=read(pki("ca-a.pem")))
        cafile = os.path.join(self.work.store, "listener", "mqtt.crt")
        results, stop = [], threading.Event()

        def loop():
            while not stop.is_set():
                t0 = time.time()
                r = mqtt_connect(self.b.port, "d:default:sensor:a1", cafile=cafile, cert=pki("dev-a1.pem"), key=pki("dev-a1.key"))
                results.append((r["result"], time.time() - t0))

        t = threading.Thread(target=loop)
        t.start()
        try:
            started = time.time()
            csr = ok(self.b, "createCSR", slot="mqtt", subject={"CN": "big"}, key={"type": "rsa", "bits": 4096})["csr"]
            took = time.time() - started
        finally:
            stop.set()
            t.join()
        self.assertEqual((csr["keyType"], csr["keyBits"]), ("rsa", 4096))
        self.assertTrue(results and all(r == "accepted" for r, _ in results))
        slowest = max(d for _, d in results)
        print("\nRSA 4096 CSR in %.2f s; %d device connections meanwhile, the slowest %.0f ms" % (took, len(results), slowest * 1000))

    def test_bad_csr_requests_and_answers_are_refused(self):
        csr = ok(self.b, "createCSR", slot="mqtt", subject={"CN": "x"})["csr"]
        other = ok(self.b, "createCSR", slot="mqtt", subject={"CN": "y"})["csr"]
        pem_other = ok(self.b, "getCSR", slot="mqtt", id=other["id"])["csr"]["csr"]
        wrong = self.sign(pem_other, "y")
        digest = tree_digest(self.work.store)
        cases = [
            ({"command": "installCertificate", "slot": "mqtt", "csr": csr["id"], "certificate": wrong}, "not for this CSR's key"),
            ({"command": "installCertificate", "slot": "mqtt", "csr": "0" * 64, "certificate": wrong}, "no CSR"),
            ({"command": "installCertificate", "slot": "mqtt", "csr": csr["id"], "certificate": "garbage"}, "not a PEM certificate"),
            ({"command": "createCSR", "slot": "mqtt", "subject": {"CN": "z"}, "key": {"type": "dsa"}}, "unknown key type"),
            ({"command": "createCSR", "slot": "mqtt", "subject": {"CN": "z"}, "key": {"type": "rsa", "bits": 1024}}, "needs allowWeakKey"),
            ({"command": "createCSR", "slot": "mqtt", "subject": {"CN": "z"}, "key": {"type": "rsa", "bits": 1000}}, "must be 2048"),
            ({"command": "createCSR", "slot": "mqtt", "subject": {"XX": "z"}}, "must be one of CN"),
            ({"command": "createCSR", "slot": "mqtt", "subject": {}}, "the subject is empty"),
            ({"command": "createCSR", "slot": "mqtt", "subject": {"CN": "z", "C": "Germany"}}, "subject field C"),
            ({"command": "createCSR", "slot": "mqtt", "subject": {"CN": "z"}, "subjectAltNames": ["ftp:x"]}, "must be DNS:, IP:"),
            ({"command": "createCSR", "slot": "mqtt", "subject": {"CN": "z"}, "reuseKey": True, "key": {"type": "ec"}}, "not both"),
            ({"command": "createCSR", "slot": "nope", "subject": {"CN": "z"}}, "unknown slot"),
            ({"command": "getCSR", "slot": "mqtt", "id": "0" * 64}, "no CSR"),
            ({"command": "removeCSR", "slot": "websockets", "id": csr["id"]}, "no CSR"),
        ]
        for cmd, error in cases:
            r = control(self.b, [cmd])["responses"][0]
            self.assertIn(error, r.get("error", ""), cmd)
        self.assertEqual(tree_digest(self.work.store), digest)
        weak = ok(self.b, "createCSR", slot="mqtt", subject={"CN": "w"}, key={"type": "rsa", "bits": 1024}, allowWeakKey=True)["csr"]
        self.assertEqual(weak["keyBits"], 1024)
        self.b.wait_log("weak RSA 1024 key")
        ok(self.b, "removeCSR", slot="mqtt", id=weak["id"])

    def test_cli_writes_and_installs(self):
        target = self.f("cli.csr")
        rc, out, err = ctl(self.b, "-o", target, "createCSR", "websockets", "--cn", "ws.acme.test", "--o", "ACME",
                           "--san", "DNS:ws.acme.test")
        self.assertEqual(rc, 0, err)
        self.assertIn("BEGIN CERTIFICATE REQUEST", read(target))
        csr_id = [c["id"] for c in ok(self.b, "listCSRs", slot="websockets")["csrs"]][0]
        with open(self.f("answer.pem"), "w") as f:
            f.write(self.sign(read(target), "ws"))
        rc, out, err = ctl(self.b, "installCertificate", "websockets", csr_id, self.f("answer.pem"), "--default")
        self.assertEqual(rc, 0, err)
        rc, out, err = ctl(self.b, "installCertificate", "websockets", csr_id, self.f("answer.pem"))
        self.assertEqual(rc, 13)
        self.assertIn("no CSR", err)


if __name__ == "__main__":
    unittest.main()
