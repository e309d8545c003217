"""Proof, part 2: the broker killed in the middle of control commands, a
full disk under the store, hostile clients and CRL servers, and who may
send which control command. Real brokers, real clients."""

import hashlib
import json
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
import unittest

from crlserver import CrlServer
from harness import cert_id
from harness import (Broker, Workdir, control, ok, pki, read, mqtt_connect, mqtt_publish, mqtt_subscribe,
                     mqtt_messages, tree_digest, test_pki, free_port, broker_uid_gid, SANITIZE, VALGRIND)

CONTROL = "$CONTROL/certmgr/v1"
RESPONSE = CONTROL + "/response"


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def store_digest(store, skip=("rejected.json",)):
    """Every name, mode and content hash below the store, without the
    files named in skip (the rejected list is an observation log, meant to
    change): a list, so that a failed comparison shows what differs."""
    out = []
    for root, dirs, files in os.walk(store):
        for name in dirs + files:
            if name in skip:
                continue
            p = os.path.join(root, name)
            content = ""
            if os.path.isfile(p):
                with open(p, "rb") as f:
                    content = hashlib.sha256(f.read()).hexdigest()[:16]
            out.append((os.path.relpath(p, store), oct(os.lstat(p).st_mode), content))
    return sorted(out)


class Session:
    """One MQTT connection that sends control requests and reads their
    answers, by hand (tests/integration/harness.py's raw client)."""

    def __init__(self, port, clientid, host="127.0.0.1", **kw):
        r = mqtt_connect(port, clientid, host=host, keep=True, **kw)
        self.result = r["result"]
        self.sock = r["sock"]
        self.suback = None
        if self.sock:
            self.suback = mqtt_subscribe(self.sock, RESPONSE)

    def send(self, payload):
        mqtt_publish(self.sock, CONTROL, payload if isinstance(payload, str) else json.dumps(payload))

    def request(self, commands, timeout=10):
        """The parsed answer, or None when none came within timeout."""
        self.send({"commands": commands})
        for topic, body in mqtt_messages(self.sock, timeout, first_only=True):
            return json.loads(body)
        return None

    def ok(self, command, **fields):
        fields["command"] = command
        r = self.request([fields])
        if r is None or "error" in r["responses"][0]:
            raise AssertionError("%s: %s" % (command, r))
        return r["responses"][0].get("data", {})

    def close(self):
        if self.sock:
            try:
                self.sock.sendall(b"\xe0\x00")
            except OSError:
                pass
            self.sock.close()


def admin_session(b, host="127.0.0.1", name="admin-session"):
    s = Session(b.port, name, host=host, cert=os.path.join(b.work.store, "admin", "admin.pem"),
                key=os.path.join(b.work.store, "admin", "admin.key"))
    if s.result != "accepted":
        raise AssertionError("admin session: %s" % s.result)
    return s


class BrokerCase(unittest.TestCase):
    plugin_opts = {}
    extra = ""

    def setUp(self):
        self.work = Workdir()
        self.b = Broker(self.work, plugin_opts=self.plugin_opts, extra=self.extra)
        self.b.start()
        self.cafile = os.path.join(self.work.store, "listener", "mqtt.crt")

    def tearDown(self):
        rc = self.b.stop()
        log = self.b.log()
        self.work.cleanup()
        self.assertIn(rc, (0, None), "broker exit code\n" + log)
        self.assertNotIn("AddressSanitizer", log)
        self.assertNotIn("runtime error:", log)


# ----------------------------------------------------------------------
# SIGKILL during a burst of control commands


