"""Revocation, part 2: CRLs kept fresh, the stale policies, revoked
devices disconnected, large CRLs swapped in without stalling the broker:
real broker, real loopback HTTP server."""

import base64
import json
import os
import shutil
import subprocess
import threading
import time
import unittest

from crlserver import CrlServer
from harness import (Broker, Workdir, control, crl_topic, ctl, ok, pki, read, mqtt_connect, mqtt_messages, mqtt_publish,
                     mqtt_subscribe, test_pki)
from harness import CrlSender, closed_within

BIG_CRL = os.environ.get("CERTMGR_MAKE_BIG_CRL")


def serial_of(path):
    out = subprocess.run(["openssl", "x509", "-in", path, "-noout", "-serial"], capture_output=True, text=True, check=True)
    return out.stdout.strip().split("=")[1]


class Base(unittest.TestCase):
    interval = "3600"

    def setUp(self):
        self.work = Workdir()
        self.files = self.work.file("crls")
        os.mkdir(self.files)
        for name in ("crl-a.pem", "crl-a-empty.pem"):
            shutil.copy(pki(name), self.files)
        self.live = os.path.join(self.files, "live.pem")
        shutil.copy(pki("crl-a-empty.pem"), self.live)
        self.http = CrlServer(self.files)
        self.b = Broker(self.work, plugin_opts={"crl_refresh_interval": self.interval, "crl_retry_min": "1",
                                                "crl_retry_max": "8", "crl_timeout": "3"})
        self.b.start()
        self.cafile = os.path.join(self.work.store, "listener", "mqtt.crt")
        ok(self.b, "createTenant", tenant="acme", hostnames=["acme.test"])
        self.socks = []

    def tearDown(self):
        for s in self.socks:
            s.close()
        rc = self.b.stop()
        self.http.stop()
        log = self.b.log()
        self.work.cleanup()
        self.assertEqual(rc, 0, "broker exit code\n" + log)
        self.assertNotIn("AddressSanitizer", log)

    def add_ca(self, url="/files/live.pem"):
        return ok(self.b, "addCA", tenant="acme", certificate=read(pki("ca-a.pem")), crlUrl=self.http.url(url))["ca"]["id"]

    def attach(self, dev, clientid):
        r = mqtt_connect(self.b.port, clientid, sni="acme.test", cafile=self.cafile,
                         cert=pki(dev + ".pem"), key=pki(dev + ".key"), keep=True)
        self.assertEqual(r["result"], "accepted")
        self.socks.append(r["sock"])
        return r["sock"]

    def accepted(self, dev, clientid):
        return mqtt_connect(self.b.port, clientid, sni="acme.test", cafile=self.cafile,
                            cert=pki(dev + ".pem"), key=pki(dev + ".key"))["result"] == "accepted"

    def short_crl(self, seconds, revoke=None):
        """A CRL by ca-a whose nextUpdate is `seconds` from now."""
        d = test_pki()
        cnf = self.work.file("short.cnf")
        idx, num = self.work.file("idx"), self.work.file("num")
        with open(cnf, "w") as f:
            f.write("[ ca ]\ndefault_ca = c\n[ c ]\ndatabase = %s\ncrlnumber = %s\ndefault_md = sha256\n" % (idx, num))
        open(idx, "w").close()
        with open(num, "w") as f:
            f.write("01\n")
        if revoke:
            subprocess.run(["openssl", "ca", "-batch", "-config", cnf, "-cert", "ca-a.pem", "-keyfile", "ca-a.key",
                            "-revoke", revoke], check=True, capture_output=True, cwd=d)
        subprocess.run(["openssl", "ca", "-batch", "-config", cnf, "-cert", "ca-a.pem", "-keyfile", "ca-a.key", "-gencrl",
                        "-crlsec", str(seconds), "-out", self.live], check=True, capture_output=True, cwd=d)



