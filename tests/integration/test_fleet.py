"""The etcd back end: a three-member etcd cluster (Debian's etcd-server),
three broker nodes with the plugin and HAProxy in TCP mode routing by SNI
in front, all on loopback, started here and stopped at the end.

An SNI "n<i>.<tenant>.test" is routed by HAProxy to node i and served by
the tenant through its wildcard host name "*.<tenant>.test"."""

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest

import harness
from harness import Broker, Workdir, control, mqtt_connect, mqtt_subscribe, mqtt_messages, ok, pki, read, served_certificate
from crlserver import CrlServer
from fleet_harness import EtcdCluster, HAProxy, Node, passphrase_file
from test_refresh import BIG_CRL, serial_of
from harness import cert_id, closed_within

TOOL = os.path.join(os.environ.get("CERTMGR_BUILD_DIR", ""), "certmgr_etcd")
WAIT = 8  # seconds a node may take to converge before a test fails (the target, 1 s, is the benchmark's)


def until(fn, timeout=WAIT, step=0.05):
    """fn() once it is true, or its last value after timeout."""
    deadline = time.time() + timeout
    v = fn()
    while not v and time.time() < deadline:
        time.sleep(step)
        v = fn()
    return v


class Fleet(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        try:
            cls.start_fleet()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def start_fleet(cls):
        cls.nodes, cls.lb, cls.http = [], None, None
        cls.etcd = EtcdCluster(3)
        cls.etcd.start()
        cls.tmp = tempfile.mkdtemp(prefix="certmgr-fleet-", dir="/tmp")
        os.chmod(cls.tmp, 0o755)
        cls.passfile = passphrase_file(os.path.join(cls.tmp, "passphrase"))
        cls.crls = os.path.join(cls.tmp, "crls")
        os.mkdir(cls.crls)
        shutil.copy(pki("crl-a-empty.pem"), os.path.join(cls.crls, "live.pem"))
        cls.http = CrlServer(cls.crls)
        cls.prefix = "/fleet%d/" % os.getpid()
        cls.nodes = [Node(cls.etcd, "n%d" % i, cls.prefix, cls.passfile,
                          extra_opts={"crl_refresh_interval": "3600", "crl_retry_min": "1", "crl_timeout": "5",
                                      "etcd_gc_interval": "1"}) for i in range(3)]
        for n in cls.nodes:
            n.start()
        cls.lb = HAProxy(cls.nodes)
        cls.lb.start()

    @classmethod
    def tearDownClass(cls):
        logs = ""
        bad = []
        for n in cls.nodes:
            if n.broker.proc and n.broker.proc.poll() is None:
                n.broker.signal(signal.SIGCONT)
            rc = n.stop()
            log = n.log()
            logs += log
            if rc not in (0, None) or "AddressSanitizer" in log:
                bad.append("%s exited %s:\n%s" % (n.name, rc, log[-4000:]))
            n.cleanup()
        if cls.lb:
            cls.lb.cleanup()
        if cls.http:
            cls.http.stop()
        cls.etcd.cleanup()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        if bad:
            raise AssertionError("\n".join(bad))

    def setUp(self):
        self.socks = []

    def tearDown(self):
        for s in self.socks:
            s.close()

    # helpers

    def device(self, node, tenant, dev="dev-a1", clientid=None, keep=False, port=None):
        """A device's connection through HAProxy to node (its index)."""
        clientid = clientid or {"dev-a1": "d:%s:sensor:a1", "dev-a2": "d:%s:meter:a2"}[dev] % tenant
        r = mqtt_connect(port or self.lb.port, clientid, sni="n%d.%s.test" % (node, tenant),
                         cert=pki(dev + ".pem"), key=pki(dev + ".key"), keep=keep)
        if keep and r["sock"]:
            self.socks.append(r["sock"])
        return r

    def accepted(self, node, tenant, dev="dev-a1"):
        return self.device(node, tenant, dev)["result"] == "accepted"

    def tenant(self, name, node=0, ca=True, **extra):
        ok(self.nodes[node].broker, "createTenant", tenant=name, hostnames=["%s.test" % name, "*.%s.test" % name], **extra)
        ca_id = None
        if ca:
            ca_id = ok(self.nodes[node].broker, "addCA", tenant=name, certificate=read(pki("ca-a.pem")),
                       **extra.get("ca_extra", {}))["ca"]["id"]
        # The other nodes apply it from etcd at their own pace: a test that
        # goes on to another node at once raced them.
        self.assertTrue(until(self.converged), "the fleet did not converge on tenant %s" % name)
        return ca_id

    def status(self, node):
        return ok(self.nodes[node].broker, "getStatus")["status"]

    def converged(self):
        revs = [self.status(i)["fleet"]["appliedRevision"] for i in range(3)]
        return len(set(revs)) == 1 and revs[0]

    # the tests, in order (the faults last)

    def test_1_a_ca_added_on_node_1_admits_a_device_through_node_3(self):
        ok(self.nodes[0].broker, "createTenant", tenant="alpha", hostnames=["alpha.test", "*.alpha.test"])
        self.assertTrue(until(lambda: self.device(2, "alpha")["result"] != "accepted"))
        self.assertFalse(self.accepted(2, "alpha"), "admitted before any CA was added")
        ok(self.nodes[0].broker, "addCA", tenant="alpha", certificate=read(pki("ca-a.pem")))
        self.assertTrue(until(lambda: self.accepted(2, "alpha")), "the CA added on node 1 does not admit through node 3")
        self.assertTrue(until(lambda: self.accepted(1, "alpha")))
        # What etcd holds: the whole tenant record, no plain key anywhere.
        value, _ = self.etcd.get(self.prefix + "tenants/alpha")
        rec = json.loads(value)
        self.assertIn("tenant.json", rec["files"])
        self.assertTrue(any(k.startswith("cas/") for k in rec["files"]))
        admin, _ = self.etcd.get(self.prefix + "admin")
        self.assertEqual(sorted(json.loads(admin)["files"]), ["ca.key", "ca.pem"])
        self.assertIn(b"ENCRYPTED PRIVATE KEY", __import__("base64").b64decode(json.loads(admin)["files"]["ca.key"]["data"]))

    def test_2_a_crl_uploaded_on_node_2_disconnects_the_revoked_device_everywhere(self):
        self.tenant("crlt")
        socks = []
        for node in (0, 2):
            r = self.device(node, "crlt", "dev-a2", keep=True)
            self.assertEqual(r["result"], "accepted")
            socks.append(r["sock"])
        ok(self.nodes[1].broker, "uploadCRL", tenant="crlt", crl=read(pki("crl-a.pem")))
        for s in socks:
            self.assertTrue(closed_within(s, WAIT), "a device revoked on node 2 stays connected elsewhere")
        for node in range(3):
            self.assertFalse(self.accepted(node, "crlt", "dev-a2"))
            self.assertTrue(self.accepted(node, "crlt", "dev-a1"))

    def test_2b_a_block_made_on_node_1_disconnects_the_device_from_node_2(self):
        # Blocks are part of the tenant's record: they reach every node.
        self.tenant("blk")
        sock = self.device(1, "blk", keep=True)["sock"]
        self.assertIsNotNone(sock)
        ok(self.nodes[0].broker, "blockDevice", tenant="blk", id="d:blk:sensor:a1", reason="stolen")
        self.assertTrue(closed_within(sock, WAIT), "a device blocked on node 1 stays connected to node 2")
        for node in range(3):
            self.assertTrue(until(lambda: not self.accepted(node, "blk")), "node %d admits a blocked device" % node)
        self.assertTrue(self.accepted(2, "blk", "dev-a2"))
        ok(self.nodes[2].broker, "unblockDevice", tenant="blk", id="d:blk:sensor:a1")
        self.assertTrue(until(lambda: self.accepted(1, "blk")), "unblocked on node 3, still refused on node 2")

    def test_3_a_crl_refreshed_on_node_2_disconnects_the_revoked_device_everywhere(self):
        live = os.path.join(self.crls, "live.pem")
        shutil.copy(pki("crl-a-empty.pem"), live)
        ok(self.nodes[0].broker, "createTenant", tenant="refr", hostnames=["refr.test", "*.refr.test"])
        ca = ok(self.nodes[0].broker, "addCA", tenant="refr", certificate=read(pki("ca-a.pem")),
                crlUrl=self.http.url("/files/live.pem"))["ca"]["id"]
        self.assertTrue(until(lambda: self.accepted(2, "refr", "dev-a2")))
        r = self.device(2, "refr", "dev-a2", keep=True)
        self.assertEqual(r["result"], "accepted")
        shutil.copy(pki("crl-a.pem"), live)
        ok(self.nodes[1].broker, "refreshCRL", tenant="refr", id=ca)
        self.assertTrue(closed_within(r["sock"], WAIT), "a device revoked by a refresh on node 2 stays connected on node 3")
        self.assertTrue(until(lambda: not self.accepted(0, "refr", "dev-a2")))

    @unittest.skipUnless(BIG_CRL, "make_big_crl not built")
    def test_3b_a_22_mb_crl_refreshed_on_node_1_reaches_every_node(self):
        live = os.path.join(self.crls, "big.der")
        shutil.copy(pki("crl-a-empty.pem"), live)
        ok(self.nodes[0].broker, "createTenant", tenant="big", hostnames=["big.test", "*.big.test"])
        ca = ok(self.nodes[0].broker, "addCA", tenant="big", certificate=read(pki("ca-a.pem")),
                crlUrl=self.http.url("/files/big.der"))["ca"]["id"]
        self.assertTrue(until(lambda: self.accepted(2, "big", "dev-a2")))
        tmp = os.path.join(self.tmp, "big.tmp")
        subprocess.run([BIG_CRL, pki("ca-a.pem"), pki("ca-a.key"), "1000000", tmp, serial_of(pki("dev-a2.pem"))], check=True)
        size = os.path.getsize(tmp)
        self.assertGreater(size, 21000000)  # 22 MB
        os.rename(tmp, live)
        # Downloaded, indexed, sent in chunks, applied here: under the
        # sanitizers that takes more than mosquitto_rr's usual 10 s.
        resp = control(self.nodes[0].broker, [{"command": "refreshCRL", "tenant": "big", "id": ca}], timeout=90)
        self.assertIsNotNone(resp, "no answer to refreshCRL")
        r = resp["responses"][0]
        self.assertNotIn("error", r)
        self.assertEqual(r["data"]["revoked"], 1000001)
        # Over etcd's 1.5 MiB per request: in chunks under the record.
        chunks = [k for k in self.etcd.keys(self.prefix + "blobs/")]
        self.assertGreaterEqual(len(chunks), size // (512 * 1024))
        for node in (1, 2):
            self.assertTrue(until(lambda: not self.accepted(node, "big", "dev-a2"), timeout=40),
                            "the 22 MB CRL did not reach node %d" % node)
            self.assertTrue(self.accepted(node, "big", "dev-a1"))
            ca_state = ok(self.nodes[node].broker, "getCA", tenant="big", id=ca)["ca"]
            self.assertEqual(ca_state["crl"]["revoked"], 1000001)
        # The next CRL replaces it: its chunks, named by no record, leave etcd.
        time.sleep(1.1)  # a later thisUpdate: no rollback
        subprocess.run([BIG_CRL, pki("ca-a.pem"), pki("ca-a.key"), "10", tmp, serial_of(pki("dev-a2.pem"))], check=True)
        os.rename(tmp, live)
        self.assertEqual(ok(self.nodes[2].broker, "refreshCRL", tenant="big", id=ca)["revoked"], 11)
        self.assertTrue(until(lambda: self.etcd.keys(self.prefix + "blobs/") == [], timeout=20),
                        "the replaced CRL's chunks stay in etcd")
        for node in range(3):
            self.assertTrue(until(lambda: not self.accepted(node, "big", "dev-a2")))

    def race_once(self, i):
        """Both nodes modify tenant race at the same instant; the responses."""
        want = [["a%d.race.test" % i, "*.race.test"], ["b%d.race.test" % i, "*.race.test"]]
        return self.race([{"command": "modifyTenant", "tenant": "race", "hostnames": w} for w in want], i), want

    def race(self, commands, i):
        """commands[k] sent to node k, both at the same instant; the answers."""
        conns = []
        for node in (0, 1):
            b = self.nodes[node].broker
            r = mqtt_connect(b.port, "racer-%d-%d" % (node, i), keep=True,
                             cert=os.path.join(b.work.store, "admin", "admin.pem"), key=os.path.join(b.work.store, "admin", "admin.key"))
            self.assertEqual(r["result"], "accepted")
            mqtt_subscribe(r["sock"], "$CONTROL/certmgr/v1/response")
            conns.append(r["sock"])
        go = threading.Barrier(2)
        out = [None, None]

        def send(k):
            payload = json.dumps({"commands": [commands[k]]})
            go.wait()
            harness.mqtt_publish(conns[k], "$CONTROL/certmgr/v1", payload)
            got = mqtt_messages(conns[k], 10, first_only=True)
            out[k] = json.loads(got[0][1])["responses"][0] if got else None

        threads = [threading.Thread(target=send, args=(k,)) for k in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for s in conns:
            s.close()
        return out

    def test_4_modify_tenant_on_two_nodes_at_once_one_wins_the_other_retries(self):
        ok(self.nodes[0].broker, "createTenant", tenant="race", hostnames=["race.test", "*.race.test"])
        until(self.converged)
        conflicts = 0
        for i in range(30):
            (r0, r1), want = self.race_once(i)
            self.assertIsNotNone(r0)
            self.assertIsNotNone(r1)
            errors = [r.get("error") for r in (r0, r1) if "error" in r]
            for e in errors:
                self.assertIn("changed concurrently, retry", e)
            self.assertLessEqual(len(errors), 1, "both changes were refused: %s" % errors)
            if errors:
                conflicts += 1
                winner = want[0] if "error" in r1 else want[1]
                # The state is the winner's, on every node.
                for node in range(3):
                    self.assertTrue(until(lambda: sorted(ok(self.nodes[node].broker, "getTenant", tenant="race")["tenant"]["hostnames"])
                                          == sorted(winner)), "node %d does not hold the winner's change" % node)
                if conflicts >= 2:
                    break
            until(self.converged)
        self.assertGreater(conflicts, 0, "30 simultaneous changes on two nodes and never a conflict")

    def test_5_nodes_and_their_revision_are_shown(self):
        self.assertTrue(until(self.converged))
        nodes = ok(self.nodes[0].broker, "listNodes")["nodes"]
        self.assertEqual(sorted(n["name"] for n in nodes), ["n0", "n1", "n2"])
        rev = self.status(0)["fleet"]["appliedRevision"]
        self.assertTrue(until(lambda: all(n["revision"] == rev for n in ok(self.nodes[0].broker, "listNodes")["nodes"])))
        self.assertEqual([n["self"] for n in sorted(nodes, key=lambda n: n["name"])], [True, False, False])
        self.assertEqual(self.status(1)["fleet"]["etcd"], "connected")
        rc, out, err = harness.ctl(self.nodes[1].broker, "listNodes")
        self.assertEqual(rc, 0, err)
        for name in ("n0", "n1", "n2"):
            self.assertIn(name, out)
        # $SYS: the applied revision, for an operator to see convergence.
        b = self.nodes[2].broker
        out = subprocess.run(["mosquitto_sub", "-p", str(b.port), "-t", "$SYS/broker/certmgr/fleet/applied_revision", "-C", "1", "-W", "5",
                              "--insecure", "--cafile", b.work.admin_cafile, "--cert", os.path.join(b.work.store, "admin", "admin.pem"),
                              "--key", os.path.join(b.work.store, "admin", "admin.key")], capture_output=True, text=True, timeout=15)
        self.assertEqual(out.stdout.strip(), rev)
        # The rejected lists stay per node; the fleet's on asking.
        self.assertNotEqual(self.device(1, "alpha", "dev-b1", clientid="d:alpha:sensor:b1")["result"], "accepted")
        leaf = cert_id(pki("dev-b1.pem"))

        def holders():
            return sorted(n["node"] for n in ok(self.nodes[0].broker, "listRejected", fleet=True)["fleet"]
                          if any(r["leafId"] == leaf for r in n["rejected"]))
        self.assertEqual(until(holders), ["n1"])
        self.assertFalse(any(r.get("leafId") == leaf for r in ok(self.nodes[0].broker, "listRejected")["rejected"]))

    def test_5b_the_slots_are_the_fleets(self):
        ids = [served_certificate(n.port)[1] for n in self.nodes]
        self.assertEqual(len(set(ids)), 1, "the nodes serve different certificates")
        new = ok(self.nodes[0].broker, "regenerateSelfSigned", slot="mqtt", commonName="mqtt.fleet.example")["certificate"]["id"]
        self.assertNotEqual(new, ids[0])
        for n in self.nodes:
            self.assertTrue(until(lambda: served_certificate(n.port)[1] == new), "node %s does not serve the new certificate" % n.name)
            # The administrators verify the node by what it serves.
            n.work.admin_cafile = os.path.join(n.work.store, "slots", "mqtt", new + ".crt")
        listed = ok(self.nodes[2].broker, "listServerCertificates", slot="mqtt")["certificates"]
        self.assertEqual([c["id"] for c in listed if c["default"]], [new])

    def test_5c_a_slot_changed_on_two_nodes_at_once(self):
        conflicts = 0
        for i in range(20):
            r = self.race([{"command": "regenerateSelfSigned", "slot": "websockets", "commonName": "n%d-%d.example" % (k, i)}
                           for k in (0, 1)], i)
            self.assertTrue(r[0] and r[1])
            errors = [x["error"] for x in r if "error" in x]
            self.assertLessEqual(len(errors), 1, errors)
            for e in errors:
                self.assertIn("slot 'websockets' changed concurrently, retry", e)
            if errors:
                conflicts += 1
                winner = [x for x in r if "error" not in x][0]["data"]["certificate"]["id"]
                for n in self.nodes:
                    path = os.path.join(n.work.store, "slots", "websockets", "slot.json")
                    self.assertTrue(until(lambda: json.loads(read(path))["default"] == winner),
                                    "node %s does not hold the winner's slot" % n.name)
                if conflicts >= 2:
                    break
            until(self.converged)
        self.assertGreater(conflicts, 0, "20 simultaneous slot changes on two nodes and never a conflict")

    def test_6_one_member_lost_then_all(self):
        self.tenant("fault")
        self.etcd.stop_member(0)
        try:
            ok(self.nodes[1].broker, "modifyTenant", tenant="fault", publishPatterns=["{org}/x/#"])
            self.assertTrue(self.accepted(0, "fault"))
            self.assertTrue(until(self.converged))
            self.etcd.stop()
            # Devices go on connecting from what each node applied, and a
            # revoked one is still refused.
            ok_before = [self.accepted(i, "crlt") for i in range(3)]
            self.assertEqual(ok_before, [True] * 3)
            self.assertEqual([self.accepted(i, "crlt", "dev-a2") for i in range(3)], [False] * 3)
            self.assertTrue(until(lambda: self.status(2)["fleet"]["etcd"] == "unreachable"))
            r = control(self.nodes[2].broker, [{"command": "modifyTenant", "tenant": "fault", "orgId": "other"}])["responses"][0]
            self.assertIn("etcd is unreachable", r["error"])
            self.assertIn("changes are refused", r["error"])
            self.assertEqual(ok(self.nodes[2].broker, "getTenant", tenant="fault")["tenant"]["orgId"], "fault")
            st = self.status(2)["fleet"]
            self.assertIn("unreachableSince", st)
        finally:
            for i in range(3):
                self.etcd.start_member(i)
            self.etcd.wait_healthy()
        # Back: every node catches up.
        self.assertTrue(until(lambda: self.status(2)["fleet"]["etcd"] == "connected", timeout=20))
        ok(self.nodes[2].broker, "modifyTenant", tenant="fault", orgId="other")
        for i in range(3):
            self.assertTrue(until(lambda: ok(self.nodes[i].broker, "getTenant", tenant="fault")["tenant"]["orgId"] == "other"))
        self.assertTrue(until(self.converged))

    def test_7_a_node_killed_and_restarted_while_another_changes_the_state(self):
        self.nodes[2].stop(signal.SIGKILL)
        ok(self.nodes[0].broker, "createTenant", tenant="late", hostnames=["late.test", "*.late.test"])
        ok(self.nodes[0].broker, "addCA", tenant="late", certificate=read(pki("ca-a.pem")))
        self.nodes[2].start()
        self.assertTrue(self.accepted(2, "late"), "a node restarted after a change does not have it")
        # A node frozen while etcd restarts and compacts what it missed
        # resyncs in full from the current state.
        self.nodes[1].broker.signal(signal.SIGSTOP)
        try:
            self.etcd.stop()
            for i in range(3):
                self.etcd.start_member(i)
            self.etcd.wait_healthy()
            self.assertTrue(until(lambda: self.status(0)["fleet"]["etcd"] == "connected", timeout=20))
            ok(self.nodes[0].broker, "deleteTenant", tenant="late")
            # Compacted at the deletion's own revision, which drops its
            # tombstone: a watch resumed at that revision would not hear
            # of it, nor be told it was compacted.
            deleted = re.findall(r"\| deleteTenant \| tenant=late revision=(\d+)", self.nodes[0].broker.log())
            self.assertTrue(deleted)
            self.etcd.compact(int(deleted[-1]))
        finally:
            self.nodes[1].broker.signal(signal.SIGCONT)
        self.assertTrue(until(lambda: self.device(1, "late")["result"] != "accepted", timeout=20),
                        "a node that missed a compacted change still serves it")
        # The resync waits for the restarted etcd to elect a leader and
        # retries with backoff: on a loaded machine that took over WAIT.
        self.assertTrue(until(lambda: self.status(1)["fleet"]["resyncs"] >= 1, timeout=30),
                        "a node that missed a compacted change did not resync")

    def test_8_a_node_started_with_etcd_down_serves_from_its_cache(self):
        self.etcd.stop()
        try:
            self.nodes[1].stop()
            self.nodes[1].start()
            self.assertIn("etcd is unreachable at start", self.nodes[1].broker.run_log())
            self.assertTrue(self.accepted(1, "crlt"))
            self.assertFalse(self.accepted(1, "crlt", "dev-a2"))
        finally:
            for i in range(3):
                self.etcd.start_member(i)
            self.etcd.wait_healthy()
        self.assertTrue(until(lambda: self.status(1)["fleet"]["etcd"] == "connected", timeout=20))
        ok(self.nodes[1].broker, "modifyTenant", tenant="crlt", publishPatterns=["{org}/y/#"])
        self.assertTrue(until(self.converged))

    def test_9_a_node_with_another_passphrase_refuses_to_start(self):
        other = passphrase_file(os.path.join(self.tmp, "other-passphrase"))
        with open(other, "w") as f:
            f.write("not the fleet's passphrase\n")
        n = Node(self.etcd, "n9", self.prefix, other)
        try:
            self.assertNotEqual(n.start(expect_running=False), 0)
            self.assertIn("does not open with this node's passphrase", n.log())
        finally:
            n.cleanup()


class Migration(unittest.TestCase):
    """certmgr_etcd copies a directory store into etcd and back."""

    def test_a_directory_store_is_copied_into_etcd_and_back(self):
        etcd = EtcdCluster(1)
        etcd.start()
        work = Workdir()
        try:
            pf = passphrase_file(work.file("passphrase"))
            plain = Broker(work)
            plain.start()
            ok(plain, "createTenant", tenant="moved", hostnames=["moved.test"])
            ok(plain, "addCA", tenant="moved", certificate=read(pki("ca-a.pem")))
            ok(plain, "uploadCRL", tenant="moved", crl=read(pki("crl-a.pem")))
            self.assertEqual(plain.stop(), 0)
            args = [TOOL, "--endpoints", etcd.endpoints(), "--prefix", "/m/"]
            # A plain store's admin CA key is not encrypted: refused.
            out = subprocess.run(args + ["export", work.store], capture_output=True, text=True)
            self.assertNotEqual(out.returncode, 0)
            self.assertIn("not encrypted", out.stderr)
            self.assertEqual(etcd.keys("/m/"), [])
            enc = Broker(work, plugin_opts={"key_passphrase_file": pf}, conf_name="enc.conf")
            enc.start()
            self.assertEqual(enc.stop(), 0)
            out = subprocess.run(args + ["export", work.store], capture_output=True, text=True)
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertEqual(etcd.keys("/m/"), ["/m/admin", "/m/slots/bridge", "/m/slots/mqtt", "/m/slots/websockets",
                                                "/m/tenants/default", "/m/tenants/moved"])
            again = subprocess.run(args + ["export", work.store], capture_output=True, text=True)
            self.assertNotEqual(again.returncode, 0)
            self.assertIn("in etcd already", again.stderr)
            # A node of the fleet comes up with the copied state.
            node = Node(etcd, "m0", "/m/", pf)
            try:
                node.start()
                t = ok(node.broker, "getTenant", tenant="moved")["tenant"]
                self.assertEqual(t["caCount"], 1)
                r = mqtt_connect(node.port, "d:moved:meter:a2", sni="moved.test", cert=pki("dev-a2.pem"), key=pki("dev-a2.key"))
                self.assertNotEqual(r["result"], "accepted")
                r = mqtt_connect(node.port, "d:moved:sensor:a1", sni="moved.test", cert=pki("dev-a1.pem"), key=pki("dev-a1.key"))
                self.assertEqual(r["result"], "accepted")
                self.assertEqual(node.stop(), 0)
            finally:
                node.cleanup()
            back = work.file("backup")
            out = subprocess.run(args + ["import", back], capture_output=True, text=True)
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertEqual(read(os.path.join(back, "tenants", "moved", "tenant.json")),
                             read(os.path.join(work.store, "tenants", "moved", "tenant.json")))
            self.assertEqual(read(os.path.join(back, "admin", "ca.pem")), read(os.path.join(work.store, "admin", "ca.pem")))
            self.assertEqual(read(os.path.join(back, "slots", "mqtt", "slot.json")), read(os.path.join(work.store, "slots", "mqtt", "slot.json")))
        finally:
            work.cleanup()
            etcd.cleanup()

    def test_a_blob_that_is_not_its_content_is_refused(self):
        import base64
        import hashlib
        etcd = EtcdCluster(1)
        etcd.start()
        work = Workdir()
        try:
            good = b"x" * (300 * 1024)
            sha = hashlib.sha256(good).hexdigest()
            forged = b"y" * len(good)
            etcd.call("/v3/kv/put", {"key": base64.b64encode(("/f/blobs/%s/000000" % sha).encode()).decode(),
                                     "value": base64.b64encode(forged).decode()})
            rec = {"schema": 1, "files": {"tenant.json": {"data": base64.b64encode(b"{}").decode()},
                                          "crls/x.crl": {"blob": sha, "size": len(good)}}}
            etcd.call("/v3/kv/put", {"key": base64.b64encode(b"/f/tenants/forged").decode(),
                                     "value": base64.b64encode(json.dumps(rec).encode()).decode()})
            out = subprocess.run([TOOL, "--endpoints", etcd.endpoints(), "--prefix", "/f/", "import", work.file("b")],
                                 capture_output=True, text=True)
            self.assertNotEqual(out.returncode, 0)
            self.assertIn("not the content its name says", out.stderr)
            self.assertFalse(os.path.exists(work.file("b/tenants/forged/crls/x.crl")))
        finally:
            work.cleanup()
            etcd.cleanup()

    def test_etcd_over_tls_with_a_client_certificate(self):
        work = Workdir()
        d = work.file("etcd-pki")
        os.mkdir(d)
        os.chmod(d, 0o755)

        def run(*argv):
            subprocess.run(argv, check=True, capture_output=True, cwd=d)

        run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
            "-subj", "/CN=etcd test CA", "-keyout", "ca.key", "-out", "ca.pem")
        # etcd 3.4's gateway dials its own gRPC with the server certificate:
        # with client certificates required, it needs clientAuth too.
        for name, ext in (("server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth"),
                          ("client", "extendedKeyUsage=clientAuth")):
            with open(os.path.join(d, name + ".ext"), "w") as f:
                f.write(ext + "\n")
            run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=" + name,
                "-keyout", name + ".key", "-out", name + ".csr")
            run("openssl", "x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-days", "2", "-extfile", name + ".ext", "-out", name + ".pem")
        for f in os.listdir(d):
            os.chmod(os.path.join(d, f), 0o644)  # the broker's user reads them (a test's keys)
        p = lambda f: os.path.join(d, f)
        etcd = EtcdCluster(1, tls={"cert": p("server.pem"), "key": p("server.key"), "ca": p("ca.pem"),
                                   "client_cert": p("client.pem"), "client_key": p("client.key")})
        etcd.start()
        pf = passphrase_file(work.file("passphrase"))
        good = Node(etcd, "t0", "/tls/", pf, extra_opts={"etcd_cafile": p("ca.pem"), "etcd_certfile": p("client.pem"),
                                                          "etcd_keyfile": p("client.key")})
        bare = Node(etcd, "t1", "/tls/", pf, extra_opts={"etcd_cafile": p("ca.pem")})
        try:
            good.start()
            self.assertIn("in step at revision", good.broker.run_log())
            ok(good.broker, "createTenant", tenant="sealed", hostnames=["sealed.test"])
            self.assertIn("/tls/tenants/sealed", etcd.keys("/tls/"))
            # Without a client certificate etcd refuses the node: it serves
            # its own cache and takes no change.
            bare.start()
            self.assertIn("etcd is unreachable at start", bare.broker.run_log())
            r = control(bare.broker, [{"command": "createTenant", "tenant": "intruder", "hostnames": ["i.test"]}])["responses"][0]
            self.assertIn("etcd is unreachable", r["error"])
            self.assertNotIn("/tls/tenants/intruder", etcd.keys("/tls/"))
            self.assertEqual(good.stop(), 0)
            self.assertEqual(bare.stop(), 0)
        finally:
            good.cleanup()
            bare.cleanup()
            etcd.cleanup()
            work.cleanup()

    def test_the_etcd_back_end_needs_encrypted_keys_and_endpoints(self):
        work = Workdir()
        try:
            b = Broker(work, plugin_opts={"store": "etcd", "etcd_endpoints": "http://127.0.0.1:1"})
            self.assertNotEqual(b.start(expect_running=False), 0)
            self.assertIn("needs plugin_opt_key_passphrase_file", b.log())
            b = Broker(work, plugin_opts={"store": "etcd"}, conf_name="b.conf")
            self.assertNotEqual(b.start(expect_running=False), 0)
            self.assertIn("needs plugin_opt_etcd_endpoints", b.log())
            b = Broker(work, plugin_opts={"etcd_endpoints": "http://127.0.0.1:1"}, conf_name="c.conf")
            self.assertNotEqual(b.start(expect_running=False), 0)
            self.assertIn("plugin_opt_store is not etcd", b.log())
        finally:
            work.cleanup()


def make_pair(directory, cn):
    key = os.path.join(directory, "k.pem")
    crt = os.path.join(directory, "c.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "30",
                    "-subj", "/CN=" + cn, "-keyout", key, "-out", crt], check=True, capture_output=True)
    return read(crt), read(key)


