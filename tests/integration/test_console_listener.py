"""The console's listener: a TLS websockets listener with an http_dir,
served from the websockets slot (plugin_opt_console_ports). A browser gets
HTTP/1.1 by ALPN, not the HTTP/2 libwebsockets would choose; it needs no
client certificate there and signs in with a user name, and such an
administrator may move private keys, as the connection is TLS. Nothing of
this holds on a plain websockets listener, or on certmgr's other ports."""

import json
import os
import ssl
import subprocess
import time
import unittest
import uuid

import paho.mqtt.client as mqtt

from harness import Broker, BrokerTest, Workdir, control, free_port, https_get, ok, openssl, pki, read

PAGE = "<!doctype html><title>console</title><p>certmgr console test page</p>\n"


def alpn(port, offer):
    out = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-alpn", offer],
                         input=b"", capture_output=True, timeout=20).stdout.decode(errors="replace")
    for line in out.splitlines():
        if line.startswith("ALPN protocol:") or line.startswith("No ALPN negotiated"):
            return line
    raise AssertionError("no ALPN line from s_client:\n" + out)


class WssAdmin:
    """A user-name administrator over wss, as the console is."""

    def __init__(self, port, user, password, cert=None, key=None, tls=True):
        self.answers = {}
        self.c = mqtt.Client("console-" + uuid.uuid4().hex[:8], transport="websockets", protocol=mqtt.MQTTv311)
        self.c.username_pw_set(user, password)
        if tls:
            self.c.tls_set(cert_reqs=ssl.CERT_NONE, certfile=cert, keyfile=key)
            self.c.tls_insecure_set(True)
        self.rc = []
        self.c.on_connect = lambda cl, u, f, rc: self.rc.append(rc)
        self.c.on_message = self.on_message
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        self.wait(lambda: self.rc)

    def wait(self, cond, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline and not cond():
            time.sleep(0.05)
        return cond()

    def on_message(self, client, userdata, msg):
        for r in json.loads(msg.payload).get("responses", []):
            self.answers[r.get("correlationData")] = r

    def send(self, command, **fields):
        corr = uuid.uuid4().hex
        self.c.subscribe("$CONTROL/certmgr/v1/response")
        time.sleep(0.2)
        body = dict(command=command, correlationData=corr, **fields)
        self.c.publish("$CONTROL/certmgr/v1", json.dumps({"commands": [body]}))
        if not self.wait(lambda: corr in self.answers):
            raise AssertionError("no answer to %s" % command)
        return self.answers[corr]

    def close(self):
        self.c.loop_stop()
        self.c.disconnect()


class ConsoleListenerTest(BrokerTest):
    """A broker of its own listeners; BrokerTest's tearDown stops it."""
    # The lines of a plain websockets listener beside the TLS ones, or
    # None for none.
    plain_websockets = None

    def setUp(self):
        self.work = Workdir()
        self.socks = []
        store = self.work.store
        www = self.work.file("www")
        os.makedirs(www)
        with open(os.path.join(www, "index.html"), "w") as f:
            f.write(PAGE)
        os.chmod(www, 0o755)
        os.chmod(os.path.join(www, "index.html"), 0o644)
        self.passwd = self.work.file("passwd")
        subprocess.run(["mosquitto_passwd", "-b", "-c", self.passwd, "opsadmin", "ops-pw"], check=True)
        os.chmod(self.passwd, 0o644)
        self.mqtt_port, self.console_port, self.ws_port = free_port(), free_port(), free_port()
        self.plain_port = free_port()
        ws = "listener %d\nprotocol websockets\n%scertfile %s/listener/websockets.crt\nkeyfile %s/listener/websockets.key"
        listeners = ["listener %d 127.0.0.1\ncertfile %s/listener/mqtt.crt\nkeyfile %s/listener/mqtt.key"
                     % (self.mqtt_port, store, store),
                     ws % (self.console_port, "http_dir %s\n" % www, store, store),
                     ws % (self.ws_port, "", store, store),
                     "listener %d 127.0.0.1" % self.plain_port]
        if self.plain_websockets is not None:
            self.plain_ws_port = free_port()
            listeners.append("listener %d\nprotocol websockets%s" % (self.plain_ws_port, self.plain_websockets))
        self.b = Broker(self.work, port=self.mqtt_port,
                        plugin_opts={"mqtt_ports": str(self.mqtt_port), "console_ports": str(self.console_port),
                                     "websockets_ports": str(self.ws_port), "admin_users": "opsadmin"},
                        listeners=listeners, extra="password_file %s" % self.passwd)
        self.b.start()
        ok(self.b, "addCA", tenant="default", certificate=read(pki("ca-a.pem")))

    def key_pair(self, cn):
        key, pem = self.work.file(cn + ".key"), self.work.file(cn + ".pem")
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
                "-out", pem, "-subj", "/CN=" + cn, "-days", "30")
        return read(pem), read(key)