class RefreshTest(Base):
    def test_refresh_crl_disconnects_a_device_revoked_since_it_connected(self):
        ca = self.add_ca()
        sock = self.attach("dev-a2", "d:acme:meter:a2")
        bystander = self.attach("dev-a1", "d:acme:sensor:a1")
        shutil.copy(pki("crl-a.pem"), self.live)
        r = ok(self.b, "refreshCRL", tenant="acme", id=ca)
        self.assertEqual(r["revoked"], 1)
        self.assertTrue(closed_within(sock, 3))
        self.assertFalse(closed_within(bystander, 0.5))
        self.b.wait_log("disconnecting 'd:acme:meter:a2' (tenant acme): certificate 'meter two' is revoked")
        self.assertFalse(self.accepted("dev-a2", "d:acme:meter:a2"))

    def test_refresh_failures_back_off_and_keep_the_last_good_crl(self):
        ca = self.add_ca()
        os.unlink(self.live)
        r = control(self.b, [{"command": "refreshCRL", "tenant": "acme", "id": ca}])["responses"][0]
        self.assertIn("404", r["error"])
        time.sleep(4.5)
        crl = ok(self.b, "getCA", tenant="acme", id=ca)["ca"]["crl"]
        self.assertGreaterEqual(crl["failures"], 2)
        self.assertIn("404", crl["lastError"])
        self.assertIn("nextAttempt", crl)
        self.assertEqual(crl["source"], "url")   # the last good CRL stays
        self.assertIn("thisUpdate", crl)
        # The attempts thin out: 1 s, 2 s, 4 s (plus jitter) apart.
        hits = self.http.hits.get("/files/live.pem", 0)
        self.assertLessEqual(hits, 5)
        health = ok(self.b, "getStatus")["status"]["crls"]
        self.assertEqual([(h["id"], h["stale"]) for h in health], [(ca, False)])
        self.assertGreaterEqual(health[0]["failures"], 2)
        self.assertTrue(self.accepted("dev-a1", "d:acme:sensor:a1"))

    def test_fail_closed_refuses_and_disconnects_on_a_stale_crl(self):
        self.short_crl(3)
        ca = self.add_ca()
        sock = self.attach("dev-a1", "d:acme:sensor:a1")
        os.unlink(self.live)  # no fresh CRL to be had
        self.assertTrue(closed_within(sock, 8), "not disconnected when the CRL went stale")
        self.b.wait_log("is past its nextUpdate: its devices are refused (fail-closed)")
        self.assertFalse(self.accepted("dev-a1", "d:acme:sensor:a1"))
        self.assertTrue(ok(self.b, "getStatus")["status"]["crls"][0]["stale"])
        # fail-open: accepted again, with a warning at each attempt.
        ok(self.b, "modifyCA", tenant="acme", id=ca, stalePolicy="fail-open")
        self.assertTrue(self.accepted("dev-a1", "d:acme:sensor:a1"))
        self.b.wait_log("on a CRL past its nextUpdate (fail-open)", timeout=15)

    def test_a_restart_without_the_server_still_refuses_revoked_devices(self):
        shutil.copy(pki("crl-a.pem"), self.live)
        self.add_ca()
        self.http.stop()
        self.assertEqual(self.b.stop(), 0)
        self.b.start()
        self.assertFalse(self.accepted("dev-a2", "d:acme:meter:a2"))
        self.assertTrue(self.accepted("dev-a1", "d:acme:sensor:a1"))
        self.http = CrlServer(self.files)

    @unittest.skipUnless(BIG_CRL, "make_big_crl not built")
    def test_a_million_entry_crl_is_swapped_in_while_devices_connect(self):
        ca = self.add_ca()
        big = os.path.join(self.files, "big.der")
        subprocess.run([BIG_CRL, pki("ca-a.pem"), pki("ca-a.key"), "1000000", big, serial_of(pki("dev-a2.pem"))], check=True)
        ok(self.b, "modifyCA", tenant="acme", id=ca, crlUrl=self.http.url("/files/live.pem"))
        shutil.copy(big, self.live)
        results = []
        stop = threading.Event()

        def connect_loop():
            while not stop.is_set():
                results.append(self.accepted("dev-a1", "d:acme:sensor:a1"))

        t = threading.Thread(target=connect_loop)
        t.start()
        try:
            started = time.time()
            r = ok(self.b, "refreshCRL", tenant="acme", id=ca)
            took = time.time() - started
        finally:
            stop.set()
            t.join()
        self.assertEqual(r["revoked"], 1000001)
        self.assertTrue(results and all(results), "a good device was refused during the swap")
        self.assertFalse(self.accepted("dev-a2", "d:acme:meter:a2"))
        print("\n1,000,001-entry CRL fetched, verified, indexed and swapped in %.2f s; %d connections meanwhile" % (took, len(results)))