class SecretDirectory(unittest.TestCase):
    """plugin_opt_mqtt_secret_dir: the layout of a Kubernetes TLS Secret,
    updated by the kubelet's ..data symlink swap."""

    def publish(self, secret, name, crt, key):
        d = os.path.join(secret, name)
        os.mkdir(d)
        for f, text in (("tls.crt", crt), ("tls.key", key)):
            with open(os.path.join(d, f), "w") as fh:
                fh.write(text)
            os.chmod(os.path.join(d, f), 0o644)
        tmp = os.path.join(secret, "..data_tmp")
        os.symlink(name, tmp)
        os.rename(tmp, os.path.join(secret, "..data"))  # the atomic swap
        for f in ("tls.crt", "tls.key"):
            if not os.path.islink(os.path.join(secret, f)):
                os.symlink(os.path.join("..data", f), os.path.join(secret, f))

    def test_the_symlink_swap_serves_the_new_certificate_on_the_next_handshake(self):
        work = Workdir()
        gen = tempfile.mkdtemp(dir="/tmp")
        try:
            secret = work.file("secret")
            os.mkdir(secret)
            os.chmod(secret, 0o755)
            first = make_pair(gen, "first.example")
            self.publish(secret, "..2026_12_02_01", *first)
            b = Broker(work, plugin_opts={"mqtt_secret_dir": secret})
            b.start()
            self.assertIn("CN = first.example", harness.cert_subject(served_certificate(b.port)[0]))
            second = make_pair(gen, "second.example")
            self.publish(secret, "..2026_12_02_02", *second)
            self.assertIn("CN = second.example", harness.cert_subject(served_certificate(b.port)[0]))
            # A pair whose key is not the certificate's: the last good one serves.
            third = make_pair(gen, "third.example")
            self.publish(secret, "..2026_12_02_03", third[0], first[1])
            self.assertIn("CN = second.example", harness.cert_subject(served_certificate(b.port)[0]))
            self.assertIn("does not load", b.log())
            self.assertEqual(b.stop(), 0)
            # A directory that does not hold a pair refuses the start.
            shutil.rmtree(secret)
            os.mkdir(secret)
            b2 = Broker(work, plugin_opts={"mqtt_secret_dir": secret}, conf_name="b2.conf")
            self.assertNotEqual(b2.start(expect_running=False), 0)
            self.assertIn("plugin_opt_mqtt_secret_dir", b2.log())
        finally:
            shutil.rmtree(gen, ignore_errors=True)
            work.cleanup()


if __name__ == "__main__":
    unittest.main()