class CrashSafetyTest(BrokerCase):
    ROUNDS = int(os.environ.get("CERTMGR_KILL_ROUNDS", "12"))

    def ops(self, r):
        ca_a, ca_b = read(pki("ca-a.pem")), read(pki("ca-b.pem"))
        out = []
        for k in range(80):
            t = "k%dx%d" % (r, k)
            out += [("createTenant", {"tenant": t, "hostnames": [t + ".test"]}),
                    ("addCA", {"tenant": t, "certificate": ca_a}),
                    ("modifyTenant", {"tenant": t, "hostnames": [t + ".test", "alt." + t + ".test"],
                                      "policy": "certificate+token"}),
                    ("addCA", {"tenant": t, "certificate": ca_b}),
                    ("removeCA", {"tenant": t, "id": self.ca_a})]
            if k % 2:
                out.append(("deleteTenant", {"tenant": t}))
            if k % 8 == 3:
                out.append(("regenerateSelfSigned", {"slot": "bridge"}))
        return out

    def apply(self, model, op, data):
        tenants, bridge = dict(model[0]), model[1]
        name, f = op
        t = f.get("tenant")
        if name == "createTenant":
            tenants[t] = (tuple(f["hostnames"]), "certificate", frozenset())
        elif name == "addCA":
            h, p, cas = tenants[t]
            tenants[t] = (h, p, cas | {cert_id(pki("ca-a.pem") if f["certificate"] == read(pki("ca-a.pem"))
                                               else pki("ca-b.pem"))})
        elif name == "modifyTenant":
            tenants[t] = (tuple(f["hostnames"]), f["policy"], tenants[t][2])
        elif name == "removeCA":
            h, p, cas = tenants[t]
            tenants[t] = (h, p, cas - {f["id"]})
        elif name == "deleteTenant":
            del tenants[t]
        elif name == "regenerateSelfSigned":
            bridge = data["certificate"]["id"] if data else "?"
        return tenants, bridge

    def snapshot(self, s):
        names = [t["tenant"] for t in s.ok("listTenants")["tenants"]]
        r = s.request([{"command": "getTenant", "tenant": n} for n in names], timeout=30)
        tenants = {}
        for n, resp in zip(names, r["responses"]):
            d = resp["data"]["tenant"]
            tenants[n] = (tuple(d["hostnames"]), d["policy"], frozenset(c["id"] for c in d["cas"]))
        certs = s.ok("listServerCertificates", slot="bridge")["certificates"]
        defaults = [c["id"] for c in certs if c["default"]]
        self.assertEqual(len(defaults), 1, certs)
        return tenants, defaults[0]

    def burst(self, ops, log):
        try:
            s = admin_session(self.b, name="burst")
        except Exception as e:  # killed before the session was up
            log["error"] = repr(e)
            return
        try:
            for op in ops:
                log["inflight"] = op
                try:
                    r = s.request([dict(op[1], command=op[0])], timeout=30)
                except (OSError, ssl.SSLError, EOFError):
                    r = None
                if r is None:
                    return
                resp = r["responses"][0]
                if "error" in resp:
                    log["error"] = "%s: %s" % (op[0], resp["error"])
                    return
                log["answered"].append((op, resp.get("data")))
                log["inflight"] = None
        finally:
            s.sock.close()

    def test_sigkill_during_a_burst_of_commands_loses_and_halves_nothing(self):
        self.ca_a = cert_id(pki("ca-a.pem"))
        rng = random.Random(int(os.environ.get("CERTMGR_KILL_SEED", "1")))
        s = admin_session(self.b)
        model = self.snapshot(s)
        s.close()
        answered_total = kills_mid_command = 0
        for r in range(self.ROUNDS):
            log = {"answered": [], "inflight": None}
            th = threading.Thread(target=self.burst, args=(self.ops(r), log))
            th.start()
            time.sleep(rng.uniform(0.05, 1.0) * (3 if SANITIZE else 1))
            self.b.stop(sig=signal.SIGKILL)
            th.join(60)
            self.assertFalse(th.is_alive())
            self.assertNotIn("error", log, "round %d" % r)
            # The store loads (the broker refuses to start on a store it
            # cannot read), and holds every answered command, whole.
            self.b.start()
            for op, data in log["answered"]:
                model = self.apply(model, op, data)
            answered_total += len(log["answered"])
            s = admin_session(self.b)
            got = self.snapshot(s)
            s.close()
            if log["inflight"] is None:
                self.assertEqual(got, model, "round %d" % r)
            else:
                kills_mid_command += 1
                after = self.apply(model, log["inflight"], None)
                if log["inflight"][0] == "regenerateSelfSigned" and got[1] != model[1]:
                    after = (after[0], got[1])
                self.assertIn(got, (model, after), "round %d, in flight: %s" % (r, log["inflight"][0]))
                model = got
        print("\ncrash safety: %d SIGKILL rounds, %d commands answered and all found after restart, "
              "%d kills with a command in flight" % (self.ROUNDS, answered_total, kills_mid_command))
        self.assertGreater(answered_total, self.ROUNDS)


# ----------------------------------------------------------------------
# A full disk under the store