class LargeCrlBase(Base):
    def big_crl(self, name, count, issuer="ca-a"):
        path = os.path.join(self.files, name)
        subprocess.run([BIG_CRL, pki(issuer + ".pem"), pki(issuer + ".key"), str(count), path,
                        serial_of(pki("dev-a2.pem"))], check=True)
        self.assertGreater(os.path.getsize(path), 512 * 1024)
        return path

    def crl_files(self):
        d = os.path.join(self.work.store, "tenants", "acme", "crls")
        return sorted(os.listdir(d)) if os.path.isdir(d) else []

    def named_crl_files(self):
        with open(os.path.join(self.work.store, "tenants", "acme", "tenant.json")) as f:
            cas = json.load(f)["cas"]
        return sorted(c["crl"]["file"] for c in cas if c.get("crl", {}).get("file"))


@unittest.skipUnless(BIG_CRL, "make_big_crl not built")
class LargeCrlTest(LargeCrlBase):
    """CRLs over 512 KiB that addCA, modifyCA and uploadCRL bring in are
    verified, indexed and written on the worker thread, as refreshes are."""

    def test_add_ca_checks_a_large_crl_on_the_worker(self):
        self.big_crl("big.der", 30000)
        r = ok(self.b, "addCA", tenant="acme", certificate=read(pki("ca-a.pem")), crlUrl=self.http.url("/files/big.der"))
        self.assertEqual(r["ca"]["crl"]["revoked"], 30001)
        self.b.wait_log("was checked on the worker thread in")
        self.assertIn("accepted", [l for l in self.b.log().splitlines() if "checked on the worker thread" in l][-1])
        self.assertFalse(self.accepted("dev-a2", "d:acme:meter:a2"))
        self.assertTrue(self.accepted("dev-a1", "d:acme:sensor:a1"))
        # Written by the worker under a name of its own, and named.
        self.assertEqual(len(self.crl_files()), 1)
        self.assertEqual(self.crl_files(), self.named_crl_files())
        self.assertEqual(self.b.stop(), 0)
        self.b.start()
        self.assertFalse(self.accepted("dev-a2", "d:acme:meter:a2"))
        self.assertTrue(self.accepted("dev-a1", "d:acme:sensor:a1"))

    def test_a_large_crl_of_another_ca_is_refused_and_leaves_nothing(self):
        self.big_crl("other.der", 30000, issuer="ca-b")
        r = control(self.b, [{"command": "addCA", "tenant": "acme", "certificate": read(pki("ca-a.pem")),
                              "crlUrl": self.http.url("/files/other.der")}])["responses"][0]
        self.assertIn("is refused: the CRL is not signed by the CA it is for", r["error"])
        self.assertEqual(ok(self.b, "listCAs", tenant="acme")["cas"], [])
        self.assertEqual(self.crl_files(), [])
        self.assertIn("not signed by the CA", [l for l in self.b.log().splitlines() if "checked on the worker thread" in l][-1])

    def test_modify_ca_and_upload_crl_check_large_crls_on_the_worker(self):
        ca = self.add_ca()
        self.big_crl("big.der", 30000)
        r = ok(self.b, "modifyCA", tenant="acme", id=ca, crlUrl=self.http.url("/files/big.der"))
        self.assertEqual(r["ca"]["crl"]["revoked"], 30001)
        self.assertFalse(self.accepted("dev-a2", "d:acme:meter:a2"))
        first = self.crl_files()
        self.assertEqual(len(first), 1)
        self.assertEqual(first, self.named_crl_files())

        # An upload of another large CRL: found among the tenant's CAs,
        # checked and written on the worker; it replaces the first file.
        with open(self.big_crl("upload.der", 25000), "rb") as f:
            der = base64.b64encode(f.read()).decode()
        r = ok(self.b, "uploadCRL", tenant="acme", crl=der)
        self.assertEqual((r["id"], r["revoked"]), (ca, 25001))
        self.assertEqual(len([l for l in self.b.log().splitlines() if "checked on the worker thread" in l]), 2)
        files = self.crl_files()
        self.assertEqual(len(files), 1)
        self.assertNotEqual(files, first)
        self.assertEqual(files, self.named_crl_files())
        self.assertFalse(self.accepted("dev-a2", "d:acme:meter:a2"))

        # One no CA of the tenant issued: refused, nothing changes.
        with open(self.big_crl("foreign.der", 25000, issuer="ca-b"), "rb") as f:
            der = base64.b64encode(f.read()).decode()
        r = control(self.b, [{"command": "uploadCRL", "tenant": "acme", "crl": der}])["responses"][0]
        self.assertIn("this CRL was not issued by any CA of tenant 'acme'", r["error"])
        self.assertEqual(self.crl_files(), files)
        self.assertEqual(ok(self.b, "getCA", tenant="acme", id=ca)["ca"]["crl"]["revoked"], 25001)

        # Large, and not base64 at all (decoded on the worker): refused.
        r = control(self.b, [{"command": "uploadCRL", "tenant": "acme", "crl": "!" * 700000}])["responses"][0]
        self.assertIn("'crl' is neither PEM nor base64 DER", r["error"])
        self.assertEqual(self.crl_files(), files)
        self.assertEqual(ok(self.b, "getCA", tenant="acme", id=ca)["ca"]["crl"]["revoked"], 25001)


