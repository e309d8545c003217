"""The broker's own certificates: independent slots, uploads with
encrypted keys and PKCS#12, per-tenant certificates chosen by SNI,
rotation without restart, expiry warnings: real broker, real clients."""

import base64
import hashlib
import json
import os
import ssl
import subprocess
import time
import unittest

from harness import (Broker, BrokerTest, Workdir, control, ctl, ok, pki, read, mqtt_connect, served_certificate, tree_digest,
                     free_port)
from harness import closed_within


def run(*args, cwd=None):
    subprocess.run(list(args), check=True, capture_output=True, cwd=cwd)


class ServerCertTest(BrokerTest):
    def setUp(self):
        super().setUp()
        self.d = self.work.file("srv")
        os.mkdir(self.d)
        self.make_material()
        # The administrator trusts the built-in certificate and the server
        # CA of the uploads: this test rotates between them.
        self.work.admin_cafile = self.f("admin-trust.pem")
        with open(self.work.admin_cafile, "w") as fh:
            fh.write(read(self.cafile) + read(self.f("sca.pem")))
        os.chmod(self.work.admin_cafile, 0o644)

    def check_log(self, log):
        # Keys, passphrases and PEM bodies never reach the log.
        for secret in ("secret-pass", "p12-pass", "PRIVATE KEY", "BEGIN CERTIFICATE"):
            self.assertNotIn(secret, log)

    def trust_served(self):
        """The administrator also trusts what the listener serves now."""
        with open(self.work.admin_cafile, "a") as fh:
            fh.write(read(self.cafile))

    def f(self, name):
        return os.path.join(self.d, name)

    def make_material(self):
        """A server CA, an intermediate, a leaf for acme.test with its
        chain, an encrypted copy of its key, a PKCS#12 bundle, another
        leaf, an expired one, and one expiring in five days."""
        cnf = self.f("x.cnf")
        with open(cnf, "w") as fh:
            fh.write("[ req ]\ndistinguished_name = dn\n[ dn ]\n"
                     "[ ca ]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n"
                     "[ leaf ]\nbasicConstraints=critical,CA:FALSE\nsubjectAltName=DNS:acme.test,DNS:localhost\n"
                     "[ leaf2 ]\nbasicConstraints=critical,CA:FALSE\nsubjectAltName=DNS:other.test\n"
                     "[ cad ]\ndefault_ca = c\n[ c ]\ndatabase = %s\nserial = %s\ndefault_md = sha256\npolicy = p\n"
                     "new_certs_dir = %s\n[ p ]\ncommonName = supplied\n" % (self.f("idx"), self.f("serial"), self.d))
        open(self.f("idx"), "w").close()
        with open(self.f("serial"), "w") as fh:
            fh.write("1000\n")

        def key(name, rsa=False):
            if rsa:
                run("openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", self.f(name + ".key"))
            else:
                run("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", self.f(name + ".key"))

        key("sca")
        run("openssl", "req", "-x509", "-new", "-key", self.f("sca.key"), "-subj", "/CN=Server Root", "-days", "30",
            "-config", cnf, "-extensions", "ca", "-out", self.f("sca.pem"))
        key("sint")
        run("openssl", "req", "-new", "-key", self.f("sint.key"), "-subj", "/CN=Server Intermediate", "-config", cnf, "-out", self.f("sint.csr"))
        run("openssl", "x509", "-req", "-in", self.f("sint.csr"), "-CA", self.f("sca.pem"), "-CAkey", self.f("sca.key"),
            "-CAcreateserial", "-days", "30", "-extfile", cnf, "-extensions", "ca", "-out", self.f("sint.pem"))
        for name, cn, ext, rsa in (("leaf", "acme.test", "leaf", True), ("other", "other.test", "leaf2", False)):
            key(name, rsa)
            run("openssl", "req", "-new", "-key", self.f(name + ".key"), "-subj", "/CN=" + cn, "-config", cnf, "-out", self.f(name + ".csr"))
            run("openssl", "x509", "-req", "-in", self.f(name + ".csr"), "-CA", self.f("sint.pem"), "-CAkey", self.f("sint.key"),
                "-CAcreateserial", "-days", "20", "-extfile", cnf, "-extensions", ext, "-out", self.f(name + ".pem"))
        for name, start, end in (("expired", "20200101000000Z", "20210101000000Z"),
                                 ("soon", time.strftime("%Y%m%d%H%M%SZ", time.gmtime(time.time() - 60)),
                                  time.strftime("%Y%m%d%H%M%SZ", time.gmtime(time.time() + 5 * 86400)))):
            key(name)
            run("openssl", "req", "-new", "-key", self.f(name + ".key"), "-subj", "/CN=" + name + ".test", "-config", cnf, "-out", self.f(name + ".csr"))
            run("openssl", "ca", "-batch", "-config", cnf, "-name", "c", "-cert", self.f("sint.pem"), "-keyfile", self.f("sint.key"),
                "-in", self.f(name + ".csr"), "-startdate", start, "-enddate", end, "-notext", "-out", self.f(name + ".pem"))
        with open(self.f("chain.pem"), "w") as fh:
            # deliberately out of order: the root first
            fh.write(read(self.f("sca.pem")) + read(self.f("leaf.pem")) + read(self.f("sint.pem")))
        run("openssl", "pkcs8", "-topk8", "-in", self.f("leaf.key"), "-v2", "aes-256-cbc", "-passout", "pass:secret-pass",
            "-out", self.f("leaf-enc.key"))
        run("openssl", "pkcs12", "-export", "-inkey", self.f("other.key"), "-in", self.f("other.pem"), "-certfile", self.f("sint.pem"),
            "-passout", "pass:p12-pass", "-out", self.f("other.p12"))
        for name in os.listdir(self.d):
            os.chmod(self.f(name), 0o644)

    def id_of(self, name):
        return hashlib.sha256(ssl.PEM_cert_to_DER_cert(read(self.f(name)))).hexdigest()

    def served(self, sni=None):
        return served_certificate(self.b.port, servername=sni)[1]

    def add(self, **fields):
        fields.setdefault("slot", "mqtt")
        return control(self.b, [dict(command="addServerCertificate", **fields)])["responses"][0]

    def test_encrypted_key_upload_is_served_next_while_open_connections_stay(self):
        ok(self.b, "addCA", tenant="default", certificate=read(pki("ca-a.pem")))
        before = mqtt_connect(self.b.port, "d:default:sensor:a1", cafile=self.cafile, cert=pki("dev-a1.pem"),
                              key=pki("dev-a1.key"), keep=True)
        self.assertEqual(before["result"], "accepted")
        self.socks.append(before["sock"])
        r = self.add(certificate=read(self.f("chain.pem")), privateKey=read(self.f("leaf-enc.key")),
                     passphrase="secret-pass", description="acme leaf", makeDefault=True)
        self.assertNotIn("error", r)
        self.assertEqual(r["data"]["certificate"]["id"], self.id_of("leaf.pem"))
        self.assertEqual(r["data"]["certificate"]["chainLength"], 3)
        self.assertEqual(self.served(), self.id_of("leaf.pem"))
        self.assertFalse(closed_within(before["sock"], 0.5), "rotation closed an open connection")
        # The chain was put in order, leaf first, and the key is stored 0600.
        got = ok(self.b, "getServerCertificate", slot="mqtt", id=self.id_of("leaf.pem"))["certificate"]
        self.assertEqual(got["certificate"], read(self.f("leaf.pem")) + read(self.f("sint.pem")) + read(self.f("sca.pem")))
        key = os.path.join(self.work.store, "slots", "mqtt", self.id_of("leaf.pem") + ".key")
        self.assertEqual(os.stat(key).st_mode & 0o777, 0o600)
        # The listener's certfile follows the default.
        self.assertEqual(read(os.path.join(self.work.store, "listener", "mqtt.crt")).count("BEGIN CERTIFICATE"), 3)

    def test_pkcs12_upload_and_the_other_slots_stay_independent(self):
        before = {s: self.served() for s in ("mqtt",)}
        bridge_default = [c for c in ok(self.b, "listServerCertificates", slot="bridge")["certificates"] if c["default"]][0]["id"]
        p12 = base64.b64encode(open(self.f("other.p12"), "rb").read()).decode()
        r = self.add(slot="websockets", pkcs12=p12, passphrase="p12-pass", makeDefault=True)
        self.assertNotIn("error", r)
        self.assertEqual(r["data"]["certificate"]["chainLength"], 2)
        self.assertEqual(self.served(), before["mqtt"])  # mqtt untouched
        self.assertEqual([c["id"] for c in ok(self.b, "listServerCertificates", slot="bridge")["certificates"] if c["default"]],
                         [bridge_default])
        ws = [c for c in ok(self.b, "listServerCertificates", slot="websockets")["certificates"] if c["default"]]
        self.assertEqual(ws[0]["id"], self.id_of("other.pem"))

    def test_per_tenant_certificate_by_sni_and_restart_keeps_the_choice(self):
        self.assertNotIn("error", self.add(certificate=read(self.f("chain.pem")), privateKey=read(self.f("leaf.key"))))
        self.assertNotIn("error", self.add(certificate=read(self.f("other.pem")) + read(self.f("sint.pem")),
                                           privateKey=read(self.f("other.key")), makeDefault=True))
        ok(self.b, "createTenant", tenant="acme", hostnames=["acme.test"], serverCertificates={"mqtt": self.id_of("leaf.pem")})
        self.assertEqual(self.served("acme.test"), self.id_of("leaf.pem"))
        self.assertEqual(self.served("x.test"), self.id_of("other.pem"))
        self.assertEqual(self.b.stop(), 0)
        self.b.start()
        self.assertEqual(self.served("acme.test"), self.id_of("leaf.pem"))
        self.assertEqual(self.served(), self.id_of("other.pem"))
        # A certificate a tenant names cannot be removed; back to the default first.
        r = control(self.b, [{"command": "removeServerCertificate", "slot": "mqtt", "id": self.id_of("leaf.pem")}])["responses"][0]
        self.assertIn("tenant 'acme' is served with", r["error"])
        ok(self.b, "modifyTenant", tenant="acme", serverCertificates={"mqtt": ""})
        self.assertEqual(self.served("acme.test"), self.id_of("other.pem"))
        ok(self.b, "removeServerCertificate", slot="mqtt", id=self.id_of("leaf.pem"))
        self.assertFalse(os.path.exists(os.path.join(self.work.store, "slots", "mqtt", self.id_of("leaf.pem") + ".key")))

    def test_regenerate_self_signed_makes_a_new_builtin_default(self):
        old = self.served()
        r = control(self.b, [{"command": "regenerateSelfSigned", "slot": "mqtt", "commonName": "broker.example",
                              "subjectAltNames": ["DNS:broker.example", "DNS:localhost"], "key": {"type": "ed25519"}}])
        cert = r["responses"][0]["data"]["certificate"]
        self.assertTrue(cert["builtin"] and cert["default"])
        self.trust_served()
        self.assertNotEqual(self.served(), old)
        listed = ok(self.b, "listServerCertificates", slot="mqtt")["certificates"]
        self.assertEqual([c["builtin"] for c in listed], [True])  # the old built-in is gone
        details = ok(self.b, "getServerCertificate", slot="mqtt", id=cert["id"])["certificate"]
        self.assertEqual((details["subject"], details["keyType"]), ("CN=broker.example", "ed25519"))
        # An RSA one, made on the worker while the broker answers.
        r = control(self.b, [{"command": "regenerateSelfSigned", "slot": "mqtt", "key": {"type": "rsa", "bits": 3072}}])
        self.assertEqual(r["responses"][0]["data"]["certificate"]["default"], True)
        self.trust_served()
        self.assertEqual(ok(self.b, "getServerCertificate", slot="mqtt", id=self.served())["certificate"]["keyBits"], 3072)

    def test_private_key_export_and_expiry_and_host_name_warnings(self):
        self.assertNotIn("error", self.add(certificate=read(self.f("soon.pem")) + read(self.f("sint.pem")),
                                           privateKey=read(self.f("soon.key"))))
        got = ok(self.b, "getServerCertificate", slot="mqtt", id=self.id_of("soon.pem"), includePrivateKey=True)["certificate"]
        self.assertIn("BEGIN PRIVATE KEY", got["privateKey"])
        st = ok(self.b, "getStatus")["status"]
        self.assertIn(("server", self.id_of("soon.pem")), [(e["kind"], e["id"]) for e in st["expiring"]])
        ok(self.b, "createTenant", tenant="acme", hostnames=["acme.test"])
        warned = [(w["tenant"], w["hostname"], w["slot"]) for w in ok(self.b, "getStatus")["status"]["hostnameWarnings"]]
        self.assertIn(("acme", "acme.test", "mqtt"), warned)

    def test_bad_uploads_get_clear_errors_and_change_nothing(self):
        digest = tree_digest(self.work.store)
        leaf, key = read(self.f("leaf.pem")) + read(self.f("sint.pem")), read(self.f("leaf.key"))
        cases = [
            (dict(certificate=leaf, privateKey=read(self.f("other.key"))), "does not match"),
            (dict(certificate=leaf, privateKey=read(self.f("leaf-enc.key")), passphrase="wrong"), "wrong passphrase"),
            (dict(certificate=leaf, privateKey=read(self.f("leaf-enc.key"))), "give its passphrase"),
            (dict(certificate=leaf[:200], privateKey=key), "damaged"),
            (dict(certificate=read(self.f("leaf.pem")) + read(self.f("sca.pem")), privateKey=key), "does not link"),
            (dict(certificate=read(self.f("expired.pem")), privateKey=read(self.f("expired.key"))), "is expired"),
            (dict(pkcs12=base64.b64encode(open(self.f("other.p12"), "rb").read()).decode(), passphrase="nope"), "wrong passphrase"),
            (dict(pkcs12="bm90IGEgcDEy"), "not a PKCS#12"),
            (dict(certificate=leaf), "give 'certificate' and 'privateKey'"),
            (dict(slot="ftp", certificate=leaf, privateKey=key), "unknown slot 'ftp'"),
            (dict(certificate=leaf, privateKey=key, makeDefault="yes"), "'makeDefault' must be true or false"),
        ]
        for fields, error in cases:
            r = self.add(**fields)
            self.assertIn(error, r.get("error", ""), fields.keys())
        builtin = ok(self.b, "listServerCertificates", slot="mqtt")["certificates"][0]["id"]
        for cmd, error in (({"command": "removeServerCertificate", "slot": "mqtt", "id": builtin}, "is the default"),
                           ({"command": "setDefaultServerCertificate", "slot": "mqtt", "id": "0" * 64}, "no certificate"),
                           ({"command": "listServerCertificates", "slot": "http"}, "unknown slot"),
                           ({"command": "regenerateSelfSigned", "slot": "mqtt", "key": {"type": "dsa"}}, "unknown key type"),
                           ({"command": "regenerateSelfSigned", "slot": "mqtt", "key": {"type": "rsa", "bits": 1024}}, "must be 2048"),
                           ({"command": "regenerateSelfSigned", "slot": "mqtt", "subjectAltNames": ["IP:1.2.3.4"]}, "must be DNS:"),
                           ({"command": "createTenant", "tenant": "t", "serverCertificates": {"mqtt": "0" * 64}}, "no server certificate")):
            r = control(self.b, [cmd])["responses"][0]
            self.assertIn(error, r.get("error", ""), cmd)
        self.assertEqual(tree_digest(self.work.store), digest)
        # The built-in cannot be removed even when it is not the default.
        self.assertNotIn("error", self.add(certificate=leaf, privateKey=key, makeDefault=True))
        r = control(self.b, [{"command": "removeServerCertificate", "slot": "mqtt", "id": builtin}])["responses"][0]
        self.assertIn("built-in certificate cannot be removed", r["error"])

    def test_cli_uploads_from_files(self):
        rc, out, err = ctl(self.b, "addServerCertificate", "mqtt", "--certificate", self.f("chain.pem"),
                           "--key", self.f("leaf-enc.key"), "--passphrase", "secret-pass", "--default")
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.served(), self.id_of("leaf.pem"))
        rc, out, err = ctl(self.b, "addServerCertificate", "bridge", "--pkcs12", self.f("other.p12"), "--passphrase", "p12-pass")
        self.assertEqual(rc, 0, err)
        rc, out, err = ctl(self.b, "--json", "listServerCertificates", "bridge")
        self.assertIn(self.id_of("other.pem"), [c["id"] for c in json.loads(out)["data"]["certificates"]])
        target = self.f("exported.pem")
        rc, out, err = ctl(self.b, "-o", target, "getServerCertificate", "mqtt", self.id_of("leaf.pem"))
        self.assertEqual(rc, 0, err)
        self.assertTrue(read(target).startswith(read(self.f("leaf.pem"))))
        rc, out, err = ctl(self.b, "setDefaultServerCertificate", "mqtt", self.id_of("leaf.pem"))
        self.assertEqual(rc, 0, err)
        rc, out, err = ctl(self.b, "regenerateSelfSigned", "mqtt", "--cn", "node1.example", "--key-type", "ec", "--key-curve", "P-384")
        self.assertEqual(rc, 0, err)
        self.trust_served()
        rc, out, err = ctl(self.b, "removeServerCertificate", "mqtt", self.id_of("leaf.pem"))
        self.assertEqual(rc, 0, err)
        rc, out, err = ctl(self.b, "addServerCertificate", "mqtt", "--certificate", self.f("chain.pem"))
        self.assertEqual(rc, 13)


