"""Issue 18: the ways around certmgr's checks that the review found,
each with a real broker and real clients."""

import hashlib
import json
import os
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

from crlserver import CrlServer
from harness import cert_id, openssl
from harness import (Broker, BrokerTest, Workdir, control, free_port, ok, pki, read, mqtt_connect, mqtt_subscribe, mqtt_messages,
                     mqtt_publish, _client_context, _mqtt_string)


def tls_open(port, sni, cert, key, cafile):
    """A finished TLS handshake with no MQTT on it yet."""
    ctx = _client_context(cafile, cert, key)
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    s = ctx.wrap_socket(raw, server_hostname=sni)
    # TLS 1.3: the broker reads the client's certificate after the
    # client's side is done; give it the time to verify and tag it.
    time.sleep(0.5)
    return s


def mqtt_send_connect(s, clientid):
    """CONNECT on an open socket; "accepted", "refused:<code>" or "closed"."""
    body = _mqtt_string("MQTT") + bytes([4, 0x02, 0, 60]) + _mqtt_string(clientid)
    try:
        s.sendall(bytes([0x10, len(body)]) + body)
        ack = s.recv(4)
    except (ssl.SSLError, OSError):
        return "closed"
    if len(ack) < 4:
        return "closed"
    return "accepted" if ack[3] == 0 else "refused:%d" % ack[3]