@unittest.skipUnless(BIG_CRL, "make_big_crl not built")
class CrlTopicTest(LargeCrlBase):
    """$CONTROL/certmgr/v1/crl takes a CRL as it is, DER or PEM: no
    base64, no JSON string for the broker thread to parse."""

    def test_a_large_der_crl_goes_as_it_is_to_the_worker(self):
        ca = self.add_ca()
        with open(self.big_crl("topic.der", 30000), "rb") as f:
            der = f.read()
        r = crl_topic(self.b, der, corr="c-1")["responses"][0]
        self.assertEqual(r["command"], "uploadCRL")
        self.assertEqual(r.get("correlationData"), "c-1")
        self.assertEqual((r["data"]["id"], r["data"]["revoked"]), (ca, 30001), r)
        self.assertIn("was checked on the worker thread", self.b.log())
        self.assertFalse(self.accepted("dev-a2", "d:acme:meter:a2"))
        self.assertTrue(self.accepted("dev-a1", "d:acme:sensor:a1"))
        self.assertEqual(self.crl_files(), self.named_crl_files())
        self.b.wait_log("| uploadCRL | tenant=acme id=%s" % ca)

    def test_a_small_pem_crl_is_taken_too(self):
        ca = self.add_ca()
        r = crl_topic(self.b, open(pki("crl-a.pem"), "rb").read())["responses"][0]
        self.assertEqual(r["data"]["id"], ca, r)
        self.assertFalse(self.accepted("dev-a2", "d:acme:meter:a2"))

    def test_bad_requests_are_refused_and_change_nothing(self):
        ca = self.add_ca()
        def crl_state():
            # What a CRL install changes; not the refresh's schedule, which
            # the tick may set meanwhile.
            c = ok(self.b, "getCA", tenant="acme", id=ca)["ca"]["crl"]
            return {k: c.get(k) for k in ("source", "revoked", "thisUpdate", "nextUpdate")}

        before = crl_state()
        crl = open(pki("crl-a.pem"), "rb").read()
        r = crl_topic(self.b, crl, tenant=None)["responses"][0]
        self.assertIn("needs the MQTT v5 user property 'tenant'", r["error"])
        r = crl_topic(self.b, crl, tenant="nobody")["responses"][0]
        self.assertIn("no tenant 'nobody'", r["error"])
        r = crl_topic(self.b, b"")["responses"][0]
        self.assertIn("a CRL of 0 bytes: it must have 1 to", r["error"])
        r = crl_topic(self.b, b"\x30\x03\x02\x01\x00" * 10)["responses"][0]
        self.assertIn("was not issued by any CA of tenant 'acme' (or is not a CRL)", r["error"])
        with open(self.big_crl("foreign.der", 25000, issuer="ca-b"), "rb") as f:
            r = crl_topic(self.b, f.read())["responses"][0]
        self.assertIn("was not issued by any CA of tenant 'acme'", r["error"])
        self.assertEqual(crl_state(), before)
        self.assertTrue(self.accepted("dev-a2", "d:acme:meter:a2"))

    def test_the_cli_sends_a_crl_file_as_it_is(self):
        ca = self.add_ca()
        # Over the 4 MiB that a JSON field of the tool took before.
        big = self.big_crl("cli.der", 250000)
        self.assertGreater(os.path.getsize(big), 4 * 1024 * 1024)
        rc, out, err = ctl(self.b, "--json", "uploadCRL", "acme", big)
        self.assertEqual(rc, 0, err)
        got = json.loads(out)
        self.assertEqual(got.get("data", got)["revoked"], 250001, out)
        self.assertFalse(self.accepted("dev-a2", "d:acme:meter:a2"))
        rc, out, err = ctl(self.b, "uploadCRL", "nobody", big)
        self.assertNotEqual(rc, 0)
        self.assertIn("no tenant 'nobody'", err + out)

    def test_a_device_cannot_use_the_crl_topic(self):
        ca = self.add_ca()
        sock = self.attach("dev-a1", "d:acme:sensor:a1")
        mqtt_subscribe(sock, "$CONTROL/certmgr/v1/response")
        mqtt_publish(sock, "$CONTROL/certmgr/v1/crl", read(pki("crl-a.pem")))
        self.assertEqual(mqtt_messages(sock, 3, first_only=True), [])
        self.assertEqual(ok(self.b, "getCA", tenant="acme", id=ca)["ca"]["crl"]["revoked"], 0)
        self.assertTrue(self.accepted("dev-a2", "d:acme:meter:a2"))


