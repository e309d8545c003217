"""A fleet on loopback for the tests and the benchmark: an etcd cluster of
real Debian etcd members, broker nodes with the plugin on the etcd back
end, and HAProxy in TCP mode routing by SNI in front. Everything started
here is stopped by whoever started it (and, as a last resort, at exit)."""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
import base64

import harness
from harness import Broker, Workdir, free_port

ETCD = shutil.which("etcd") or "/usr/bin/etcd"
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


def b64(s):
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


class EtcdCluster:
    """n members on loopback, each with its data directory in a temporary
    directory of its own."""

    def __init__(self, n=3, tls=None):
        """tls: {"cert", "key", "ca"} for https with client certificates
        required, or None for http."""
        self.tls = tls
        self.scheme = "https" if tls else "http"
        self.dir = tempfile.mkdtemp(prefix="certmgr-etcd-", dir="/tmp")
        self.members = []
        for i in range(n):
            self.members.append({"name": "m%d" % i, "client": free_port(), "peer": free_port(), "proc": None,
                                 "data": os.path.join(self.dir, "m%d" % i), "log": os.path.join(self.dir, "m%d.log" % i)})
        self.cluster = ",".join("%s=http://127.0.0.1:%d" % (m["name"], m["peer"]) for m in self.members)
        self.token = "t%d" % os.getpid()

    def endpoints(self):
        return ",".join("%s://127.0.0.1:%d" % (self.scheme, m["client"]) for m in self.members)

    def start_member(self, i):
        m = self.members[i]
        if m["proc"] is not None and m["proc"].poll() is None:
            return
        argv = [ETCD, "--name", m["name"], "--data-dir", m["data"],
                "--listen-client-urls", "%s://127.0.0.1:%d" % (self.scheme, m["client"]),
                "--advertise-client-urls", "%s://127.0.0.1:%d" % (self.scheme, m["client"]),
                "--listen-peer-urls", "http://127.0.0.1:%d" % m["peer"],
                "--initial-advertise-peer-urls", "http://127.0.0.1:%d" % m["peer"],
                "--initial-cluster", self.cluster, "--initial-cluster-state", "new",
                "--initial-cluster-token", self.token, "--log-level", "warn"]
        if self.tls:
            argv += ["--cert-file", self.tls["cert"], "--key-file", self.tls["key"], "--client-cert-auth",
                     "--trusted-ca-file", self.tls["ca"]]
        with open(m["log"], "ab") as log:
            m["proc"] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        harness._live.append(m["proc"])

    def start(self, timeout=20):
        for i in range(len(self.members)):
            self.start_member(i)
        self.wait_healthy(timeout)

    def wait_healthy(self, timeout=20, member=None):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                self.call("/v3/kv/range", {"key": b64("health")}, member=member)
                return
            except Exception:
                time.sleep(0.1)
        raise AssertionError("etcd did not come up:\n" + self.logs())

    def stop_member(self, i, sig=signal.SIGKILL):
        m = self.members[i]
        if m["proc"] and m["proc"].poll() is None:
            m["proc"].send_signal(sig)
            m["proc"].wait(10)
        m["proc"] = None

    def stop(self):
        for i in range(len(self.members)):
            self.stop_member(i, signal.SIGTERM)

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def logs(self):
        out = ""
        for m in self.members:
            try:
                with open(m["log"], errors="replace") as f:
                    out += "--- %s\n%s" % (m["name"], f.read()[-3000:])
            except OSError:
                pass
        return out

    def call(self, path, body, member=None, timeout=5):
        """One JSON gateway request to a live member (or the one given)."""
        last = None
        order = [member] if member is not None else range(len(self.members))
        for i in order:
            m = self.members[i]
            if m["proc"] is None:
                continue
            req = urllib.request.Request("%s://127.0.0.1:%d%s" % (self.scheme, m["client"], path), data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
            ctx = None
            if self.tls:
                import ssl
                ctx = ssl.create_default_context(cafile=self.tls["ca"])
                ctx.check_hostname = False
                ctx.load_cert_chain(self.tls["client_cert"], self.tls["client_key"])
            try:
                with urllib.request.urlopen(req, timeout=timeout, context=ctx) as r:
                    return json.loads(r.read())
            except Exception as e:
                last = e
        raise AssertionError("no etcd member answered %s: %s" % (path, last))

    def get(self, key):
        r = self.call("/v3/kv/range", {"key": b64(key)})
        kvs = r.get("kvs", [])
        return (base64.b64decode(kvs[0].get("value", "")), int(kvs[0]["mod_revision"])) if kvs else (None, 0)

    def keys(self, prefix):
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        r = self.call("/v3/kv/range", {"key": b64(prefix), "range_end": b64(end), "keys_only": True})
        return [base64.b64decode(kv["key"]).decode() for kv in r.get("kvs", [])]

    def revision(self):
        return int(self.call("/v3/kv/range", {"key": b64("x")})["header"]["revision"])

    def compact(self, rev):
        self.call("/v3/kv/compaction", {"revision": str(rev), "physical": True})


def passphrase_file(path):
    with open(path, "w") as f:
        f.write("fleet-test-passphrase\n")
    os.chmod(path, 0o644)
    return path


class Node:
    """A broker node of the fleet: its own work directory (store = the
    node's cache) and ports."""

    def __init__(self, etcd, name, prefix, passfile, extra_opts=None, sys_interval=1):
        self.work = Workdir()
        self.name = name
        opts = {"store": "etcd", "etcd_endpoints": etcd.endpoints(), "etcd_prefix": prefix,
                "key_passphrase_file": passfile, "node_name": name}
        opts.update(extra_opts or {})
        self.broker = Broker(self.work, plugin_opts=opts, extra="sys_interval %d" % sys_interval)
        self.port = self.broker.port

    def start(self, **kw):
        rc = self.broker.start(**kw)
        if rc is None:
            # Keys are encrypted at rest: the listener files hold a
            # placeholder, the slot's default is what is served.
            with open(os.path.join(self.work.store, "slots", "mqtt", "slot.json")) as f:
                slot = json.load(f)
            self.work.admin_cafile = os.path.join(self.work.store, "slots", "mqtt", slot["default"] + ".crt")
        return rc

    def stop(self, sig=signal.SIGTERM):
        return self.broker.stop(sig)

    def log(self):
        return self.broker.log()

    def cleanup(self):
        self.work.cleanup()


HAPROXY_CONF = """global
    maxconn 8000
    nbthread %(threads)d
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend mqtts
    bind 127.0.0.1:%(port)d
    tcp-request inspect-delay 5s
    tcp-request content accept if { req_ssl_hello_type 1 }
%(rules)s
    default_backend all
%(backends)s
backend all
    balance roundrobin
%(servers)s
"""


class HAProxy:
    """HAProxy in TCP mode: an SNI that starts with "<node name>." goes to
    that node, any other is balanced over all of them."""

    def __init__(self, nodes, threads=1):
        self.dir = tempfile.mkdtemp(prefix="certmgr-haproxy-", dir="/tmp")
        self.port = free_port()
        rules = "".join("    use_backend be_%s if { req.ssl_sni -m beg %s. }\n" % (n.name, n.name) for n in nodes)
        backends = "".join("backend be_%s\n    server %s 127.0.0.1:%d\n" % (n.name, n.name, n.port) for n in nodes)
        servers = "".join("    server %s 127.0.0.1:%d\n" % (n.name, n.port) for n in nodes)
        self.conf = os.path.join(self.dir, "haproxy.cfg")
        with open(self.conf, "w") as f:
            f.write(HAPROXY_CONF % {"threads": threads, "port": self.port, "rules": rules, "backends": backends, "servers": servers})
        self.proc = None

    def start(self):
        with open(os.path.join(self.dir, "haproxy.log"), "ab") as log:
            self.proc = subprocess.Popen([HAPROXY, "-f", self.conf, "-db"], stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        harness._live.append(self.proc)
        deadline = time.time() + 10
        import socket
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        with open(os.path.join(self.dir, "haproxy.log"), errors="replace") as f:
            raise AssertionError("haproxy did not come up:\n" + f.read())

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