def make_cert(directory, name, cn, issuer=None, ca=False, email=None):
    """A P-256 key and certificate NAME in directory: self-signed, or
    signed by issuer (a path prefix with .pem and .key)."""
    key, crt = os.path.join(directory, name + ".key"), os.path.join(directory, name + ".pem")
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key)
    ext = os.path.join(directory, name + ".ext")
    with open(ext, "w") as f:
        if ca:
            f.write("basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n")
        else:
            f.write("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n")
        if email:
            f.write("subjectAltName=email:%s\n" % email)
    if issuer is None:
        openssl("req", "-new", "-x509", "-key", key, "-out", crt, "-days", "30", "-subj", "/CN=" + cn,
                "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    else:
        csr = os.path.join(directory, name + ".csr")
        openssl("req", "-new", "-key", key, "-out", csr, "-subj", "/CN=" + cn)
        openssl("x509", "-req", "-in", csr, "-CA", issuer + ".pem", "-CAkey", issuer + ".key", "-CAcreateserial",
                "-out", crt, "-days", "30", "-extfile", ext)
    os.chmod(key, 0o644)
    return crt, key


class HardenTest(BrokerTest):
    def acme(self, **extra):
        ok(self.b, "createTenant", tenant="acme", hostnames=["acme.test"], **extra)
        return ok(self.b, "addCA", tenant="acme", certificate=read(pki("ca-a.pem")))["ca"]["id"]

    def connect(self, dev, clientid, sni="acme.test", **kw):
        return mqtt_connect(self.b.port, clientid, sni=sni, cafile=self.cafile, cert=pki(dev + ".pem"),
                            key=pki(dev + ".key"), **kw)


class TrustChangeBeforeConnectTest(HardenTest):
    """Item 2: a handshake made under the old trust, CONNECT after the
    change."""

    def late_connect(self, change, dev="dev-a1", clientid="d:acme:sensor:a1"):
        s = tls_open(self.b.port, "acme.test", pki(dev + ".pem"), pki(dev + ".key"), self.cafile)
        self.socks.append(s)
        change()
        return mqtt_send_connect(s, clientid)

    def test_connect_after_deactivating_the_ca_is_refused(self):
        ca = self.acme()
        self.assertEqual(self.late_connect(lambda: ok(self.b, "setCAState", tenant="acme", id=ca, active=False)),
                         "refused:5")
        self.b.wait_log("refused client 'd:acme:sensor:a1'")

    def test_connect_after_removing_the_ca_is_refused(self):
        ca = self.acme()
        self.assertEqual(self.late_connect(lambda: ok(self.b, "removeCA", tenant="acme", id=ca)), "refused:5")

    def test_connect_after_untrusting_the_pin_is_refused(self):
        ok(self.b, "createTenant", tenant="acme", hostnames=["acme.test"])
        ok(self.b, "trustCertificate", tenant="acme", certificate=read(pki("dev-a1.pem")))
        pin = cert_id(pki("dev-a1.pem"))
        self.assertEqual(self.late_connect(lambda: ok(self.b, "untrustCertificate", tenant="acme", id=pin)),
                         "refused:5")

    def test_connect_after_a_crl_revokes_it_is_refused(self):
        self.acme()
        self.assertEqual(self.late_connect(lambda: ok(self.b, "uploadCRL", tenant="acme", crl=read(pki("crl-a.pem"))),
                                           "dev-a2", "d:acme:meter:a2"), "refused:5")

    def test_connect_after_an_unrelated_change_is_accepted(self):
        self.acme()
        ok(self.b, "createTenant", tenant="other", hostnames=["other.test"])
        self.assertEqual(self.late_connect(lambda: ok(self.b, "addCA", tenant="acme", certificate=read(pki("ca-b.pem")))),
                         "accepted")


class IdentityAsUsernameTest(unittest.TestCase):
    """Item 3: use_identity_as_username / use_subject_as_username switch
    the basic-auth event, and with it certmgr's checks, off."""

    def setUp(self):
        self.work = Workdir()

    def tearDown(self):
        self.work.cleanup()

    def refused(self, option):
        port = free_port()
        b = Broker(self.work, port=port)
        listener = b.tls_listener(port) + "\nrequire_certificate true\n%s true" % option
        b = Broker(self.work, port=port, listeners=[listener])
        rc = b.start(expect_running=False)
        self.assertNotEqual(rc, 0)
        self.assertIn("%s is true on listener %d" % (option, port), b.log())

    def test_use_identity_as_username_on_a_served_listener_refuses_to_start(self):
        self.refused("use_identity_as_username")

    def test_use_subject_as_username_on_a_served_listener_refuses_to_start(self):
        self.refused("use_subject_as_username")

    def test_a_listener_certmgr_does_not_serve_may_keep_it(self):
        served, other = free_port(), free_port()
        b0 = Broker(self.work, port=served)
        listeners = [b0.tls_listener(served),
                     b0.tls_listener(other) + "\nrequire_certificate true\ncafile %s\nuse_identity_as_username true" % pki("ca-b.pem")]
        b = Broker(self.work, port=served, listeners=listeners, plugin_opts={"mqtt_ports": str(served), "admin_users": "admin"})
        b.start()
        try:
            d = tempfile.mkdtemp(dir=self.work.path)
            ca = os.path.join(d, "ca-b")
            for ext in ("pem", "key"):
                with open(pki("ca-b." + ext)) as src, open(ca + "." + ext, "w") as dst:
                    dst.write(src.read())
            crt, key = make_cert(d, "admin-dev", "admin", issuer=ca)
            # A certificate-authenticated client is no administrator by
            # the name its certificate gave it.
            r = mqtt_connect(other, "intruder", cert=crt, key=key, keep=True)
            self.assertEqual(r["result"], "accepted")
            s = r["sock"]
            try:
                mqtt_subscribe(s, "$CONTROL/certmgr/v1/response")
                mqtt_publish(s, "$CONTROL/certmgr/v1", json.dumps({"commands": [{"command": "listTenants"}]}))
                self.assertEqual(mqtt_messages(s, 2, first_only=True), [])
            finally:
                s.close()
        finally:
            self.assertEqual(b.stop(), 0)


class ClientIdTakeoverTest(HardenTest):
    """Item 4: a client certmgr did not authenticate cannot hold the
    client id of a certificate tenant's device."""
    extra = "listener %d 127.0.0.1\nallow_anonymous true"

    def setUp(self):
        self.plain_port = free_port()
        self.extra = self.extra % self.plain_port
        super().setUp()

    def plain_connect(self, clientid):
        raw = socket.create_connection(("127.0.0.1", self.plain_port), timeout=10)
        body = _mqtt_string("MQTT") + bytes([4, 0x02, 0, 60]) + _mqtt_string(clientid)
        raw.sendall(bytes([0x10, len(body)]) + body)
        ack = raw.recv(4)
        raw.close()
        return "accepted" if len(ack) == 4 and ack[3] == 0 else "refused:%d" % ack[3] if len(ack) == 4 else "closed"

    def test_a_plain_client_cannot_take_a_device_client_id(self):
        self.acme()
        dev = self.connect("dev-a1", "d:acme:sensor:a1", keep=True)
        self.assertEqual(dev["result"], "accepted")
        self.socks.append(dev["sock"])
        self.assertEqual(self.plain_connect("d:acme:sensor:a1"), "refused:5")
        self.assertEqual(self.plain_connect("g:acme:gw:a3"), "refused:5")
        self.b.wait_log("refused client 'd:acme:sensor:a1'")
        # The device is still there.
        mqtt_publish(dev["sock"], "acme/x", "still here")
        self.assertEqual(mqtt_messages(dev["sock"], 0.5), [])

    def test_a_token_tenant_client_cannot_take_a_device_client_id(self):
        self.acme()
        ok(self.b, "createTenant", tenant="tok", hostnames=["tok.test"], policy="token")
        r = mqtt_connect(self.b.port, "d:acme:sensor:a1", sni="tok.test", cafile=self.cafile)
        self.assertEqual(r["result"], "refused:5")
        # Its own ids are the token mechanism's to judge.
        r = mqtt_connect(self.b.port, "d:tok:sensor:1", sni="tok.test", cafile=self.cafile)
        self.assertEqual(r["result"], "accepted")

    def test_other_client_ids_are_left_to_the_broker(self):
        self.acme()
        self.assertEqual(self.plain_connect("d:nosuchorg:sensor:1"), "accepted")
        self.assertEqual(self.plain_connect("backend-1"), "accepted")


class RejectedPoisoningTest(HardenTest):
    """Item 7: an entry of the rejected list is the chain as seen."""

    def test_a_forged_root_does_not_poison_the_victims_entry(self):
        ok(self.b, "createTenant", tenant="acme", hostnames=["acme.test"])
        d = tempfile.mkdtemp(dir=self.work.path)
        evil, _ = make_cert(d, "evil-root", "Evil Root", ca=True)
        forged = os.path.join(d, "forged.pem")
        with open(forged, "w") as f:
            f.write(read(pki("dev-a1.pem")) + read(evil))
        genuine = os.path.join(d, "genuine.pem")
        with open(genuine, "w") as f:
            f.write(read(pki("dev-a1.pem")) + read(pki("ca-a.pem")))
        # The attacker first, the device after.
        for chain in (forged, genuine):
            r = mqtt_connect(self.b.port, "d:acme:sensor:a1", sni="acme.test", cafile=self.cafile, cert=chain,
                             key=pki("dev-a1.key"))
            self.assertNotEqual(r["result"], "accepted")
        listed = ok(self.b, "listRejected")["rejected"]
        self.assertEqual(len(listed), 2, listed)
        by_top = {}
        for e in listed:
            got = ok(self.b, "getRejected", id=e["id"])["rejected"]
            self.assertEqual(got["leafId"], cert_id(pki("dev-a1.pem")))
            top = got["chain"].split("-----BEGIN CERTIFICATE-----")[-1]
            by_top["-----BEGIN CERTIFICATE-----\n" + top.strip()] = e["id"]
        forged_id = by_top[read(evil).strip()]
        genuine_id = by_top[read(pki("ca-a.pem")).strip()]
        r = control(self.b, [{"command": "trustRejected", "id": forged_id, "tenant": "acme", "anchor": "root"}])
        self.assertIn("did not issue", r["responses"][0].get("error", ""), r)
        self.assertEqual(ok(self.b, "listCAs", tenant="acme")["cas"], [])
        ok(self.b, "trustRejected", id=genuine_id, tenant="acme", anchor="root")
        self.assertEqual(self.connect("dev-a1", "d:acme:sensor:a1")["result"], "accepted")


class PendingAnswerTest(HardenTest):
    """A control answer that waits on a download goes to the connection
    that asked, not to whoever holds its client id by then."""
    plugin_opts = {"crl_timeout": "3", "crl_connect_timeout": "2"}

    def admin(self, clientid):
        r = mqtt_connect(self.b.port, clientid, keep=True, cert=os.path.join(self.work.store, "admin", "admin.pem"),
                         key=os.path.join(self.work.store, "admin", "admin.key"))
        self.assertEqual(r["result"], "accepted")
        self.socks.append(r["sock"])
        self.assertEqual(mqtt_subscribe(r["sock"], "$CONTROL/certmgr/v1/response"), 0)
        return r["sock"]

    def test_a_pending_answer_does_not_follow_the_client_id(self):
        http = CrlServer(self.work.path)
        try:
            ok(self.b, "createTenant", tenant="acme", hostnames=["acme.test"])
            first = self.admin("ops-1")
            mqtt_publish(first, "$CONTROL/certmgr/v1", json.dumps({"commands": [
                {"command": "addCA", "tenant": "acme", "certificate": read(pki("ca-a.pem")), "crlUrl": http.url("/hang")}]}))
            time.sleep(0.5)
            # Another session takes the client id over while the download
            # is under way.
            second = self.admin("ops-1")
            self.assertEqual(mqtt_messages(second, 6, first_only=True), [])
            self.b.wait_log("dropped the control response for 'ops-1'")
        finally:
            http.stop()


class CrlAllowedHostsTest(HardenTest):
    """plugin_opt_crl_allowed_hosts: the broker connects for CRLs only to
    the hosts listed, redirects included."""
    plugin_opts = {"crl_allowed_hosts": "127.0.0.1, *.crl.test", "crl_timeout": "5"}

    def setUp(self):
        super().setUp()
        files = self.work.file("crls")
        os.mkdir(files)
        with open(pki("crl-a.pem"), "rb") as src, open(os.path.join(files, "crl-a.pem"), "wb") as dst:
            dst.write(src.read())
        self.http = CrlServer(files)
        ok(self.b, "createTenant", tenant="acme", hostnames=["acme.test"])

    def tearDown(self):
        self.http.stop()
        super().tearDown()

    def add(self, url):
        return control(self.b, [{"command": "addCA", "tenant": "acme", "certificate": read(pki("ca-a.pem")),
                                 "crlUrl": url}], timeout=20)["responses"][0]

    def test_a_host_not_listed_is_not_fetched(self):
        r = self.add("http://localhost:%d/files/crl-a.pem" % self.http.port)
        self.assertIn("'localhost' is not in plugin_opt_crl_allowed_hosts", r.get("error", ""), r)
        self.assertEqual(self.http.hits, {})

    def test_a_redirect_to_a_host_not_listed_is_refused(self):
        r = self.add(self.http.url("/to-localhost/crl-a.pem"))
        self.assertIn("'localhost' is not in plugin_opt_crl_allowed_hosts", r.get("error", ""), r)
        self.assertNotIn("/files/crl-a.pem", self.http.hits)

    def test_a_listed_host_is_fetched_redirects_too(self):
        r = self.add(self.http.url("/redirect/crl-a.pem"))
        self.assertNotIn("error", r)
        self.assertEqual(self.http.hits.get("/files/crl-a.pem"), 1)

    def test_a_malformed_list_refuses_to_start(self):
        for value, why in (("crl.example.com,bad/x", "'bad/x' is not a host name"), (" , ", "names no host")):
            work = Workdir()
            try:
                b = Broker(work, plugin_opts={"crl_allowed_hosts": value})
                self.assertNotEqual(b.start(expect_running=False), 0)
                self.assertIn("plugin_opt_crl_allowed_hosts", b.log())
                self.assertIn(why, b.log())
            finally:
                work.cleanup()


class PrivateKeysOverTlsTest(unittest.TestCase):
    """A private key travels only over a connection certmgr knows is TLS:
    an administrator's by user name on plain TCP from loopback (a local
    reverse proxy looks the same) gets none, and may send none."""

    def setUp(self):
        self.work = Workdir()
        self.passwd = self.work.file("passwd")
        subprocess.run(["mosquitto_passwd", "-b", "-c", self.passwd, "opsadmin", "ops-pw"], check=True)
        os.chmod(self.passwd, 0o644)
        self.plain = free_port()
        self.b = Broker(self.work, plugin_opts={"admin_users": "opsadmin"},
                        extra="password_file %s\nlistener %d 127.0.0.1" % (self.passwd, self.plain))
        self.b.start()

    def tearDown(self):
        rc = self.b.stop()
        log = self.b.log()
        self.work.cleanup()
        self.assertEqual(rc, 0, "broker exit code\n" + log)

    def test_no_private_key_over_plain_tcp_even_from_loopback(self):
        key, pem = self.work.file("leaf.key"), self.work.file("leaf.pem")
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
                "-out", pem, "-subj", "/CN=plain.test", "-days", "30")
        default = [c["id"] for c in ok(self.b, "listServerCertificates", slot="mqtt")["certificates"] if c["default"]][0]
        commands = [{"command": "getServerCertificate", "slot": "mqtt", "id": default, "includePrivateKey": True},
                    {"command": "addServerCertificate", "slot": "bridge", "certificate": read(pem), "privateKey": read(key)},
                    {"command": "getServerCertificate", "slot": "mqtt", "id": default}]
        r = control(self.b, commands, extra_args=["-p", str(self.plain), "-u", "opsadmin", "-P", "ops-pw"])
        self.assertIsNotNone(r)
        got = r["responses"]
        # (No message dumping the answers: one could hold a key.)
        self.assertIn("private keys", got[0].get("error", ""))
        self.assertIn("only over TLS", got[0]["error"])
        self.assertIn("only over TLS", got[1].get("error", ""))
        self.assertNotIn("error", got[2])
        self.assertEqual(len(ok(self.b, "listServerCertificates", slot="bridge")["certificates"]), 1)