@unittest.skipUnless(BIG_CRL, "make_big_crl not built")
class CrlPartsTest(LargeCrlBase):
    """A CRL in parts on the CRL topic: the broker reads one part a loop
    turn, so a CRL of tens of megabytes holds it no longer than a part
    does. Nothing is installed until the whole CRL came and passed the
    checks; an upload belongs to the connection that began it."""

    def setUp(self):
        super().setUp()
        self.ca = self.add_ca()
        with open(self.big_crl("parts.der", 30000), "rb") as f:
            self.der = f.read()
        self.senders = []

    def tearDown(self):
        for c in self.senders:
            c.close()
        super().tearDown()

    def sender(self, name, **kw):
        c = CrlSender(self.b, name, **kw)
        self.senders.append(c)
        return c

    def revoked(self):
        return ok(self.b, "getCA", tenant="acme", id=self.ca)["ca"]["crl"]["revoked"]

    def assert_nothing_installed(self):
        self.assertEqual(self.revoked(), 0)
        self.assertTrue(self.accepted("dev-a2", "d:acme:meter:a2"))

    def test_a_crl_in_parts_is_installed_when_the_last_part_came(self):
        c = self.sender("parts-1")
        part = len(self.der) // 4 + 1
        for off in range(0, len(self.der) - part, part):
            c.send(self.der[off:off + part], tenant="acme", upload="u1", offset=off, size=len(self.der))
        # Every part but the last: no answer, nothing installed.
        self.assertEqual(c.responses(1), [])
        self.assertEqual(self.revoked(), 0)
        off += part
        c.send(self.der[off:], tenant="acme", upload="u1", offset=off, size=len(self.der), correlationData="p-1")
        r = c.responses()
        self.assertEqual(len(r), 1, r)
        r = r[0]["responses"][0]
        self.assertEqual((r.get("correlationData"), r["data"]["id"], r["data"]["revoked"]), ("p-1", self.ca, 30001), r)
        self.assertFalse(self.accepted("dev-a2", "d:acme:meter:a2"))
        self.assertTrue(self.accepted("dev-a1", "d:acme:sensor:a1"))
        self.b.wait_log("| uploadCRL | tenant=acme id=%s" % self.ca)

    def refused(self, c, needle, **props):
        r = c.responses()
        self.assertEqual(len(r), 1, r)
        self.assertIn(needle, r[0]["responses"][0].get("error", ""), r)

    def test_parts_out_of_order_overrunning_or_changing_are_refused(self):
        n = len(self.der)
        half = n // 2
        cases = [
            # (second part's offset, its payload, its tenant, its size, the error)
            (half + 10, self.der[half:], "acme", n, "parts come in order"),
            (0, self.der[:half], "acme", n, "parts come in order"),
            (half, self.der[half:] + b"x", "acme", n, "overruns its size"),
            (half, self.der[half:], "acme", n + 1, "a part may not change them"),
            (half, self.der[half:], "other", n, "a part may not change them"),
        ]
        ok(self.b, "createTenant", tenant="other", hostnames=["other.test"])
        for i, (off, data, tenant, size, needle) in enumerate(cases):
            with self.subTest(case=needle, i=i):
                c = self.sender("order-%d" % i)
                c.send(self.der[:half], tenant="acme", upload="u", offset=0, size=n)
                c.send(data, tenant=tenant, upload="u", offset=off, size=size)
                self.refused(c, needle)
                # The upload is gone: its right next part is refused too.
                c.send(self.der[half:], tenant="acme", upload="u", offset=half, size=n)
                self.refused(c, "no upload 'u' in progress on this connection")
        self.assert_nothing_installed()

    def test_bad_numbers_and_sizes_are_refused(self):
        c = self.sender("numbers")
        for props, needle in [
                ({"offset": "0"}, "needs the user properties 'offset' and 'size'"),
                ({"offset": "-1", "size": "10"}, "'offset' must be a count"),
                ({"offset": "0", "size": "1e3"}, "'size' must be a count"),
                ({"offset": "0", "size": "18446744073709551617"}, "'size' must be a count"),
                ({"offset": "0", "size": "0"}, "'size' must be a count"),
                ({"offset": "0", "size": str(10 ** 12)}, "(plugin_opt_crl_max_size)"),
                ({"offset": "20", "size": "10"}, "'offset' must be a count"),
                ({"offset": "0", "size": "10", "upload": "x" * 65}, "'upload' must have 1 to 64"),
                ({"offset": "0", "size": "10", "upload": ""}, "'upload' must have 1 to 64")]:
            with self.subTest(props=props):
                c.send(self.der[:10], **dict({"tenant": "acme", "upload": "n"}, **props))
                self.refused(c, needle)
        self.assert_nothing_installed()

    def test_another_connection_cannot_complete_an_upload(self):
        n, half = len(self.der), len(self.der) // 2
        a = self.sender("owner")
        a.send(self.der[:half], tenant="acme", upload="u-stolen", offset=0, size=n)
        # Another administrator's connection, with the same upload id.
        b = self.sender("thief")
        b.send(self.der[half:], tenant="acme", upload="u-stolen", offset=half, size=n)
        self.refused(b, "no upload 'u-stolen' in progress on this connection")
        self.assertEqual(a.responses(1), [])
        self.assertEqual(self.revoked(), 0)
        # The owner's upload is intact and completes.
        a.send(self.der[half:], tenant="acme", upload="u-stolen", offset=half, size=n)
        self.assertEqual(a.responses()[0]["responses"][0]["data"]["revoked"], 30001)

    def test_uploads_in_progress_are_bounded_and_a_new_one_replaces_the_old(self):
        n, half = len(self.der), len(self.der) // 2
        senders = [self.sender("bound-%d" % i) for i in range(5)]
        for i, c in enumerate(senders[:4]):
            c.send(self.der[:half], tenant="acme", upload="b%d" % i, offset=0, size=n)
        senders[4].send(self.der[:half], tenant="acme", upload="b4", offset=0, size=n)
        self.refused(senders[4], "4 CRL uploads are in progress already")
        # One connection starting again from offset 0 replaces its own
        # upload: still four, and the old id is gone.
        senders[0].send(self.der[:half], tenant="acme", upload="b0-again", offset=0, size=n)
        senders[0].send(self.der[half:], tenant="acme", upload="b0", offset=half, size=n)
        self.refused(senders[0], "no upload 'b0' in progress on this connection")
        # That refusal dropped b0-again; room for the fifth now.
        senders[4].send(self.der[:half], tenant="acme", upload="b4", offset=0, size=n)
        senders[4].send(self.der[half:], tenant="acme", upload="b4", offset=half, size=n)
        self.assertEqual(senders[4].responses()[0]["responses"][0]["data"]["revoked"], 30001)

    def test_an_upload_dies_with_its_connection(self):
        n, half = len(self.der), len(self.der) // 2
        a = self.sender("leaver")
        a.send(self.der[:half], tenant="acme", upload="u-left", offset=0, size=n)
        a.close()
        self.senders.remove(a)
        self.b.wait_log("dropped the CRL upload 'u-left' for tenant acme: its client left")
        # The same client id again: a new connection, without the upload.
        a = self.sender("leaver")
        a.send(self.der[half:], tenant="acme", upload="u-left", offset=half, size=n)
        self.refused(a, "no upload 'u-left' in progress on this connection")
        self.assert_nothing_installed()


class TimedRefreshTest(Base):
    interval = "2"

    def test_timed_refresh_disconnects_a_device_revoked_since_it_connected(self):
        self.add_ca()
        sock = self.attach("dev-a2", "d:acme:meter:a2")
        shutil.copy(pki("crl-a.pem"), self.live)
        self.assertTrue(closed_within(sock, 8), "not disconnected by the timed refresh")
        self.b.wait_log("certmgr | refreshCRL | tenant=acme")


if __name__ == "__main__":
    unittest.main()