class ConsoleListener(ConsoleListenerTest):
    def test_a_browser_gets_http11_not_h2(self):
        # What a browser offers, and h2 alone: certmgr chooses HTTP/1.1 or
        # nothing, on both of its websockets listeners.
        for port in (self.console_port, self.ws_port):
            self.assertEqual(alpn(port, "h2,http/1.1"), "ALPN protocol: http/1.1")
            self.assertEqual(alpn(port, "h2"), "No ALPN negotiated")
        status, body, proto = https_get(self.console_port)
        self.assertEqual((status, body, proto), (200, PAGE, "http/1.1"))

    def test_the_console_port_alone_needs_no_client_certificate(self):
        self.assertEqual(https_get(self.console_port)[0], 200)
        # Devices' websockets listener still requires one.
        with self.assertRaises((ssl.SSLError, ConnectionError)):
            https_get(self.ws_port)
        # A certificate the tenant does not trust is refused on the console
        # port as anywhere, and lands on the rejected list.
        with self.assertRaises((ssl.SSLError, ConnectionError)):
            https_get(self.console_port, cert=pki("dev-b1.pem"), key=pki("dev-b1.key"))
        rejected = ok(self.b, "listRejected")["rejected"]
        self.assertTrue(any(r.get("tenant") == "default" for r in rejected), rejected)
        # A device's own certificate is verified there, and identifies it.
        self.assertEqual(https_get(self.console_port, cert=pki("dev-a1.pem"), key=pki("dev-a1.key"))[0], 200)

    def test_no_certificate_is_no_device(self):
        # A client without a certificate on the console port is not a
        # device: a device id is refused, whatever the password file says.
        c = WssAdmin(self.console_port, "opsadmin", "ops-pw")
        c.close()
        self.assertEqual(c.rc, [0])
        dev = mqtt.Client("d:default:sensor:a1", transport="websockets", protocol=mqtt.MQTTv311)
        dev.username_pw_set("opsadmin", "ops-pw")
        dev.tls_set(cert_reqs=ssl.CERT_NONE)
        dev.tls_insecure_set(True)
        got = []
        dev.on_connect = lambda cl, u, f, rc: got.append(rc)
        dev.connect("127.0.0.1", self.console_port)
        dev.loop_start()
        deadline = time.time() + 10
        while time.time() < deadline and not got:
            time.sleep(0.05)
        dev.loop_stop()
        self.assertEqual(got[:1], [5])
        wrong = WssAdmin(self.console_port, "opsadmin", "not-the-password")
        wrong.close()
        self.assertEqual(wrong.rc[:1], [5])

    def test_a_user_name_administrator_over_wss_moves_private_keys(self):
        pem, key = self.key_pair("console.test")
        a = WssAdmin(self.console_port, "opsadmin", "ops-pw")
        try:
            r = a.send("addServerCertificate", slot="bridge", certificate=pem, privateKey=key)
            self.assertNotIn("error", r)
            new = r["data"]["certificate"]["id"]
            r = a.send("getServerCertificate", slot="bridge", id=new, includePrivateKey=True)
            self.assertNotIn("error", r)
            self.assertIn("PRIVATE KEY", r["data"]["certificate"]["privateKey"])
        finally:
            a.close()
        ids = [c["id"] for c in ok(self.b, "listServerCertificates", slot="bridge")["certificates"]]
        self.assertIn(new, ids)
        # The same administrator over MQTT on plain TCP gets no key.
        pem2, key2 = self.key_pair("plain.test")
        r = control(self.b, [{"command": "addServerCertificate", "slot": "bridge", "certificate": pem2, "privateKey": key2}],
                    extra_args=["-p", str(self.plain_port), "-u", "opsadmin", "-P", "ops-pw"])
        self.assertIn("only over TLS", r["responses"][0].get("error", ""))
        self.assertEqual(len(ok(self.b, "listServerCertificates", slot="bridge")["certificates"]), 2)