class SharedCaWarningTest(HardenTest):
    """A CA trusted by two tenants, or one tenant trusting a CA above
    another's: devices of one log in to the other under its host names
    (the CN carries no org). addCA and getStatus say so."""

    def test_a_ca_in_two_tenants_is_warned_about(self):
        ca = self.acme()
        ok(self.b, "createTenant", tenant="other", hostnames=["other.test"])
        data = ok(self.b, "addCA", tenant="other", certificate=read(pki("ca-a.pem")))
        # Both ways: each tenant's devices log in to the other.
        got = sorted((w["tenant"], w["ca"], w["alsoTrustedBy"], w["via"]) for w in data.get("warnings", []))
        self.assertEqual(got, [("acme", ca, "other", ca), ("other", ca, "acme", ca)], data.get("warnings"))
        self.assertIn("tenant other also trusts", data["warnings"][0]["warning"] + data["warnings"][1]["warning"])
        shared = ok(self.b, "getStatus")["status"]["sharedCAs"]
        self.assertEqual(sorted((w["tenant"], w["alsoTrustedBy"]) for w in shared), [("acme", "other"), ("other", "acme")])

    def test_a_ca_above_another_tenants_ca_is_warned_about(self):
        ca = self.acme()
        ok(self.b, "createTenant", tenant="other", hostnames=["other.test"])
        data = ok(self.b, "addCA", tenant="other", certificate=read(pki("ca-int.pem")))
        w = data.get("warnings", [])
        self.assertEqual([(x["tenant"], x["alsoTrustedBy"], x["via"]) for x in w], [("other", "acme", ca)], data)
        # A device of other's intermediate is admitted under acme's name.
        r = mqtt_connect(self.b.port, "d:acme:sensor:i1", sni="acme.test", cafile=self.cafile,
                         cert=self.chain_file(), key=pki("dev-i1.key"))
        self.assertEqual(r["result"], "accepted")

    def chain_file(self):
        path = self.work.file("i1-chain.pem")
        with open(path, "w") as f:
            f.write(read(pki("dev-i1.pem")) + read(pki("ca-int.pem")))
        return path

    def test_unrelated_cas_are_not_warned_about(self):
        self.acme()
        ok(self.b, "createTenant", tenant="other", hostnames=["other.test"])
        data = ok(self.b, "addCA", tenant="other", certificate=read(pki("ca-b.pem")))
        self.assertNotIn("warnings", data)
        self.assertEqual(ok(self.b, "getStatus")["status"]["sharedCAs"], [])


if __name__ == "__main__":
    unittest.main()