class EncryptedAtRestTest(unittest.TestCase):
    """With plugin_opt_key_passphrase_file, keys are encrypted in the
    store and the listener files hold a placeholder."""

    def test_keys_are_encrypted_and_the_listener_files_hold_a_placeholder(self):
        work = Workdir()
        try:
            pf = work.file("passphrase")
            with open(pf, "w") as fh:
                fh.write("a long store passphrase\n")
            os.chmod(pf, 0o644)
            # A store made without encryption is converted at the next start.
            plain = Broker(work)
            plain.start()
            self.assertEqual(plain.stop(), 0)
            b = Broker(work, plugin_opts={"key_passphrase_file": pf}, conf_name="enc.conf")
            b.start()
            slot = json.load(open(os.path.join(work.store, "slots", "mqtt", "slot.json")))
            key = read(os.path.join(work.store, "slots", "mqtt", slot["default"] + ".key"))
            self.assertIn("BEGIN ENCRYPTED PRIVATE KEY", key)
            placeholder = subprocess.run(["openssl", "x509", "-in", os.path.join(work.store, "listener", "mqtt.crt"),
                                          "-noout", "-subject"], capture_output=True, text=True).stdout
            self.assertIn("certmgr placeholder", placeholder)
            # What is served is the store's default, not the placeholder.
            self.assertEqual(served_certificate(b.port)[1], slot["default"])
            self.assertEqual(b.stop(), 0)
            # Without the passphrase the store cannot be read: refused.
            again = Broker(work, conf_name="plain.conf")
            self.assertNotEqual(again.start(expect_running=False), 0)
            self.assertIn("the private key is encrypted: give its passphrase", again.run_log())
            self.assertNotIn("a long store passphrase", b.log() + again.log())
        finally:
            work.cleanup()


if __name__ == "__main__":
    unittest.main()