class FullDiskTest(unittest.TestCase):
    def setUp(self):
        self.work = Workdir()
        uid, gid = broker_uid_gid()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,uid=%d,gid=%d,mode=0700" % (uid, gid),
                        "certmgr-test", self.work.store], check=True)
        self.b = Broker(self.work)
        self.b.start()
        self.cafile = os.path.join(self.work.store, "listener", "mqtt.crt")
        self.filler = os.path.join(self.work.store, "filler")

    def tearDown(self):
        rc = self.b.stop()
        log = self.b.log()
        subprocess.run(["umount", self.work.store])
        self.work.cleanup()
        self.assertEqual(rc, 0, "broker exit code\n" + log)
        self.assertNotIn("AddressSanitizer", log)

    def fill(self):
        with open(self.filler, "wb", buffering=0) as f:
            for size in (65536, 4096, 1):
                try:
                    while True:
                        f.write(b"\0" * size)
                except OSError:
                    pass

    def device_served(self):
        r = mqtt_connect(self.b.port, "d:acme:sensor:a1", sni="acme.test", cafile=self.cafile,
                         cert=pki("dev-a1.pem"), key=pki("dev-a1.key"), keep=True)
        if r["result"] != "accepted":
            return r["result"]
        mqtt_publish(r["sock"], "acme/sensor/a1/t", "x")
        r["sock"].close()
        return "accepted"

    def test_commands_fail_cleanly_on_a_full_disk_and_work_again_after(self):
        ok(self.b, "createTenant", tenant="acme", hostnames=["acme.test"])
        ok(self.b, "addCA", tenant="acme", certificate=read(pki("ca-a.pem")))
        leaf_key = self.work.file("leaf.key")
        leaf = self.work.file("leaf.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", leaf_key, "-out", leaf, "-subj", "/CN=full.test", "-days", "30"],
                       check=True, capture_output=True)
        self.fill()
        before = store_digest(self.work.store, skip=("filler",))
        listed = ok(self.b, "listTenants")
        cas = ok(self.b, "listCAs", tenant="acme")
        commands = [
            {"command": "createTenant", "tenant": "beta", "hostnames": ["beta.test"]},
            {"command": "modifyTenant", "tenant": "acme", "hostnames": ["acme.test", "more.test"]},
            {"command": "addCA", "tenant": "acme", "certificate": read(pki("ca-b.pem"))},
            {"command": "uploadCRL", "tenant": "acme", "crl": read(pki("crl-a.pem"))},
            {"command": "setCAState", "tenant": "acme", "id": cert_id(pki("ca-a.pem")), "active": False},
            {"command": "removeCA", "tenant": "acme", "id": cert_id(pki("ca-a.pem"))},
            {"command": "regenerateSelfSigned", "slot": "bridge"},
            {"command": "addServerCertificate", "slot": "mqtt", "certificate": read(leaf),
             "privateKey": read(leaf_key)},
            {"command": "createCSR", "slot": "mqtt", "subject": {"CN": "full.test"}},
        ]
        for c in commands:
            r = control(self.b, [c], timeout=20)
            self.assertIsNotNone(r, c["command"])
            err = r["responses"][0].get("error", "")
            self.assertIn("No space left on device", err, c["command"])
            self.assertEqual(store_digest(self.work.store, skip=("filler",)), before, c["command"])
            self.assertEqual(ok(self.b, "listTenants"), listed, c["command"])
            self.assertEqual(ok(self.b, "listCAs", tenant="acme"), cas, c["command"])
            self.assertEqual(self.device_served(), "accepted", c["command"])
        self.assertIn("No space left on device", self.b.run_log())
        # Space again: the same commands work.
        os.unlink(self.filler)
        ok(self.b, "createTenant", tenant="beta", hostnames=["beta.test"])
        ok(self.b, "addCA", tenant="acme", certificate=read(pki("ca-b.pem")))
        self.assertEqual(self.device_served(), "accepted")
        self.b.stop()
        self.b.start()
        self.assertEqual([t["tenant"] for t in ok(self.b, "listTenants")["tenants"]], ["acme", "beta", "default"])


# ----------------------------------------------------------------------
# Hostile clients next to valid devices