class PlainWebsocketsListener(ConsoleListenerTest):
    """With one plain websockets listener, a websockets connection may be
    plain: no private key for a user name over websockets, even over the
    console's TLS listener."""
    plain_websockets = ""

    def test_keys_are_withheld(self):
        pem, key = self.key_pair("console.test")
        # Over the console's TLS listener, and over the plain one, where
        # the key would cross the network in the clear.
        for port, tls in ((self.console_port, True), (self.plain_ws_port, False)):
            a = WssAdmin(port, "opsadmin", "ops-pw", tls=tls)
            try:
                self.assertEqual(a.rc, [0])
                r = a.send("addServerCertificate", slot="bridge", certificate=pem, privateKey=key)
                # The rest of the API still works there.
                listed = a.send("listServerCertificates", slot="bridge")
            finally:
                a.close()
            self.assertIn("only over TLS", r.get("error", ""))
            self.assertNotIn("error", listed)
        self.assertEqual(len(ok(self.b, "listServerCertificates", slot="bridge")["certificates"]), 1)


class PskHintWebsocketsListener(PlainWebsocketsListener):
    """A psk_hint does not make a websockets listener TLS: Mosquitto starts
    it plain (libwebsockets has no TLS-PSK)."""
    plain_websockets = "\npsk_hint certmgr"


class ConsolePortChecks(unittest.TestCase):
    def test_a_console_port_must_be_a_tls_websockets_listener(self):
        for block in ("listener {p} 127.0.0.1\ncertfile {s}/listener/mqtt.crt\nkeyfile {s}/listener/mqtt.key",
                      "listener {p}\nprotocol websockets", None):
            work = Workdir()
            try:
                port, console = free_port(), free_port()
                listeners = ["listener %d 127.0.0.1\ncertfile %s/listener/mqtt.crt\nkeyfile %s/listener/mqtt.key"
                             % (port, work.store, work.store)]
                if block:
                    listeners.append(block.format(p=console, s=work.store))
                # The store's listener files exist only once certmgr made
                # them: a first start without the console port.
                first = Broker(work, port=port, plugin_opts={"mqtt_ports": str(port)}, listeners=listeners[:1])
                first.start()
                self.assertEqual(first.stop(), 0)
                b = Broker(work, port=port, plugin_opts={"mqtt_ports": str(port), "console_ports": str(console)},
                           listeners=listeners)
                b.start(expect_running=False)
                self.assertIn("plugin_opt_console_ports: port %d is not a websockets listener with a certfile" % console,
                              b.log())
            finally:
                work.cleanup()

    def test_a_malformed_or_doubled_console_port_is_refused(self):
        work = Workdir()
        try:
            port = free_port()
            for value, says in (("88x5", "plugin_opt_console_ports: '88x5' is not a list of ports"),
                                (str(port), "port %d is listed twice (plugin_opt_console_ports)" % port)):
                b = Broker(work, port=port, plugin_opts={"mqtt_ports": str(port), "console_ports": value})
                b.start(expect_running=False)
                self.assertIn("certmgr: refusing to start: " + says, b.log())
            # Nothing was made: the store comes only with a start.
            self.assertFalse(os.path.exists(os.path.join(work.store, "store.json")))
        finally:
            work.cleanup()


if __name__ == "__main__":
    unittest.main()
