"""Tenants chosen by SNI, CA registration over the control topic, device
identity, administrators, and bad input that changes nothing: with real
brokers, real clients and certificates made by tests/pki/make-test-pki."""

import hashlib
import json
import os
import signal
import ssl
import subprocess
import time
import unittest

from crlserver import CrlServer
from harness import (Broker, Workdir, control, ctl, ok, pki, read, mqtt_connect, mqtt_publish, tree_digest,
                     hosts_file, with_hosts, admin_tls_args, free_port, closed_within)


class TenantTest(unittest.TestCase):
    def setUp(self):
        self.work = Workdir()
        self.passwd = self.work.file("passwd")
        # A password file for the certificate+token and token policies and
        # for an administrator by user name.
        subprocess.run(["mosquitto_passwd", "-b", "-c", self.passwd, "alice", "alice-pw"], check=True)
        subprocess.run(["mosquitto_passwd", "-b", self.passwd, "opsadmin", "ops-pw"], check=True)
        os.chmod(self.passwd, 0o644)
        self.b = Broker(self.work, plugin_opts={"admin_users": "opsadmin", "max_payload": "65536"},
                        extra="password_file %s\nallow_anonymous false" % self.passwd)
        self.b.start()
        self.cafile = os.path.join(self.work.store, "listener", "mqtt.crt")

    def tearDown(self):
        rc = self.b.stop()
        log = self.b.log()
        self.work.cleanup()
        self.assertEqual(rc, 0, "broker exit code\n" + log)
        self.assertNotIn("AddressSanitizer", log)
        self.assertNotIn("runtime error:", log)

    def setup_acme(self, **extra):
        ok(self.b, "createTenant", tenant="acme", hostnames=["acme.test"], **extra)
        return ok(self.b, "addCA", tenant="acme", certificate=read(pki("ca-a.pem")), description="A's CA")["ca"]

    def connect(self, clientid, sni=None, dev=None, **kw):
        if dev:
            kw["cert"], kw["key"] = pki(dev + ".pem"), pki(dev + ".key")
        return mqtt_connect(self.b.port, clientid, sni=sni, cafile=self.cafile, **kw)["result"]

    # ------------------------------------------------------------------
    # Devices

    def test_device_is_accepted_with_its_tenants_sni_only(self):
        self.setup_acme()
        ok(self.b, "createTenant", tenant="beta", hostnames=["beta.test"])
        ok(self.b, "addCA", tenant="beta", certificate=read(pki("ca-b.pem")))
        self.assertEqual(self.connect("d:acme:sensor:a1", "acme.test", "dev-a1"), "accepted")
        self.assertEqual(self.connect("d:beta:sensor:b1", "beta.test", "dev-b1"), "accepted")
        # The other tenant's SNI: its CA does not vouch for this device.
        self.assertTrue(self.connect("d:acme:sensor:a1", "beta.test", "dev-a1").startswith("tls-error"))
        self.assertTrue(self.connect("d:beta:sensor:b1", "acme.test", "dev-b1").startswith("tls-error"))
        self.b.wait_log("refused client certificate from 127.0.0.1 (SNI 'beta.test', tenant beta)")

    def test_cn_and_san_email_identities_are_accepted(self):
        self.setup_acme()
        self.assertEqual(self.connect("d:acme:sensor:a1", "acme.test", "dev-a1"), "accepted")
        self.assertEqual(self.connect("d:acme:meter:a2", "acme.test", "dev-a2"), "accepted")
        self.assertEqual(self.connect("g:acme:gw:a3", "acme.test", "gw-a3"), "accepted")

    def test_identity_mismatches_are_refused_with_a_logged_reason(self):
        self.setup_acme()
        cases = {
            "d:acme:sensor:a9": "does not identify d:sensor:a9",
            "d:other:sensor:a1": "the tenant's org is 'acme'",
            "d:acme:sensor:a+1": "no valid device id",
            "d:acme:sen/sor:a1": "no valid device type",
            "sensor-a1": "client id must be",
            "d:acme:meter:a2": "does not identify d:meter:a2",
        }
        for clientid, reason in cases.items():
            self.assertEqual(self.connect(clientid, "acme.test", "dev-a1"), "refused:5", clientid)
            self.b.wait_log("refused client '%s' from 127.0.0.1 (tenant acme): " % clientid)
            self.assertIn(reason, self.b.run_log())

    def test_unknown_or_missing_sni_gets_the_empty_default_tenant(self):
        self.setup_acme()
        for sni in ("unknown.test", None):
            self.assertTrue(self.connect("d:acme:sensor:a1", sni, "dev-a1").startswith("tls-error"))
        # A self-signed device certificate is refused everywhere.
        self.assertTrue(self.connect("d:acme:sensor:a1", "acme.test", "self-signed-dev").startswith("tls-error"))
        # Without a certificate: the certificate policy requires one.
        self.assertTrue(self.connect("d:acme:sensor:a1", "acme.test").startswith("tls-error"))

    def test_the_default_tenant_admits_devices_once_given_a_ca(self):
        ok(self.b, "addCA", tenant="default", certificate=read(pki("ca-a.pem")))
        self.assertEqual(self.connect("d:default:sensor:a1", None, "dev-a1"), "accepted")
        self.assertEqual(self.connect("d:default:sensor:a1", "whatever.test", "dev-a1"), "accepted")

    def test_wildcard_host_name_matches_one_label_and_exact_wins(self):
        ok(self.b, "createTenant", tenant="wild", hostnames=["*.wild.test"])
        ok(self.b, "addCA", tenant="wild", certificate=read(pki("ca-a.pem")))
        ok(self.b, "createTenant", tenant="exact", hostnames=["special.wild.test"])
        ok(self.b, "addCA", tenant="exact", certificate=read(pki("ca-b.pem")))
        self.assertEqual(self.connect("d:wild:sensor:a1", "dev1.wild.test", "dev-a1"), "accepted")
        self.assertEqual(self.connect("d:wild:sensor:a1", "DEV2.Wild.Test", "dev-a1"), "accepted")
        self.assertTrue(self.connect("d:wild:sensor:a1", "a.b.wild.test", "dev-a1").startswith("tls-error"))
        self.assertTrue(self.connect("d:wild:sensor:a1", "special.wild.test", "dev-a1").startswith("tls-error"))
        self.assertEqual(self.connect("d:exact:sensor:b1", "special.wild.test", "dev-b1"), "accepted")

    def test_certificate_plus_token_needs_both(self):
        self.setup_acme(policy="certificate+token")
        self.assertEqual(self.connect("d:acme:sensor:a1", "acme.test", "dev-a1", username="alice", password="alice-pw"),
                         "accepted")
        self.assertEqual(self.connect("d:acme:sensor:a1", "acme.test", "dev-a1", username="alice", password="wrong"),
                         "refused:5")
        self.assertEqual(self.connect("d:acme:sensor:a1", "acme.test", "dev-a1"), "refused:5")
        self.assertTrue(self.connect("d:acme:sensor:a1", "acme.test", username="alice",
                                     password="alice-pw").startswith("tls-error"))
        # The identity is still checked.
        self.assertEqual(self.connect("d:acme:sensor:zz", "acme.test", "dev-a1", username="alice", password="alice-pw"),
                         "refused:5")

    def test_token_policy_asks_for_no_certificate(self):
        ok(self.b, "createTenant", tenant="tok", hostnames=["tok.test"], policy="token")
        self.assertEqual(self.connect("anything", "tok.test", username="alice", password="alice-pw"), "accepted")
        self.assertEqual(self.connect("anything", "tok.test", username="alice", password="bad"), "refused:5")
        self.assertEqual(self.connect("anything", "tok.test"), "refused:5")
        # s_client sees no certificate request at all under this SNI.
        out = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % self.b.port, "-servername", "tok.test",
                              "-tls1_2"], input=b"", capture_output=True, timeout=20).stdout.decode()
        self.assertIn("No client certificate CA names sent", out)
        self.assertNotIn("Requested Signature Algorithms", out)

    def test_the_longest_tenant_and_host_names_hold_for_connected_and_resumed_devices(self):
        # A connection keeps its tenant's name and its SNI as long as they
        # are, not in fixed buffers: the longest of each must come through
        # whole, or the re-check after a trust change would not find the
        # device's tenant under its SNI and disconnect it.
        tenant = "t" + "x" * 63
        host = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 56 + ".test"])
        self.assertEqual((len(tenant), len(host)), (64, 253))
        ok(self.b, "createTenant", tenant=tenant, hostnames=[host], orgId="acme")
        ok(self.b, "addCA", tenant=tenant, certificate=read(pki("ca-a.pem")))
        first = mqtt_connect(self.b.port, "d:acme:sensor:a1", sni=host, cafile=self.cafile, cert=pki("dev-a1.pem"),
                             key=pki("dev-a1.key"), keep=True)
        self.assertEqual(first["result"], "accepted")
        again = mqtt_connect(self.b.port, "d:acme:meter:a2", sni=host, cafile=self.cafile, cert=pki("dev-a2.pem"),
                             key=pki("dev-a2.key"))
        self.assertEqual(again["result"], "accepted")
        resumed = mqtt_connect(self.b.port, "d:acme:meter:a2", sni=host, cafile=self.cafile, cert=pki("dev-a2.pem"),
                               key=pki("dev-a2.key"), session=again["session"], keep=True)
        self.assertEqual(resumed["result"], "accepted")
        self.assertTrue(resumed["reused"])
        try:
            # A trust change re-checks the connected devices: they stay.
            ok(self.b, "addCA", tenant=tenant, certificate=read(pki("ca-b.pem")))
            self.assertIsNone(closed_within(first["sock"], 2), "re-check disconnected a device of a long tenant name")
            self.assertIsNone(closed_within(resumed["sock"], 0.5))
            # Its host name moved away: now they go, with the whole name.
            ok(self.b, "modifyTenant", tenant=tenant, hostnames=["short.test"])
            self.assertIsNotNone(closed_within(first["sock"], 10))
            self.assertIsNotNone(closed_within(resumed["sock"], 10))
            self.b.wait_log("disconnecting 'd:acme:sensor:a1' (tenant %s): its host name no longer belongs to its tenant" % tenant)
        finally:
            for c in (first, resumed):
                c["sock"].close()

    def test_resumed_session_is_refused_after_its_ca_was_removed(self):
        ca = self.setup_acme()
        first = mqtt_connect(self.b.port, "d:acme:sensor:a1", sni="acme.test", cafile=self.cafile,
                             cert=pki("dev-a1.pem"), key=pki("dev-a1.key"))
        self.assertEqual(first["result"], "accepted")
        self.assertIsNotNone(first["session"])
        # Resumption works while nothing changed, and still checks identity.
        again = mqtt_connect(self.b.port, "d:acme:sensor:a1", sni="acme.test", cafile=self.cafile,
                             cert=pki("dev-a1.pem"), key=pki("dev-a1.key"), session=first["session"])
        self.assertEqual(again["result"], "accepted")
        self.assertTrue(again["reused"], "the session was not resumed")
        wrong = mqtt_connect(self.b.port, "d:acme:sensor:a7", sni="acme.test", cafile=self.cafile,
                             cert=pki("dev-a1.pem"), key=pki("dev-a1.key"), session=again["session"])
        self.assertEqual(wrong["result"], "refused:5")
        # A TLS 1.3 session resumes once: the one first made is spent.
        replay = mqtt_connect(self.b.port, "d:acme:sensor:a1", sni="acme.test", cafile=self.cafile,
                              cert=pki("dev-a1.pem"), key=pki("dev-a1.key"), session=first["session"])
        self.assertEqual(replay["result"], "accepted")
        self.assertFalse(replay["reused"], "a spent session was resumed")
        ok(self.b, "removeCA", tenant="acme", id=ca["id"])
        late = mqtt_connect(self.b.port, "d:acme:sensor:a1", sni="acme.test", cafile=self.cafile,
                            cert=pki("dev-a1.pem"), key=pki("dev-a1.key"), session=replay["session"])
        self.assertNotEqual(late["result"], "accepted")
        self.assertFalse(late["reused"])
        self.b.wait_log("session resumption refused")

    def test_real_clients_with_sni_from_a_hosts_file(self):
        # Devices of acme may read all of acme's topics, write only their own.
        self.setup_acme(subscribePatterns=["{org}/#"])
        hosts = hosts_file(self.work, ["acme.test", "beta.test"])

        def client(tool, host, dev, clientid, *args):
            return with_hosts(hosts, [tool, "-h", host, "-p", str(self.b.port), "--cafile", self.cafile, "--insecure",
                                      "--cert", pki(dev + ".pem"), "--key", pki(dev + ".key"), "-i", clientid] + list(args))

        sub = subprocess.Popen(client("mosquitto_sub", "acme.test", "dev-a1", "d:acme:sensor:a1",
                                      "-t", "acme/#", "-C", "1", "-v", "-W", "20"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            self.b.wait_log(" as d:acme:sensor:a1 ")
            time.sleep(0.3)
            pub = subprocess.run(client("mosquitto_pub", "acme.test", "gw-a3", "g:acme:gw:a3",
                                        "-t", "acme/gw/a3/temp", "-m", "21.5"), capture_output=True, text=True, timeout=20)
            self.assertEqual(pub.returncode, 0, pub.stderr)
            out, err = sub.communicate(timeout=20)
            self.assertEqual(out.strip(), "acme/gw/a3/temp 21.5", err)
        finally:
            if sub.poll() is None:
                sub.kill()
                sub.wait()
        wrong = subprocess.run(client("mosquitto_pub", "beta.test", "dev-a1", "d:acme:sensor:a1",
                                      "-t", "acme/sensor/a1/temp", "-m", "x"), capture_output=True, text=True, timeout=20)
        self.assertNotEqual(wrong.returncode, 0)

    def test_devices_stay_inside_their_topic_patterns(self):
        self.setup_acme(subscribePatterns=["{org}/#"])
        ok(self.b, "createTenant", tenant="beta", hostnames=["beta.test"])
        ok(self.b, "addCA", tenant="beta", certificate=read(pki("ca-b.pem")))
        hosts = hosts_file(self.work, ["acme.test", "beta.test"])

        def sub(host, dev, clientid, *topics):
            args = ["mosquitto_sub", "-h", host, "-p", str(self.b.port), "--cafile", self.cafile, "--insecure",
                    "--cert", pki(dev + ".pem"), "--key", pki(dev + ".key"), "-i", clientid, "-v", "-W", "4"]
            for t in topics:
                args += ["-t", t]
            return subprocess.Popen(with_hosts(hosts, args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

        # beta's device asks for its own topics and for all of acme's;
        # acme's device listens to acme: it must hear acme's gateway.
        spy = sub("beta.test", "dev-b1", "d:beta:sensor:b1", "beta/#", "acme/#", "#")
        friend = sub("acme.test", "dev-a1", "d:acme:sensor:a1", "acme/#")
        self.b.wait_log(" as d:beta:sensor:b1 ")
        self.b.wait_log(" as d:acme:sensor:a1 ")
        time.sleep(0.3)
        gw = mqtt_connect(self.b.port, "g:acme:gw:a3", sni="acme.test", cafile=self.cafile,
                          cert=pki("gw-a3.pem"), key=pki("gw-a3.key"), keep=True)
        self.assertEqual(gw["result"], "accepted")
        mqtt_publish(gw["sock"], "beta/sensor/b1/cmd", "intrusion")   # another tenant's topic
        mqtt_publish(gw["sock"], "acme/sensor/a1/cmd", "impostor")    # another device's topic
        mqtt_publish(gw["sock"], "acme/gw/a3/status", "mine")         # its own
        time.sleep(0.5)
        gw["sock"].close()
        spy_out, _ = spy.communicate(timeout=20)
        friend_out, _ = friend.communicate(timeout=20)
        self.assertEqual(friend_out.strip(), "acme/gw/a3/status mine")
        self.assertEqual(spy_out.strip(), "")

    # ------------------------------------------------------------------
    # Administrators

    def test_admin_certificate_works_under_any_sni(self):
        self.setup_acme()
        for host in ("localhost", "127.0.0.1"):
            resp = control(self.b, [{"command": "listTenants"}], host=host,
                           extra_args=admin_tls_args(self.work) + ["--insecure"])
            self.assertIsNotNone(resp, host)
            self.assertEqual([t["tenant"] for t in resp["responses"][0]["data"]["tenants"]], ["acme", "default"])
        for sni in ("acme.test", "unknown.test", None):
            r = mqtt_connect(self.b.port, "operator", sni=sni, cafile=self.cafile,
                             cert=os.path.join(self.work.store, "admin", "admin.pem"),
                             key=os.path.join(self.work.store, "admin", "admin.key"))
            self.assertEqual(r["result"], "accepted", sni)

    def test_admin_by_user_name(self):
        by_name = ["--cafile", self.cafile, "--insecure", "-u", "opsadmin", "-P", "ops-pw"]
        hosts = hosts_file(self.work, ["ops.test"])
        # No certificate: the default tenant's certificate policy refuses
        # the handshake. An operator by name uses a token tenant's SNI.
        self.assertIsNone(control(self.b, [{"command": "listTenants"}], extra_args=by_name, timeout=3))
        ok(self.b, "createTenant", tenant="ops", hostnames=["ops.test"], policy="token")
        resp = control(self.b, [{"command": "listTenants"}], host="ops.test", hosts=hosts, extra_args=by_name)
        self.assertIsNotNone(resp)
        self.assertIn("ops", [t["tenant"] for t in resp["responses"][0]["data"]["tenants"]])
        # The wrong password is no administrator.
        wrong = ["--cafile", self.cafile, "--insecure", "-u", "opsadmin", "-P", "nope"]
        self.assertIsNone(control(self.b, [{"command": "listTenants"}], host="ops.test", hosts=hosts,
                                  extra_args=wrong, timeout=3))

    def test_non_admins_are_denied_and_change_nothing(self):
        self.setup_acme()
        ok(self.b, "createTenant", tenant="ops", hostnames=["ops.test"], policy="token")
        hosts = hosts_file(self.work, ["ops.test"])
        digest = tree_digest(self.work.store)
        evil = json.dumps({"commands": [{"command": "deleteTenant", "tenant": "acme"}]})
        # A device of tenant acme.
        dev = mqtt_connect(self.b.port, "d:acme:sensor:a1", sni="acme.test", cafile=self.cafile,
                           cert=pki("dev-a1.pem"), key=pki("dev-a1.key"), keep=True)
        mqtt_publish(dev["sock"], "$CONTROL/certmgr/v1", evil)
        time.sleep(0.3)
        dev["sock"].close()
        # A user the password file knows, who is no administrator.
        resp = control(self.b, None, raw=evil, timeout=3, host="ops.test", hosts=hosts,
                       extra_args=["--cafile", self.cafile, "--insecure", "-u", "alice", "-P", "alice-pw"])
        self.assertIsNone(resp)
        time.sleep(0.3)
        self.assertEqual(tree_digest(self.work.store), digest)
        self.assertIn("acme", [t["tenant"] for t in ok(self.b, "listTenants")["tenants"]])

    def test_admin_users_naming_a_device_id_refuse_to_start(self):
        w = Workdir()
        try:
            b = Broker(w, plugin_opts={"admin_users": "root,d:acme:sensor:a1"})
            self.assertNotEqual(b.start(expect_running=False), 0)
            self.assertIn("looks like a device client id", b.run_log())
        finally:
            w.cleanup()

    # ------------------------------------------------------------------
    # Bad input

    def test_bad_inputs_get_clear_errors_and_change_nothing(self):
        self.setup_acme()
        digest = tree_digest(self.work.store)
        big = "x" * 70000  # the broker below allows 65536 bytes
        cases = [
            ('{"commands": [', "payload is not a JSON object"),
            ('{"commands": {}}', "'commands' must be an array"),
            ('{"commands": [{"command": "createTenant", "tenant": 7}]}', "'tenant' must be a string"),
            ('{"commands": [{"command": "createTenant", "tenant": "x", "hostnames": "a.test"}]}', "'hostnames' must be an array"),
            ('{"commands": [{"command": "createTenant", "tenant": "x", "hostnames": [1]}]}', "array of strings"),
            ('{"commands": [{"command": "createTenant", "tenant": "Bad Name"}]}', "'tenant' must be 1 to 64"),
            ('{"commands": [{"command": "createTenant", "tenant": "x", "policy": "open"}]}', "'policy' must be"),
            ('{"commands": [{"command": "createTenant", "tenant": "x", "hostnames": ["acme.test"]}]}', "already belongs to tenant 'acme'"),
            ('{"commands": [{"command": "createTenant", "tenant": "x", "orgId": "acme"}]}', "org id 'acme' already belongs"),
            ('{"commands": [{"command": "createTenant", "tenant": "acme"}]}', "already exists"),
            ('{"commands": [{"command": "createTenant", "tenant": "x", "publishPatterns": ["a/#/b"]}]}', "'#' must be the last level"),
            ('{"commands": [{"command": "frobnicate"}]}', "unknown command 'frobnicate'"),
            ('{"commands": [{"command": "getTenant", "tenant": "nope"}]}', "no tenant 'nope'"),
            ('{"commands": [{"command": "deleteTenant", "tenant": "default"}]}', "cannot be deleted"),
            ('{"commands": [{"command": "modifyTenant", "tenant": "acme"}]}', "nothing to modify"),
            ('{"commands": [{"command": "addCA", "tenant": "nope", "certificate": "x"}]}', "no tenant 'nope'"),
            (json.dumps({"commands": [{"command": "addCA", "tenant": "acme", "certificate": read(pki("two-cas.pem"))}]}), "holds 2 certificates"),
            (json.dumps({"commands": [{"command": "addCA", "tenant": "acme", "certificate": read(pki("leaf-not-ca.pem"))}]}), "not a CA certificate"),
            (json.dumps({"commands": [{"command": "addCA", "tenant": "acme", "certificate": read(pki("ca-expired.pem"))}]}), "has expired"),
            (json.dumps({"commands": [{"command": "addCA", "tenant": "acme", "certificate": read(pki("ca-no-certsign.pem"))}]}), "lacks keyCertSign"),
            (json.dumps({"commands": [{"command": "addCA", "tenant": "acme", "certificate": read(pki("ca-a.pem"))}]}), "already in tenant 'acme'"),
            (json.dumps({"commands": [{"command": "addCA", "tenant": "acme", "certificate": read(pki("ca-b.pem"))[:300]}]}), "damaged"),
            ('{"commands": [{"command": "addCA", "tenant": "acme", "certificate": "-----BEGIN CERTIFICATE-----\\ngarbage\\n-----END CERTIFICATE-----\\n"}]}', "damaged"),
            ('{"commands": [{"command": "addCA", "tenant": "acme", "certificate": "bm90IGEgY2VydA=="}]}', "not exactly one certificate"),
            ('{"commands": [{"command": "addCA", "tenant": "acme", "certificate": "%%%"}]}', "not a PEM certificate nor base64 DER"),
            ('{"commands": [{"command": "addCA", "tenant": "acme", "certificate": 5}]}', "'certificate' must be a string"),
            ('{"commands": [{"command": "getCA", "tenant": "acme", "id": "00"}]}', "no certificate '00'"),
            ('{"commands": [{"command": "getCA", "tenant": "acme", "id": "%s", "format": "xml"}]}' % ("0" * 64), "'format' must be pem or der"),
            ('{"commands": [{"command": "removeCA", "tenant": "acme", "id": "%s"}]}' % ("0" * 64), "no CA"),
            ('{"commands": [{"command": "listTenants", "correlationData": 5}]}', "'correlationData' must be a string"),
            ('{"commands": [42]}', "must be an object"),
            ('{"commands": [{"command": "addCA", "tenant": "acme", "certificate": "%s"}]}' % big, "over the limit"),
        ]
        for raw, error in cases:
            resp = control(self.b, None, raw=raw)
            self.assertIsNotNone(resp, raw[:80])
            self.assertEqual(len(resp["responses"]), 1, raw[:80])
            self.assertIn("error", resp["responses"][0], raw[:80])
            self.assertNotIn("data", resp["responses"][0], raw[:80])
            self.assertIn(error, resp["responses"][0]["error"], raw[:80])
        self.assertEqual(tree_digest(self.work.store), digest)

    def test_commands_run_in_order_with_one_response(self):
        resp = control(self.b, [
            {"command": "createTenant", "tenant": "one", "correlationData": "1"},
            {"command": "getTenant", "tenant": "one", "correlationData": "2"},
            {"command": "deleteTenant", "tenant": "one", "correlationData": "3"},
            {"command": "getTenant", "tenant": "one", "correlationData": "4"},
        ])
        r = resp["responses"]
        self.assertEqual([x["correlationData"] for x in r], ["1", "2", "3", "4"])
        self.assertEqual(r[1]["data"]["tenant"]["tenant"], "one")
        self.assertNotIn("error", r[2])
        self.assertIn("no tenant 'one'", r[3]["error"])

    def test_a_bulk_request_answers_as_its_commands_one_by_one(self):
        # Enough certificates for the request's to be parsed ahead, on a
        # thread of their own (CM_PREPARSE_MIN is 16), bad ones among
        # them: each answer is what the command gets alone, and a CA
        # parsed ahead admits its devices.
        d = self.work.file("bulk")
        os.mkdir(d)
        texts = []
        for i in range(20):
            if i % 6 == 5:
                # Bad in different ways: a wrong command's answer shows.
                texts.append("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n" if i == 11
                             else "garbage %d" % i)
                continue
            ext = (["-addext", "basicConstraints=critical,CA:FALSE"] if i == 8 else
                   ["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
            subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                            "-keyout", os.path.join(d, "ca%d.key" % i), "-out", os.path.join(d, "ca%d.pem" % i),
                            "-subj", "/CN=Bulk CA %d" % i, "-days", "30"] + ext, check=True, capture_output=True)
            texts.append(read(os.path.join(d, "ca%d.pem" % i)))
        commands = []
        for i, text in enumerate(texts):
            commands.append({"command": "createTenant", "tenant": "bulk%d" % i, "hostnames": ["bulk%d.test" % i]})
            commands.append({"command": "addCA", "tenant": "bulk%d" % i, "certificate": text})
        commands.append({"command": "trustCertificate", "tenant": "bulk0", "certificate": texts[1] + texts[2]})
        # Failing before its parse: the thread's result for it is
        # dropped as the commands pass it, and nothing of it lands.
        commands[9:9] = [{"command": "addCA", "tenant": "nosuch", "certificate": texts[0]}]
        r = control(self.b, commands, timeout=60)["responses"]
        self.assertEqual(len(r), len(commands))
        self.assertIn("no tenant 'nosuch'", r.pop(9)["error"])
        del commands[9]
        self.assertRegex(self.b.log(), r"request of '[^']*': [1-9][0-9]* of its 22 certificates parsed ahead\n")
        ids = [hashlib.sha256(ssl.PEM_cert_to_DER_cert(t)).hexdigest() if i % 6 != 5 else None
               for i, t in enumerate(texts)]
        for i, text in enumerate(texts):
            one = control(self.b, [{"command": "createTenant", "tenant": "one%d" % i},
                                   {"command": "addCA", "tenant": "one%d" % i, "certificate": text}])["responses"][1]
            self.assertEqual(r[2 * i + 1].get("error"), one.get("error"), i)
            if "error" not in one:
                self.assertEqual(r[2 * i + 1]["data"]["ca"]["id"], ids[i])
                self.assertEqual(one["data"]["ca"]["id"], ids[i])
        self.assertIn("not a CA certificate", r[2 * 8 + 1]["error"])
        self.assertEqual([i for i in range(20) if "error" in r[2 * i + 1]], [5, 8, 11, 17])
        self.assertEqual([a["id"] for a in r[-1]["data"]["added"]], ids[1:3])
        # The same request on other tenants, with a CA in the middle whose
        # CRL is downloaded first: the request waits, its thread stops,
        # and the commands after it parse their own certificates.
        http = CrlServer(os.path.dirname(pki("crl-a.pem")))
        try:
            again = [dict(c, tenant="again" + c["tenant"], **({"hostnames": ["again" + h for h in c["hostnames"]]}
                                                                if "hostnames" in c else {})) for c in commands]
            again[20:20] = [{"command": "createTenant", "tenant": "withcrl"},
                            {"command": "addCA", "tenant": "withcrl", "certificate": read(pki("ca-a.pem")),
                             "crlUrl": http.url("/files/crl-a.pem")}]
            r2 = control(self.b, again, timeout=60)["responses"]
        finally:
            http.stop()
        self.assertEqual(r2[21]["data"]["ca"]["crl"]["revoked"], 1)
        del r2[20:22]
        self.assertEqual([x.get("error") for x in r2], [x.get("error") for x in r])
        self.assertEqual([x["data"]["ca"]["id"] for x in r2 if "ca" in x.get("data", {})],
                         [x["data"]["ca"]["id"] for x in r if "ca" in x.get("data", {})])
        self.assertRegex(self.b.log(), r"of its 22 certificates parsed ahead, before it waited for a download")
        self.assertNotIn("nosuch", json.dumps(ok(self.b, "listTenants")))
        # A device of CA 3, admitted under its tenant's SNI only.
        dev = os.path.join(d, "dev")
        subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", dev + ".key", "-out", dev + ".csr", "-subj", "/CN=d:sensor:x1"],
                       check=True, capture_output=True)
        subprocess.run(["openssl", "x509", "-req", "-in", dev + ".csr", "-CA", os.path.join(d, "ca3.pem"),
                        "-CAkey", os.path.join(d, "ca3.key"), "-CAcreateserial", "-days", "30", "-out", dev + ".pem"],
                       check=True, capture_output=True)
        os.chmod(dev + ".key", 0o644)
        self.assertEqual(self.connect("d:bulk3:sensor:x1", sni="bulk3.test", cert=dev + ".pem", key=dev + ".key"),
                         "accepted")
        self.assertNotEqual(self.connect("d:bulk3:sensor:x1", sni="bulk4.test", cert=dev + ".pem", key=dev + ".key"),
                            "accepted")

    def test_ca_details_in_pem_and_der(self):
        ca = self.setup_acme()
        self.assertEqual(ca["subject"], "CN=Test CA A")
        self.assertEqual(ca["keyType"], "ec")
        self.assertEqual(ca["curve"], "P-256")
        self.assertEqual(len(ca["sha1"]), 40)
        self.assertTrue(ca["isCA"])
        pem = ok(self.b, "getCA", tenant="acme", id=ca["id"])["ca"]
        self.assertEqual(pem["certificate"].strip(), read(pki("ca-a.pem")).strip())
        der = ok(self.b, "getCA", tenant="acme", id=ca["id"], format="der")["ca"]
        import base64
        import hashlib
        self.assertEqual(hashlib.sha256(base64.b64decode(der["certificate"])).hexdigest(), ca["id"])
        # A CA given as base64 DER is accepted too.
        ok(self.b, "createTenant", tenant="dertest")
        added = ok(self.b, "addCA", tenant="dertest", certificate=der["certificate"])["ca"]
        self.assertEqual(added["id"], ca["id"])
        listed = ok(self.b, "listCAs", tenant="acme")["cas"]
        self.assertEqual([(c["id"], c["description"], c["active"]) for c in listed], [(ca["id"], "A's CA", True)])

    # ------------------------------------------------------------------
    # Persistence and the CLI

    def test_state_survives_a_restart(self):
        ca = self.setup_acme(orgId="acme-org", policy="certificate")
        self.assertEqual(self.connect("d:acme-org:sensor:a1", "acme.test", "dev-a1"), "accepted")
        self.assertEqual(self.b.stop(), 0)
        self.b.start()
        t = ok(self.b, "getTenant", tenant="acme")["tenant"]
        self.assertEqual((t["orgId"], t["hostnames"], [c["id"] for c in t["cas"]]), ("acme-org", ["acme.test"], [ca["id"]]))
        self.assertEqual(self.connect("d:acme-org:sensor:a1", "acme.test", "dev-a1"), "accepted")

    def test_cli_covers_the_scenarios(self):
        rc, out, err = ctl(self.b, "createTenant", "acme", "--hostname", "acme.test", "--org", "acme")
        self.assertEqual(rc, 0, err)
        self.assertIn("Tenant:      acme", out)
        rc, out, err = ctl(self.b, "addCA", "acme", pki("ca-a.pem"), "--description", "from the CLI")
        self.assertEqual(rc, 0, err)
        ca_id = [l.split()[-1] for l in out.splitlines() if l.startswith("Id:")][0]
        self.assertEqual(self.connect("d:acme:sensor:a1", "acme.test", "dev-a1"), "accepted")
        rc, out, err = ctl(self.b, "listTenants")
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"acme\s+acme\s+certificate\s+1\s+acme.test")
        rc, out, err = ctl(self.b, "--json", "listCAs", "acme")
        self.assertEqual(json.loads(out)["data"]["cas"][0]["id"], ca_id)
        target = self.work.file("exported.pem")
        rc, out, err = ctl(self.b, "-o", target, "getCA", "acme", ca_id)
        self.assertEqual(rc, 0, err)
        self.assertEqual(read(target).strip(), read(pki("ca-a.pem")).strip())
        rc, out, err = ctl(self.b, "modifyTenant", "acme", "--policy", "certificate+token")
        self.assertEqual(rc, 0, err)
        self.assertIn("certificate+token", out)
        # Exit codes are libmosquitto's error numbers, as mosquitto_ctrl's:
        # the broker's refusal 13 (MOSQ_ERR_UNKNOWN) with its reason, an
        # unknown command 10, a bad argument 3, nothing listening 14.
        rc, out, err = ctl(self.b, "addCA", "acme", pki("leaf-not-ca.pem"))
        self.assertEqual(rc, 13)
        self.assertIn("Error: not a CA certificate", err)
        rc, out, err = ctl(self.b, "getTenant", "nope")
        self.assertEqual((rc, err.strip()), (13, "Error: no tenant 'nope'"))
        rc, out, err = ctl(self.b, "frobnicate")
        self.assertEqual(rc, 10)
        rc, out, err = ctl(self.b, "addCA", "acme", "/nonexistent.pem")
        self.assertEqual(rc, 3)
        rc, out, err = ctl(self.b, "removeCA", "acme", ca_id)
        self.assertEqual(rc, 0, err)
        rc, out, err = ctl(self.b, "deleteTenant", "acme")
        self.assertEqual((rc, out.strip()), (0, "OK"))
        # No broker there: MOSQ_ERR_ERRNO.
        rc, out, err = ctl(self.b, "listTenants", port=free_port())
        self.assertEqual(rc, 14)



class SessionCacheTest(unittest.TestCase):
    """Resumption from certmgr's own session cache: never across tenants,
    bounded, and off with a size of 0."""

    def start(self, size=None):
        self.work = Workdir()
        self.b = Broker(self.work, plugin_opts={"session_cache_size": size} if size is not None else None)
        self.b.start()
        self.cafile = os.path.join(self.work.store, "listener", "mqtt.crt")
        ok(self.b, "createTenant", tenant="acme", hostnames=["acme.test"])
        ok(self.b, "addCA", tenant="acme", certificate=read(pki("ca-a.pem")))

    def tearDown(self):
        rc = self.b.stop()
        log = self.b.log()
        self.work.cleanup()
        self.assertEqual(rc, 0, "broker exit code\n" + log)

    def connect(self, dev, clientid, sni="acme.test", session=None, max_version=None):
        return mqtt_connect(self.b.port, clientid, sni=sni, cafile=self.cafile, cert=pki(dev + ".pem"),
                            key=pki(dev + ".key"), session=session, max_version=max_version)

    def test_a_tls12_session_resumes_until_its_tenants_trust_changes(self):
        # TLS 1.2 ends its handshake differently from 1.3 (the session is
        # cached before the handshake's end is reported): the handshake
        # record, freed at that end, must still have been there for it.
        self.start()
        v12 = ssl.TLSVersion.TLSv1_2
        held = mqtt_connect(self.b.port, "d:acme:meter:a2", sni="acme.test", cafile=self.cafile, cert=pki("dev-a2.pem"),
                            key=pki("dev-a2.key"), max_version=v12, keep=True)
        self.assertEqual(held["result"], "accepted")
        self.assertEqual(held["sock"].version(), "TLSv1.2")
        held["sock"].close()
        first = self.connect("dev-a1", "d:acme:sensor:a1", max_version=v12)
        self.assertEqual(first["result"], "accepted")
        for _ in range(2):
            again = self.connect("dev-a1", "d:acme:sensor:a1", session=first["session"], max_version=v12)
            self.assertEqual(again["result"], "accepted")
            self.assertTrue(again["reused"], "a TLS 1.2 session was not resumed")
        ok(self.b, "addCA", tenant="acme", certificate=read(pki("ca-b.pem")))
        after = self.connect("dev-a1", "d:acme:sensor:a1", session=first["session"], max_version=v12)
        self.assertEqual(after["result"], "accepted")
        self.assertFalse(after["reused"], "a TLS 1.2 session outlived its tenant's trust change")
        self.b.wait_log("session resumption refused (made for tenant acme generation")

    def test_a_session_is_not_resumed_under_another_tenant(self):
        self.start()
        # beta trusts the same CA: only the session's tenant tells them apart.
        ok(self.b, "createTenant", tenant="beta", hostnames=["beta.test"])
        ok(self.b, "addCA", tenant="beta", certificate=read(pki("ca-a.pem")))
        first = self.connect("dev-a1", "d:acme:sensor:a1")
        self.assertEqual(first["result"], "accepted")
        other = self.connect("dev-a1", "d:beta:sensor:a1", sni="beta.test", session=first["session"])
        self.assertFalse(other["reused"], "a session of acme was resumed under beta's SNI")
        self.b.wait_log("session resumption refused (made for tenant acme")

    def test_the_oldest_session_makes_room(self):
        self.start("1")
        a1 = self.connect("dev-a1", "d:acme:sensor:a1")
        a2 = self.connect("dev-a2", "d:acme:meter:a2")
        # a2's session pushed a1's out (and its resumption's next takes
        # the one place).
        self.assertTrue(self.connect("dev-a2", "d:acme:meter:a2", session=a2["session"])["reused"])
        self.assertFalse(self.connect("dev-a1", "d:acme:sensor:a1", session=a1["session"])["reused"])

    def test_one_session_is_kept_a_certificate(self):
        self.start()
        # Full handshakes of one device: each new session replaces the one
        # before, so a flood of them keeps one.
        sessions = [self.connect("dev-a1", "d:acme:sensor:a1")["session"] for _ in range(3)]
        self.assertFalse(self.connect("dev-a1", "d:acme:sensor:a1", session=sessions[0])["reused"])
        last = self.connect("dev-a1", "d:acme:sensor:a1")
        self.assertTrue(self.connect("dev-a1", "d:acme:sensor:a1", session=last["session"])["reused"])

    def test_a_size_of_zero_resumes_nothing(self):
        self.start("0")
        first = self.connect("dev-a1", "d:acme:sensor:a1")
        again = self.connect("dev-a1", "d:acme:sensor:a1", session=first["session"])
        self.assertEqual(again["result"], "accepted")
        self.assertFalse(again["reused"])

if __name__ == "__main__":
    unittest.main()