class HostileClientsTest(BrokerCase):
    plugin_opts = {"rejected_max": "20", "max_payload": "65536"}
    SECONDS = float(os.environ.get("CERTMGR_HOSTILE_SECONDS", "20"))

    def make_self_signed(self, n):
        d = self.work.file("selfsigned")
        os.mkdir(d)
        out = []
        for i in range(n):
            key, pem = os.path.join(d, "%d.key" % i), os.path.join(d, "%d.pem" % i)
            subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                            "-nodes", "-keyout", key, "-out", pem, "-subj", "/CN=d:sensor:h%d" % i, "-days", "30"],
                           check=True, capture_output=True)
            out.append((pem, key))
        return out

    def test_hostile_clients_change_nothing_and_valid_devices_are_served(self):
        ok(self.b, "createTenant", tenant="acme", hostnames=["acme.test"])
        ok(self.b, "addCA", tenant="acme", certificate=read(pki("ca-a.pem")))
        ok(self.b, "uploadCRL", tenant="acme", crl=read(pki("crl-a.pem")))
        selfsigned = self.make_self_signed(40)
        digest = store_digest(self.work.store)
        tenants = ok(self.b, "listTenants")
        cas = ok(self.b, "listCAs", tenant="acme")
        pid = self.b.proc.pid
        port = self.b.port
        stop = threading.Event()
        counts = {}
        lock = threading.Lock()

        def count(kind, result):
            with lock:
                counts.setdefault(kind, {}).setdefault(result, 0)
                counts[kind][result] += 1

        def valid():
            while not stop.is_set():
                dev, cid = "dev-a1", "d:acme:sensor:a1"
                r = mqtt_connect(port, cid, sni="acme.test", cafile=self.cafile, cert=pki(dev + ".pem"),
                                 key=pki(dev + ".key"), keep=True)
                if r["result"] == "accepted":
                    try:
                        mqtt_publish(r["sock"], "acme/%s/t" % cid.split(":", 2)[2].replace(":", "/"), "v")
                        r["sock"].sendall(b"\xe0\x00")
                    except OSError:
                        r["result"] = "publish failed"
                    r["sock"].close()
                count("valid", r["result"])

        def garbage():
            rnd = random.Random(7)
            while not stop.is_set():
                with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                    kind = rnd.randrange(3)
                    try:
                        if kind == 0:
                            s.sendall(bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 2000))))
                        elif kind == 1:  # a TLS record header that promises a huge hello
                            s.sendall(b"\x16\x03\x01\xff\xff\x01\xff\xff\xff" + b"\0" * 100)
                        else:  # a client hello cut short
                            s.sendall(b"\x16\x03\x01\x00\x40\x01\x00\x00\x3c\x03\x03" + b"\x11" * 20)
                        s.settimeout(0.5)
                        s.recv(100)
                    except OSError:
                        pass
                count("garbage", "sent")

        bad = [
            ("unknown sni", dict(sni="nobody.test", cert=pki("dev-a1.pem"), key=pki("dev-a1.key")), "d:acme:sensor:a1"),
            ("expired", dict(sni="acme.test", cert=pki("dev-expired.pem"), key=pki("dev-expired.key")), "d:acme:sensor:a9"),
            ("revoked", dict(sni="acme.test", cert=pki("dev-a2.pem"), key=pki("dev-a2.key")), "d:acme:meter:a2"),
            ("other tenant's device", dict(sni="acme.test", cert=pki("dev-b1.pem"), key=pki("dev-b1.key")), "d:beta:sensor:b1"),
            ("wrong id", dict(sni="acme.test", cert=pki("dev-a1.pem"), key=pki("dev-a1.key")), "d:acme:sensor:zz"),
            ("no certificate", dict(sni="acme.test"), "d:acme:sensor:a1"),
        ]

        def hostile_tls(start):
            i = start
            while not stop.is_set():
                if i % 3 == 0:
                    pem, key = selfsigned[(i // 3) % len(selfsigned)]
                    kind, kw, cid = "self-signed", dict(sni="acme.test", cert=pem, key=key), "d:acme:sensor:a1"
                else:
                    kind, kw, cid = bad[(i - i // 3 - 1) % len(bad)]
                i += 1
                r = mqtt_connect(port, cid, cafile=self.cafile, **kw)
                count(kind, "accepted" if r["result"] == "accepted" else "refused")

        def hostile_control():
            i = 0
            admin = admin_session(self.b, name="hostile-admin")
            dev = Session(port, "g:acme:gw:a3", sni="acme.test", cafile=self.cafile,
                          cert=pki("gw-a3.pem"), key=pki("gw-a3.key"))
            while not stop.is_set():
                kind = i % 4
                i += 1
                if kind == 0:
                    admin.send("x" * 70000)
                    got = mqtt_messages(admin.sock, 5, first_only=True)
                    count("oversized control payload", "error" if got and b"over the limit" in got[0][1] else "?")
                elif kind == 1:
                    admin.send('{"commands":[{"command":"deleteTenant","tenant":"acme"' + "[" * 5000)
                    got = mqtt_messages(admin.sock, 5, first_only=True)
                    count("malformed control payload", "error" if got and b"not a JSON object" in got[0][1] else "?")
                elif kind == 2:
                    r = admin.request([{"command": "addCA", "tenant": "acme", "certificate": "-----BEGIN CERT"},
                                       {"command": "deleteTenant"}, {"command": "createTenant", "tenant": "../x"}])
                    errs = r and all("error" in x for x in r["responses"])
                    count("bad control commands", "error" if errs else "?")
                else:
                    dev.send({"commands": [{"command": "deleteTenant", "tenant": "acme"},
                                           {"command": "clearCAs", "tenant": "acme"}]})
                    time.sleep(0.05)
                    count("device's control commands", "sent")
            admin.close()
            dev.close()

        failures = []

        def guarded(f, *args):
            def run():
                try:
                    f(*args)
                except Exception as e:  # reported below
                    failures.append("%s: %r" % (f.__name__, e))
                    stop.set()
            return run

        workers = [threading.Thread(target=guarded(f, *a)) for f, a in
                   ((valid, ()), (garbage, ()), (hostile_tls, (0,)), (hostile_tls, (1,)), (hostile_control, ()))]
        for w in workers:
            w.start()
        time.sleep(min(3, self.SECONDS / 4))
        rss_start = rss_kib(pid)
        time.sleep(self.SECONDS - min(3, self.SECONDS / 4))
        stop.set()
        for w in workers:
            w.join(60)
        rss_end = rss_kib(pid)
        tried = sum(n for kind, c in counts.items() if kind != "valid" for n in c.values())
        print("\nhostile clients: %.0f s, %d hostile attempts, %d valid connections; broker RSS %d KiB after "
              "warm-up, %d KiB at the end\n%s" % (self.SECONDS, tried, sum(counts["valid"].values()), rss_start,
                                                   rss_end, json.dumps(counts, sort_keys=True)))
        self.assertEqual(failures, [])
        self.assertEqual(list(counts["valid"]), ["accepted"], counts["valid"])
        for kind in ["self-signed", "garbage", "oversized control payload", "malformed control payload",
                     "bad control commands", "device's control commands"] + [b[0] for b in bad]:
            self.assertIn(kind, counts)
        self.assertGreater(counts["valid"]["accepted"], 10)
        for kind, c in counts.items():
            if kind != "valid":
                self.assertNotIn("accepted", c, kind)
                self.assertNotIn("?", c, kind)
        # Nothing changed but the rejected list, which kept its bound.
        self.assertEqual(store_digest(self.work.store), digest)
        self.assertEqual(ok(self.b, "listTenants"), tenants)
        self.assertEqual(ok(self.b, "listCAs", tenant="acme"), cas)
        rejected = ok(self.b, "listRejected")
        self.assertLessEqual(len(rejected["rejected"]), 20)
        self.assertGreaterEqual(len(rejected["rejected"]), 10)
        if not (SANITIZE or VALGRIND):
            self.assertLess(rss_end - rss_start, 8 * 1024, "broker memory grew under hostile load")


# ----------------------------------------------------------------------
# CRL servers that misbehave


class MisbehavingCrlServerTest(BrokerCase):
    plugin_opts = {"crl_timeout": "3", "crl_connect_timeout": "2", "crl_max_size": "65536"}

    def test_no_crl_server_stalls_or_crashes_the_broker(self):
        files = self.work.file("crls")
        os.mkdir(files)
        http = CrlServer(files)
        https = CrlServer(files, certfile=pki("leaf-not-ca.pem"), keyfile=pki("leaf-not-ca.key"))
        try:
            ok(self.b, "createTenant", tenant="acme", hostnames=["acme.test"])
            digest = store_digest(self.work.store)
            cases = [
                (http.url("/drip"), "timed out"),
                (http.url("/endless"), "larger than the limit"),
                (http.url("/to-ftp"), "ftp"),
                (http.url("/to-file"), "file"),
                (https.url("/files/crl-a.pem"), "SSL"),
            ]
            results = {}

            def add(url):
                results[url] = control(self.b, [{"command": "addCA", "tenant": "acme",
                                                 "certificate": read(pki("ca-a.pem")), "crlUrl": url}], timeout=30)

            threads = [threading.Thread(target=add, args=(u,)) for u, _ in cases]
            started = time.time()
            for t in threads:
                t.start()
            time.sleep(0.5)
            # Meanwhile the broker serves: other requests, devices.
            served = 0
            while any(t.is_alive() for t in threads):
                r = mqtt_connect(self.b.port, "operator", cafile=self.cafile,
                                 cert=os.path.join(self.work.store, "admin", "admin.pem"),
                                 key=os.path.join(self.work.store, "admin", "admin.key"))
                self.assertEqual(r["result"], "accepted")
                self.assertEqual([t["tenant"] for t in ok(self.b, "listTenants")["tenants"]], ["acme", "default"])
                served += 1
            for t in threads:
                t.join()
            self.assertLess(time.time() - started, 15)
            self.assertGreater(served, 2)
            for url, error in cases:
                r = results[url]["responses"][0]
                self.assertIn(error, r.get("error", ""), url)
            self.assertEqual(store_digest(self.work.store), digest)
            self.assertEqual(ok(self.b, "listCAs", tenant="acme")["cas"], [])
        finally:
            http.stop()
            https.stop()


# ----------------------------------------------------------------------
# Who may send which control command


def non_loopback_address():
    """An address of this machine that is not loopback, or None."""
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"], capture_output=True, text=True)
    for line in out.stdout.splitlines():
        addr = line.split()[3].split("/")[0]
        if not addr.startswith("127."):
            return addr
    return None


class AuthorizationMatrixTest(unittest.TestCase):
    COMMANDS = ["createTenant", "modifyTenant", "deleteTenant", "listTenants", "getTenant",
                "addCA", "modifyCA", "uploadCRL", "refreshCRL", "removeCA", "setCAState", "clearCAs", "listCAs",
                "getCA", "exportTrustList", "trustCertificate", "untrustCertificate", "inspectCertificate",
                "trustServerCertificate", "createCSR", "listCSRs", "getCSR", "removeCSR", "installCertificate",
                "listRejected", "getRejected", "trustRejected", "clearRejected", "listServerCertificates",
                "getServerCertificate", "addServerCertificate", "setDefaultServerCertificate",
                "removeServerCertificate", "regenerateSelfSigned", "getStatus"]

    def setUp(self):
        self.work = Workdir()
        self.passwd = self.work.file("passwd")
        subprocess.run(["mosquitto_passwd", "-b", "-c", self.passwd, "alice", "alice-pw"], check=True)
        subprocess.run(["mosquitto_passwd", "-b", self.passwd, "opsadmin", "ops-pw"], check=True)
        os.chmod(self.passwd, 0o644)
        self.port = free_port()
        self.b = Broker(self.work, port=self.port, plugin_opts={"admin_users": "opsadmin"},
                        extra="password_file %s" % self.passwd,
                        listeners=["listener %d\ncertfile %s\nkeyfile %s" % (
                            self.port, os.path.join(self.work.store, "listener", "mqtt.crt"),
                            os.path.join(self.work.store, "listener", "mqtt.key"))])
        self.b.start()
        self.cafile = os.path.join(self.work.store, "listener", "mqtt.crt")
        ok(self.b, "createTenant", tenant="acme", hostnames=["acme.test"])
        ok(self.b, "addCA", tenant="acme", certificate=read(pki("ca-a.pem")))
        ok(self.b, "createTenant", tenant="ops", hostnames=["ops.test"], policy="token")

    def tearDown(self):
        rc = self.b.stop()
        log = self.b.log()
        self.work.cleanup()
        self.assertEqual(rc, 0, "broker exit code\n" + log)
        self.assertNotIn("AddressSanitizer", log)

    def identities(self):
        elsewhere = non_loopback_address()
        admin = dict(cert=os.path.join(self.work.store, "admin", "admin.pem"),
                     key=os.path.join(self.work.store, "admin", "admin.key"))
        out = [
            ("anonymous", "anon-1", dict(sni="ops.test")),
            ("device", "d:acme:sensor:a1", dict(sni="acme.test", cert=pki("dev-a1.pem"), key=pki("dev-a1.key"))),
            ("non-admin user", "alice-1", dict(sni="ops.test", username="alice", password="alice-pw")),
            ("admin user, loopback", "ops-1", dict(sni="ops.test", username="opsadmin", password="ops-pw")),
            ("admin certificate", "operator-1", admin),
        ]
        if elsewhere:
            out.insert(4, ("admin user, elsewhere", "ops-2",
                           dict(sni="ops.test", username="opsadmin", password="ops-pw", host=elsewhere)))
            out.append(("admin certificate, elsewhere", "operator-2", dict(admin, host=elsewhere)))
        return out

    def private_key_commands(self):
        key, pem = self.work.file("leaf.key"), self.work.file("leaf.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", key, "-out", pem, "-subj", "/CN=matrix.test", "-days", "30"],
                       check=True, capture_output=True)
        default = [c["id"] for c in ok(self.b, "listServerCertificates", slot="mqtt")["certificates"] if c["default"]][0]
        return [{"command": "getServerCertificate", "slot": "mqtt", "id": default, "includePrivateKey": True},
                {"command": "addServerCertificate", "slot": "bridge", "certificate": read(pem), "privateKey": read(key)}]

    def test_only_administrators_reach_the_commands_and_keys_need_an_admin_certificate(self):
        keyed = self.private_key_commands()
        matrix = {}
        for who, cid, kw in self.identities():
            host = kw.pop("host", "127.0.0.1")
            digest = tree_digest(self.work.store)
            s = Session(self.port, cid, host=host, cafile=self.cafile, **kw)
            self.assertEqual(s.result, "accepted", who)
            row = {}
            admin = who.startswith("admin")
            # Every command, without arguments: an administrator gets an
            # answer (an error about the arguments, at most); anyone else
            # gets none and changes nothing.
            for c in self.COMMANDS:
                s.send({"commands": [{"command": c, "correlationData": c}]})
            got = mqtt_messages(s.sock, 3 if not admin else 20, count=len(self.COMMANDS) if admin else None)
            answered = {}
            for topic, body in got:
                for r in json.loads(body)["responses"]:
                    answered[r["command"]] = r
            for c in self.COMMANDS:
                r = answered.get(c)
                row[c] = "none" if r is None else ("error" if "error" in r else "ok")
                if admin:
                    self.assertIsNotNone(r, (who, c))
                    self.assertNotIn("administrator", r.get("error", ""), (who, c))
                else:
                    self.assertIsNone(r, (who, c))
            if not admin:
                s.send({"commands": [{"command": "deleteTenant", "tenant": "acme"},
                                     {"command": "clearCAs", "tenant": "acme"},
                                     {"command": "regenerateSelfSigned", "slot": "mqtt"}]})
                self.assertEqual(mqtt_messages(s.sock, 1), [], who)
                self.assertEqual(tree_digest(self.work.store), digest, who)
            # Private keys: out and in only with an admin certificate, the
            # one connection certmgr knows is TLS (loopback proves nothing:
            # a local proxy connects from there).
            for c in keyed:
                r = s.request([c], timeout=10 if admin else 1)
                r = r and r["responses"][0]
                key_ok = admin and "certificate" in who
                row[c["command"] + "+key"] = "none" if r is None else ("error" if "error" in r else "ok")
                if key_ok:
                    self.assertNotIn("error", r, (who, c["command"]))
                    if c["command"] == "addServerCertificate":
                        ok(self.b, "removeServerCertificate", slot="bridge", id=r["data"]["certificate"]["id"])
                elif admin:
                    self.assertIn("private keys", r["error"], (who, c["command"]))
                else:
                    self.assertIsNone(r, (who, c["command"]))
            s.close()
            matrix[who] = row
        print("\nauthorization matrix (ok / error: answered; none: denied):")
        for who, row in matrix.items():
            summary = {}
            for v in row.values():
                summary[v] = summary.get(v, 0) + 1
            print("  %-30s %s" % (who, ", ".join("%s %d" % kv for kv in sorted(summary.items()))))
        if non_loopback_address() is None:
            self.skipTest("no non-loopback address here: the 'elsewhere' rows were not run")


if __name__ == "__main__":
    unittest.main()
