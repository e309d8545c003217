"""The foundation: certmgr serves the broker's TLS from its own store, and
refuses to start, changing nothing, when it cannot do so safely."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import unittest

from harness import (Broker, Workdir, free_port, served_certificate, cert_subject, tree_digest, broker_uid_gid,
                     ok, pki, read, ctl, hosts_file, with_hosts, world_readable_copy)


def store_default(store, slot="mqtt"):
    with open(os.path.join(store, "slots", slot, "slot.json")) as f:
        return json.load(f)["default"]


class FoundationTest(unittest.TestCase):
    def setUp(self):
        self.work = Workdir()
        self.brokers = []

    def tearDown(self):
        for b in self.brokers:
            b.stop(signal.SIGKILL)
        self.work.cleanup()

    def broker(self, **kw):
        b = Broker(self.work, **kw)
        self.brokers.append(b)
        return b

    def stop_cleanly(self, b):
        rc = b.stop()
        self.assertEqual(rc, 0, "broker exit code on SIGTERM\n" + b.log())
        self.assertNotIn("ERROR: AddressSanitizer", b.log())
        self.assertNotIn("runtime error:", b.log())

    # ------------------------------------------------------------------
    # Serving

    def test_first_start_serves_the_builtin_self_signed_certificate(self):
        b = self.broker()
        b.start()
        self.assertIn("certmgr: created store", b.log())
        der, fp = served_certificate(b.port, servername="anything.example")
        self.assertEqual(fp, store_default(self.work.store))
        text = cert_subject(der)
        self.assertIn("CN = " + socket.gethostname(), text)
        self.assertIn("DNS:localhost", text)
        self.assertIn("DNS:" + socket.gethostname(), text)
        # Without SNI too.
        self.assertEqual(served_certificate(b.port)[1], fp)
        self.stop_cleanly(b)

    def test_store_files_have_private_modes_and_belong_to_the_broker_user(self):
        b = self.broker()
        b.start()
        uid, _ = broker_uid_gid()
        for root, dirs, files in os.walk(self.work.store):
            for d in dirs:
                st = os.stat(os.path.join(root, d))
                self.assertEqual(st.st_mode & 0o777, 0o700, d)
                self.assertEqual(st.st_uid, uid, d)
            for f in files:
                st = os.stat(os.path.join(root, f))
                self.assertEqual(st.st_uid, uid, f)
                if f.endswith(".key") or f.endswith(".json"):
                    self.assertEqual(st.st_mode & 0o777, 0o600, f)
        self.stop_cleanly(b)

    def test_messages_flow_over_tls_with_the_served_certificate_verified(self):
        b = self.broker()
        b.start()
        # The default tenant serves "localhost"; give it a CA and let its
        # devices read the whole org.
        ok(b, "addCA", tenant="default", certificate=read(pki("ca-a.pem")))
        ok(b, "modifyTenant", tenant="default", subscribePatterns=["{org}/#"])
        cafile = os.path.join(self.work.store, "listener", "mqtt.crt")

        def client(tool, dev, clientid, *args):
            return [tool, "-h", "localhost", "-p", str(b.port), "--cafile", cafile,
                    "--cert", pki(dev + ".pem"), "--key", pki(dev + ".key"), "-i", clientid] + list(args)

        sub = subprocess.Popen(client("mosquitto_sub", "dev-a1", "d:default:sensor:a1", "-t", "default/#", "-C", "1", "-W", "20"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            b.wait_log(" as d:default:sensor:a1 ")
            time.sleep(0.3)
            pub = subprocess.run(client("mosquitto_pub", "gw-a3", "g:default:gw:a3", "-t", "default/gw/a3/t", "-m", "hello over certmgr"),
                                 capture_output=True, text=True, timeout=20)
            self.assertEqual(pub.returncode, 0, pub.stderr)
            out, err = sub.communicate(timeout=20)
            self.assertEqual(sub.returncode, 0, err)
            self.assertEqual(out.strip(), "hello over certmgr")
        finally:
            if sub.poll() is None:
                sub.kill()
                sub.wait()
        # A client that trusts another CA must fail to verify the broker.
        pub = subprocess.run(["mosquitto_pub", "-h", "localhost", "-p", str(b.port), "--cafile", pki("ca-b.pem"),
                              "--cert", pki("gw-a3.pem"), "--key", pki("gw-a3.key"), "-i", "g:default:gw:a3",
                              "-t", "default/gw/a3/t", "-m", "x"], capture_output=True, text=True, timeout=20)
        self.assertNotEqual(pub.returncode, 0)
        # And a client without a certificate gets no session.
        pub = subprocess.run(["mosquitto_pub", "-h", "localhost", "-p", str(b.port), "--cafile", cafile,
                              "-t", "default/x", "-m", "x"], capture_output=True, text=True, timeout=20)
        self.assertNotEqual(pub.returncode, 0)
        self.stop_cleanly(b)

    def test_restart_serves_the_same_certificate(self):
        b = self.broker()
        b.start()
        fp1 = served_certificate(b.port)[1]
        self.stop_cleanly(b)
        digest = tree_digest(self.work.store)
        b.start()
        self.assertIn("certmgr: loaded store", b.run_log())
        self.assertEqual(served_certificate(b.port)[1], fp1)
        self.stop_cleanly(b)
        self.assertEqual(tree_digest(self.work.store), digest, "a restart rewrote the store")

    def test_sighup_keeps_certmgr_certificate_in_force(self):
        b = self.broker()
        b.start()
        fp = served_certificate(b.port)[1]
        # Put another valid pair where the listener's certfile/keyfile point:
        # the broker reloads it on SIGHUP, certmgr's hook must still win.
        listener = os.path.join(self.work.store, "listener")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", os.path.join(listener, "mqtt.key"), "-out", os.path.join(listener, "mqtt.crt"),
                        "-subj", "/CN=intruder", "-days", "2"], check=True, capture_output=True)
        uid, gid = broker_uid_gid()
        for f in ("mqtt.key", "mqtt.crt"):
            os.chown(os.path.join(listener, f), uid, gid)
        b.signal(signal.SIGHUP)
        b.wait_log("Reloading config")
        der, fp2 = served_certificate(b.port)
        self.assertEqual(fp2, fp)
        self.assertNotIn("intruder", cert_subject(der))
        self.stop_cleanly(b)

    def test_a_listener_not_given_to_certmgr_is_left_to_the_broker(self):
        own_crt, own_key = self.work.file("own.crt"), self.work.file("own.key")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", own_key, "-out", own_crt, "-subj", "/CN=own-listener", "-days", "2"],
                       check=True, capture_output=True)
        os.chmod(own_key, 0o644)
        port1, port2 = free_port(), free_port()
        b = self.broker(port=port1, plugin_opts={"mqtt_ports": str(port1)})
        b2 = Broker(self.work, port=port1, plugin_opts={"mqtt_ports": str(port1)},
                    listeners=[b.tls_listener(port1), b.tls_listener(port2, certfile=own_crt, keyfile=own_key)])
        self.brokers.append(b2)
        b2.start()
        self.assertEqual(served_certificate(port1)[1], store_default(self.work.store))
        self.assertIn("own-listener", cert_subject(served_certificate(port2)[0]))
        self.stop_cleanly(b2)

    def test_ports_map_listeners_to_independent_slots(self):
        port1, port2 = free_port(), free_port()
        b = self.broker(port=port1, plugin_opts={"mqtt_ports": str(port1), "websockets_ports": str(port2)})
        b.start()
        b.stop()
        b2 = Broker(self.work, port=port1, plugin_opts={"mqtt_ports": str(port1), "bridge_ports": str(port2)},
                    listeners=[b.tls_listener(port1), b.tls_listener(port2, slot="bridge")])
        self.brokers.append(b2)
        b2.start()
        self.assertEqual(served_certificate(port1)[1], store_default(self.work.store, "mqtt"))
        self.assertEqual(served_certificate(port2)[1], store_default(self.work.store, "bridge"))
        self.assertNotEqual(store_default(self.work.store, "mqtt"), store_default(self.work.store, "bridge"))
        self.stop_cleanly(b2)

    def test_the_shipped_configuration_serves_tls_from_the_store(self):
        # The configuration as configured for installation: the whole-broker
        # file and the drop-in it includes.
        built = os.path.join(os.environ["CERTMGR_BUILD_DIR"], "conf")
        with open(os.path.join(built, "mosquitto.conf")) as f:
            main = f.read()
        with open(os.path.join(built, "certmgr.conf")) as f:
            conf = f.read()
        self.assertIn("set_tcp_nodelay true", conf)
        self.assertIn("per_listener_settings false", conf)
        port, admin_port, console_port = free_port(), free_port(), free_port()
        acl = self.work.file("acl")
        shutil.copy(os.path.join(os.environ.get("CERTMGR_SOURCE_DIR", "../.."), "conf", "acl"), acl)
        os.chmod(acl, 0o644)
        passwd = self.work.file("passwd")
        subprocess.run(["mosquitto_passwd", "-b", "-c", passwd, "backend", "backend-pw"], check=True)
        os.chmod(passwd, 0o644)
        conf = re.sub(r"(?m)^plugin /.*$", "plugin " + self.work.plugin, conf)
        conf = re.sub(r"(?m)^acl_file .*$", "acl_file " + acl, conf)
        conf = re.sub(r"(?m)^#password_file .*$", "password_file " + passwd, conf)
        conf = (conf.replace("/var/lib/mosquitto/certmgr", self.work.store)
                .replace("8883", str(port)).replace("8884", str(admin_port)).replace("8885", str(console_port)))
        if re.search(r"(?m)^http_dir ", conf):
            # The console as built, not an installed one this machine
            # may not have, where the broker's user reads it.
            console = self.work.file("console")
            world_readable_copy(os.path.join(os.environ["CERTMGR_BUILD_DIR"], "console"), console)
            conf = re.sub(r"(?m)^http_dir .*$", "http_dir " + console, conf)
        confd = self.work.file("conf.d")
        os.mkdir(confd)
        os.chmod(confd, 0o755)
        with open(os.path.join(confd, "certmgr.conf"), "w") as f:
            f.write(conf)
        b = self.broker(port=port, conf_name="shipped.conf")
        with open(b.conf, "w") as f:
            f.write(re.sub(r"(?m)^include_dir .*$", "include_dir " + confd, main))
        b.start()
        self.assertEqual(served_certificate(port)[1], store_default(self.work.store))
        self.assertEqual(served_certificate(admin_port, host="127.0.0.1")[1], store_default(self.work.store))
        # certmgr_ctrl's defaults: the loopback admin listener, the admin
        # certificate of the store.
        rc, out, err = ctl(b, "createTenant", "ops", "--hostname", "ops.test", "--policy", "token", port=admin_port)
        self.assertEqual(rc, 0, err)
        added = subprocess.run([os.environ["CERTMGR_CTRL"], "--store", self.work.store, "-p", str(admin_port),
                              "addCA", "default", pki("ca-a.pem")], capture_output=True, text=True)
        self.assertEqual(added.returncode, 0, added.stderr)
        # The shipped access list: the back-end service (token tenant, user
        # name and password) reads the devices' telemetry, a device writes.
        hosts = hosts_file(self.work, ["ops.test"])
        cafile = os.path.join(self.work.store, "listener", "mqtt.crt")
        backend = subprocess.Popen(with_hosts(hosts, ["mosquitto_sub", "-h", "ops.test", "-p", str(port), "--cafile", cafile,
                                                      "--insecure", "-u", "backend", "-P", "backend-pw", "-t", "+/+/+/#",
                                                      "-C", "1", "-v", "-W", "20"]),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        b.wait_log(" u'backend'")
        time.sleep(0.3)
        pub = subprocess.run(["mosquitto_pub", "-h", "localhost", "-p", str(port), "--cafile", cafile,
                              "--cert", pki("dev-a1.pem"), "--key", pki("dev-a1.key"), "-i", "d:default:sensor:a1",
                              "-t", "default/sensor/a1/temp", "-m", "19"], capture_output=True, text=True, timeout=20)
        self.assertEqual(pub.returncode, 0, pub.stderr)
        out, err = backend.communicate(timeout=20)
        self.assertEqual(out.strip(), "default/sensor/a1/temp 19", err)
        self.stop_cleanly(b)

    # ------------------------------------------------------------------
    # Refusals: one clear log line, exit non-zero, store unchanged

    def populated_store(self):
        b = self.broker()
        b.start()
        self.stop_cleanly(b)
        return tree_digest(self.work.store)

    def assert_refused(self, b, line):
        rc = b.start(expect_running=False)
        self.assertNotEqual(rc, 0)
        refusals = [l for l in b.run_log().splitlines() if "certmgr: refusing to start" in l]
        self.assertEqual(len(refusals), 1, b.run_log())
        self.assertIn(line, refusals[0])

    def test_refuses_per_listener_settings_true(self):
        digest = self.populated_store()
        b = self.broker(per_listener_settings="true", conf_name="pls.conf")
        self.assert_refused(b, "per_listener_settings is true in " + b.conf)
        self.assertEqual(tree_digest(self.work.store), digest)

    def test_refuses_per_listener_settings_set_in_an_included_file(self):
        digest = self.populated_store()
        inc = self.work.file("conf.d")
        os.mkdir(inc)
        with open(os.path.join(inc, "50-pls.conf"), "w") as f:
            f.write("per_listener_settings true\n")
        # include_dir comes first: per_listener_settings must precede the
        # security options, as Mosquitto requires.
        b = self.broker(conf_name="inc.conf")
        with open(b.conf) as f:
            body = f.read()
        with open(b.conf, "w") as f:
            f.write("include_dir %s\n" % inc + body)
        rc = b.start(expect_running=False)
        self.assertNotEqual(rc, 0)
        self.assertIn("per_listener_settings is true in", b.log())
        self.assertEqual(tree_digest(self.work.store), digest)

    def test_refuses_a_store_the_broker_user_cannot_write(self):
        os.chown(self.work.store, 0, 0)
        os.chmod(self.work.store, 0o755)
        digest = tree_digest(self.work.store)
        b = self.broker()
        self.assert_refused(b, "store directory %s is not writable" % self.work.store)
        self.assertEqual(tree_digest(self.work.store), digest)
        self.assertEqual(os.listdir(self.work.store), [])

    def test_refuses_a_corrupt_store_naming_the_file(self):
        self.populated_store()
        slot_json = os.path.join(self.work.store, "slots", "websockets", "slot.json")
        with open(slot_json, "w") as f:
            f.write('{"generation": 1, "default": 12}')
        digest = tree_digest(self.work.store)
        b = self.broker()
        self.assert_refused(b, "store file %s: 'default' must be a string" % slot_json)
        self.assertEqual(tree_digest(self.work.store), digest)

    def test_refuses_a_damaged_key_naming_the_file(self):
        self.populated_store()
        d = store_default(self.work.store)
        key = os.path.join(self.work.store, "slots", "mqtt", d + ".key")
        with open(key, "r+") as f:
            f.truncate(40)
        digest = tree_digest(self.work.store)
        b = self.broker()
        self.assert_refused(b, "store file %s" % key)
        self.assertEqual(tree_digest(self.work.store), digest)

    def test_refuses_a_store_from_a_newer_certmgr(self):
        self.populated_store()
        with open(os.path.join(self.work.store, "store.json"), "w") as f:
            json.dump({"schema": 999, "generation": 5}, f)
        digest = tree_digest(self.work.store)
        b = self.broker()
        self.assert_refused(b, "written by a newer certmgr (schema 999")
        self.assertEqual(tree_digest(self.work.store), digest)

    def test_refuses_when_the_broker_configuration_cannot_be_read(self):
        private = self.work.file("private")
        os.mkdir(private, 0o700)
        b = self.broker(conf_name="private/m.conf")
        digest = tree_digest(self.work.store)
        self.assert_refused(b, "cannot check per_listener_settings")
        self.assertEqual(tree_digest(self.work.store), digest)
        # Naming a readable copy lets it start.
        copy = self.work.file("copy.conf")
        shutil.copy(b.conf, copy)
        os.chmod(copy, 0o644)
        b2 = self.broker(conf_name="private/m2.conf", plugin_opts={"broker_config": copy})
        b2.start()
        self.stop_cleanly(b2)

    def test_refuses_unknown_options(self):
        b = self.broker(plugin_opts={"colour": "blue"})
        self.assert_refused(b, "unknown option plugin_opt_colour")
        b = self.broker(plugin_opts={"mqtt_ports": "88x3"}, conf_name="p.conf")
        self.assert_refused(b, "is not a list of ports")


if __name__ == "__main__":
    unittest.main()
