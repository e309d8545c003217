"""Real mosquitto processes with the built certmgr plugin, for the
integration tests. Every process started here is stopped by the test that
started it (and, as a last resort, at interpreter exit)."""

import atexit
import hashlib
import json
import os
import pwd
import select
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

PLUGIN = os.environ.get("CERTMGR_PLUGIN")
SANITIZE = os.environ.get("CERTMGR_SANITIZE") == "1"
VALGRIND = os.environ.get("CERTMGR_VALGRIND") == "1"
SOURCE_DIR = os.environ.get("CERTMGR_SOURCE_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
BROKER_USER = "mosquitto"

_live = []


def _kill_leftovers():
    for p in _live:
        if p.poll() is None:
            p.kill()
            p.wait()


atexit.register(_kill_leftovers)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def broker_uid_gid():
    pw = pwd.getpwnam(BROKER_USER)
    return pw.pw_uid, pw.pw_gid


def tree_digest(path):
    """SHA-256 over every name, mode and content below path."""
    h = hashlib.sha256()
    for root, dirs, files in sorted(os.walk(path)):
        dirs.sort()
        for name in sorted(dirs + files):
            p = os.path.join(root, name)
            st = os.lstat(p)
            h.update(os.path.relpath(p, path).encode() + b"\0")
            h.update(str(st.st_mode).encode())
            if os.path.isfile(p):
                with open(p, "rb") as f:
                    h.update(f.read())
    return h.hexdigest()


def sanitizer_env():
    if not SANITIZE:
        return {}
    libs = []
    for lib in ("libasan.so", "libubsan.so"):
        out = subprocess.run(["gcc", "-print-file-name=" + lib], capture_output=True, text=True).stdout.strip()
        libs.append(out)
    return {
        "LD_PRELOAD": ":".join(libs),
        # The broker is not built with ASan: its own exit-time allocations
        # are not ours to judge. Errors in the plugin still abort.
        "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1",
        "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
    }


class Workdir:
    """A scratch directory the broker's user can read, holding a copy of
    the plugin and a store directory that user owns."""

    def __init__(self):
        self.path = tempfile.mkdtemp(prefix="certmgr-it-", dir="/tmp")
        os.chmod(self.path, 0o755)
        self.plugin = os.path.join(self.path, "mosquitto_certmgr.so")
        shutil.copy(PLUGIN, self.plugin)
        os.chmod(self.plugin, 0o755)
        self.store = os.path.join(self.path, "store")
        os.mkdir(self.store, 0o700)
        uid, gid = broker_uid_gid()
        os.chown(self.store, uid, gid)

    def file(self, name):
        return os.path.join(self.path, name)

    def cleanup(self):
        # The brokers' logs outlive the test: test_log_hygiene.py reads
        # those of the whole suite for secrets.
        logdir = os.environ.get("CERTMGR_LOG_DIR")
        if logdir and os.path.isdir(self.path):
            os.makedirs(logdir, exist_ok=True)
            for name in os.listdir(self.path):
                if name.startswith("broker-") and name.endswith(".log"):
                    shutil.copy(os.path.join(self.path, name),
                                os.path.join(logdir, "%s-%s" % (os.path.basename(self.path), name)))
        shutil.rmtree(self.path, ignore_errors=True)


class Broker:
    def __init__(self, work, port=None, extra="", plugin_opts=None, listeners=None,
                 per_listener_settings=None, conf_name="mosquitto.conf"):
        self.work = work
        self.port = port or free_port()
        self.conf = work.file(conf_name)
        self.logfile = work.file("broker-%d.log" % self.port)
        self.proc = None
        opts = {"store_dir": work.store}
        opts.update(plugin_opts or {})
        lines = []
        if per_listener_settings is not None:
            lines.append("per_listener_settings %s" % per_listener_settings)
        lines += [
            "set_tcp_nodelay true",
            "allow_anonymous true",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
        ]
        plugin_lines = ["plugin %s" % work.plugin]
        plugin_lines += ["plugin_opt_%s %s" % (k, v) for k, v in opts.items()]
        if per_listener_settings != "true":
            lines += plugin_lines
        if listeners is None:
            listeners = [self.tls_listener(self.port)]
        for block in listeners:
            lines.append(block)
            if per_listener_settings == "true":
                lines += plugin_lines
        lines.append(extra)
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def tls_listener(self, port, slot="mqtt", certfile=None, keyfile=None):
        certfile = certfile or os.path.join(self.work.store, "listener", slot + ".crt")
        keyfile = keyfile or os.path.join(self.work.store, "listener", slot + ".key")
        return "listener %d localhost\ncertfile %s\nkeyfile %s" % (port, certfile, keyfile)

    def start(self, expect_running=True, timeout=15 * (4 if VALGRIND else 1)):
        env = dict(os.environ)
        env.update(sanitizer_env())
        self._log = open(self.logfile, "ab")
        self._log_start = self._log.tell()
        argv = ["mosquitto", "-c", self.conf]
        if VALGRIND:
            # The whole broker under memcheck: errors and definite leaks of
            # the plugin end up in the broker's log (and fail the exit code).
            argv = ["valgrind", "--error-exitcode=99", "--keep-debuginfo=yes", "--leak-check=full", "--errors-for-leak-kinds=definite",
                    "--show-leak-kinds=definite", "--num-callers=30",
                    "--suppressions=" + os.path.join(SOURCE_DIR, "tests", "valgrind.supp")] + argv
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT,
                                     cwd=self.work.path, env=env, start_new_session=True)
        _live.append(self.proc)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                self._log.close()
                self.proc = None
                if expect_running:
                    raise AssertionError("broker exited with %d:\n%s" % (rc, self.log()))
                return rc
            if "mosquitto version" in self.run_log() and " running" in self.run_log():
                if not expect_running:
                    raise AssertionError("broker started, it should have refused:\n" + self.log())
                return None
            time.sleep(0.05)
        raise AssertionError("broker did not come up in %ds:\n%s" % (timeout, self.log()))

    def stop(self, sig=signal.SIGTERM, timeout=15):
        """Stops the broker and returns its exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("broker did not stop on signal %d:\n%s" % (sig, self.log()))
        self._log.close()
        rc = self.proc.returncode
        self.proc = None
        return rc

    def signal(self, sig):
        self.proc.send_signal(sig)

    def log(self):
        """The log of every run of this broker."""
        with open(self.logfile, "r", errors="replace") as f:
            return f.read()

    def run_log(self):
        """The log of the latest run only."""
        with open(self.logfile, "rb") as f:
            f.seek(self._log_start)
            return f.read().decode(errors="replace")

    def wait_log(self, text, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if text in self.run_log():
                return
            time.sleep(0.05)
        raise AssertionError("'%s' not in the broker's log:\n%s" % (text, self.log()))


class BrokerTest(unittest.TestCase):
    """One broker per test, with the class's plugin_opts and extra lines;
    sockets the test appends to self.socks are closed after it. The
    broker must stop cleanly, without a sanitizer report (and pass the
    class's check_log)."""
    plugin_opts = {}
    extra = ""

    def setUp(self):
        self.work = Workdir()
        self.b = Broker(self.work, plugin_opts=dict(self.plugin_opts), extra=self.extra)
        self.b.start()
        self.cafile = os.path.join(self.work.store, "listener", "mqtt.crt")
        self.socks = []

    def tearDown(self):
        for s in self.socks:
            s.close()
        rc = self.b.stop()
        log = self.b.log()
        self.work.cleanup()
        self.assertEqual(rc, 0, "broker exit code\n" + log)
        self.assertNotIn("AddressSanitizer", log)
        self.check_log(log)

    def check_log(self, log):
        """For a test class's own checks of the broker's whole log."""


def https_get(port, path="/index.html", cert=None, key=None):
    """(status, body, ALPN protocol) of a GET over TLS with h2 and
    http/1.1 offered, as a browser does; ssl.SSLError when the handshake
    is refused."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    if cert:
        ctx.load_cert_chain(cert, key)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw) as s:
            s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n" % (path, port)).encode())
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            proto = s.selected_alpn_protocol()
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
    return status, body.decode(errors="replace"), proto


def world_readable_copy(src, dst):
    """A copy of the tree src at dst that the broker's user can read (a
    built console in a build directory it may not reach)."""
    shutil.copytree(src, dst)
    os.chmod(dst, 0o755)
    for root, dirs, files in os.walk(dst):
        for d in dirs:
            os.chmod(os.path.join(root, d), 0o755)
        for f in files:
            os.chmod(os.path.join(root, f), 0o644)


def served_certificate(port, servername=None, host="localhost"):
    """The DER of the certificate the server presents, fetched with
    `openssl s_client`, and its SHA-256 id."""
    cmd = ["openssl", "s_client", "-connect", "%s:%d" % (host, port)]
    if servername:
        cmd += ["-servername", servername]
    out = subprocess.run(cmd, input=b"", capture_output=True, timeout=20)
    text = out.stdout.decode(errors="replace")
    start = text.find("-----BEGIN CERTIFICATE-----")
    end = text.find("-----END CERTIFICATE-----")
    if start < 0 or end < 0:
        raise AssertionError("no certificate from s_client:\n" + text + out.stderr.decode(errors="replace"))
    der = ssl.PEM_cert_to_DER_cert(text[start:end + len("-----END CERTIFICATE-----")] + "\n")
    return der, hashlib.sha256(der).hexdigest()


def cert_subject(der):
    out = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-subject", "-ext", "subjectAltName"],
                         input=der, capture_output=True, check=True)
    return out.stdout.decode()


# ----------------------------------------------------------------------
# Test PKI, control requests, MQTT clients

CTRL = os.environ.get("CERTMGR_CTRL")
_pki_dir = None


def test_pki():
    """The directory of the test PKI, made once per process by the
    project's script."""
    global _pki_dir
    if _pki_dir is None:
        _pki_dir = tempfile.mkdtemp(prefix="certmgr-pki-", dir="/tmp")
        os.chmod(_pki_dir, 0o755)
        subprocess.run([os.path.join(SOURCE_DIR, "tests", "pki", "make-test-pki"), _pki_dir],
                       check=True, capture_output=True)
        atexit.register(shutil.rmtree, _pki_dir, True)
    return _pki_dir


def pki(name):
    return os.path.join(test_pki(), name)


def admin_tls_args(work):
    """The local administrator's client options. The broker is verified
    against work.admin_cafile (the served self-signed certificate unless a
    test that rotates it says otherwise), not against the host name."""
    store = work.store
    cafile = getattr(work, "admin_cafile", None) or os.path.join(store, "listener", "mqtt.crt")
    return ["--insecure", "--cafile", cafile,
            "--cert", os.path.join(store, "admin", "admin.pem"),
            "--key", os.path.join(store, "admin", "admin.key")]


def control(broker, commands, host="localhost", extra_args=None, raw=None, timeout=None, hosts=None):
    """Sends one request with mosquitto_rr as the local administrator and
    returns the parsed response (None when no response came)."""
    import json
    if timeout is None:
        timeout = 40 if VALGRIND else 10
    payload = raw if raw is not None else json.dumps({"commands": commands})
    args = ["mosquitto_rr", "-h", host, "-p", str(broker.port), "-t", "$CONTROL/certmgr/v1",
            "-e", "$CONTROL/certmgr/v1/response", "-W", str(timeout)]
    args += extra_args if extra_args is not None else admin_tls_args(broker.work)
    if len(payload) > 100000 and extra_args is None and not hosts:
        # Too long for an argument, and mosquitto_rr 2.0.11 sends an empty
        # message with -f: the raw client.
        return control_raw(broker.port, broker.work.store, payload, timeout)
    args += ["-m", payload]
    if hosts:
        args = with_hosts(hosts, args)
    out = subprocess.run(args, capture_output=True, text=True, timeout=timeout + 10)
    if out.returncode != 0 or not out.stdout.strip():
        return None
    return json.loads(out.stdout)


def ok(broker, command, **fields):
    """Runs one command that must succeed; returns its data."""
    fields["command"] = command
    resp = control(broker, [fields])
    if resp is None:
        raise AssertionError("no response to %s" % command)
    r = resp["responses"][0]
    if "error" in r:
        raise AssertionError("%s failed: %s" % (command, r["error"]))
    return r.get("data", {})


def read(path):
    with open(path) as f:
        return f.read()


def openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True, capture_output=True)


def cert_id(path):
    """certmgr's id of the PEM certificate in path: the SHA-256 of its DER."""
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(read(path))).hexdigest()


def closed_within(sock, seconds):
    """Seconds until the broker closed the connection (never 0), or None."""
    start = time.time()
    while time.time() < start + seconds:
        r, _, _ = select.select([sock], [], [], 0.05)
        if r:
            try:
                if sock.recv(1024) == b"":
                    return max(time.time() - start, 1e-6)
            except (ssl.SSLError, OSError):
                return max(time.time() - start, 1e-6)
    return None


def ctl(broker, *args, port=None):
    """Runs certmgr_ctrl against the broker with the store's local admin
    credentials; returns (exit code, stdout, stderr)."""
    cmd = [CTRL, "--store", broker.work.store, "-p", str(port or broker.port)]
    if getattr(broker.work, "admin_cafile", None):
        cmd += ["--cafile", broker.work.admin_cafile]
    cmd += list(args)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    return out.returncode, out.stdout, out.stderr


def _mqtt_string(s):
    b = s.encode()
    return len(b).to_bytes(2, "big") + b


_contexts = {}


def _client_context(cafile, cert, key, max_version=None):
    """One SSLContext per set of credentials (and highest TLS version): a
    session can only be resumed through the context that made it."""
    k = (cafile, cert, key) if max_version is None else (cafile, cert, key, max_version)
    if k not in _contexts:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if max_version:
            ctx.maximum_version = max_version
        ctx.check_hostname = False
        if cafile:
            ctx.load_verify_locations(cafile)
            ctx.verify_mode = ssl.CERT_REQUIRED
        else:
            ctx.verify_mode = ssl.CERT_NONE
        if cert:
            ctx.load_cert_chain(cert, key)
        _contexts[k] = ctx
    return _contexts[k]


def mqtt_connect(port, clientid, sni=None, cert=None, key=None, username=None, password=None,
                 cafile=None, session=None, host="127.0.0.1", keep=False, max_version=None):
    """A TLS connection and an MQTT 3.1.1 CONNECT, by hand, so that SNI and
    session resumption are under the test's control (max_version: the
    highest TLS version offered, an ssl.TLSVersion). Returns a dict:
    result ("accepted", "refused:<code>", "tls-error:<reason>" or
    "closed"), session, reused, and sock when keep is true."""
    ctx = _client_context(cafile, cert, key, max_version)
    raw = socket.create_connection((host, port), timeout=10)
    out = {"session": None, "reused": False, "sock": None}
    try:
        s = ctx.wrap_socket(raw, server_hostname=sni, session=session)
    except (ssl.SSLError, OSError) as e:
        raw.close()
        out["result"] = "tls-error:%s" % getattr(e, "reason", e)
        return out
    flags = 0x02
    payload = _mqtt_string(clientid)
    if username is not None:
        flags |= 0x80
        payload += _mqtt_string(username)
    if password is not None:
        flags |= 0x40
        payload += _mqtt_string(password)
    var = _mqtt_string("MQTT") + bytes([4, flags, 0, 60])
    body = var + payload
    try:
        s.sendall(bytes([0x10, len(body)]) + body)
        ack = s.recv(4)
    except (ssl.SSLError, OSError) as e:
        s.close()
        out["result"] = "tls-error:%s" % getattr(e, "reason", e)
        return out
    out["session"] = s.session
    out["reused"] = s.session_reused
    if len(ack) < 4:
        out["result"] = "closed"
    elif ack[3] == 0:
        out["result"] = "accepted"
    else:
        out["result"] = "refused:%d" % ack[3]
    if keep and out["result"] == "accepted":
        out["sock"] = s
    else:
        try:
            s.sendall(b"\xe0\x00")
        except OSError:
            pass
        s.close()
    return out


def mqtt_publish(sock, topic, payload):
    body = _mqtt_string(topic) + payload.encode()
    n = len(body)
    length = b""
    while True:
        byte = n % 128
        n //= 128
        length += bytes([byte | (0x80 if n else 0)])
        if not n:
            break
    sock.sendall(b"\x30" + length + body)


def hosts_file(work, names):
    """An /etc/hosts copy that puts names on 127.0.0.1, for clients run
    under `unshare -m` (see with_hosts)."""
    path = work.file("hosts")
    with open("/etc/hosts") as f:
        base = f.read()
    with open(path, "w") as f:
        f.write(base + "\n127.0.0.1 " + " ".join(names) + "\n")
    return path


def with_hosts(hosts, argv):
    """argv run in a private mount namespace where /etc/hosts is hosts."""
    import shlex
    return ["unshare", "-m", "sh", "-c", "mount --bind %s /etc/hosts && exec %s" % (
        shlex.quote(hosts), " ".join(shlex.quote(a) for a in argv))]


def _read_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError("connection closed")
        data += chunk
    return data


def mqtt_read_packet(sock):
    """One MQTT packet: (first byte, body)."""
    first = _read_exact(sock, 1)[0]
    length, mult = 0, 1
    while True:
        b = _read_exact(sock, 1)[0]
        length += (b & 0x7f) * mult
        mult *= 128
        if not b & 0x80:
            break
    return first, _read_exact(sock, length)


def mqtt_subscribe(sock, topic):
    """Subscribes at QoS 0; returns the SUBACK's return code (0x80: refused)."""
    body = b"\x00\x01" + _mqtt_string(topic) + b"\x00"
    sock.sendall(bytes([0x82, len(body)]) + body)
    while True:
        first, body = mqtt_read_packet(sock)
        if first >> 4 == 9:
            return body[2]


def mqtt_messages(sock, seconds, first_only=False, count=None):
    """The (topic, payload) of every PUBLISH that arrives within seconds;
    stops early when the connection closes, or once the first (first_only)
    or count messages came."""
    out = []
    deadline = time.time() + seconds
    if first_only:
        count = 1
    while time.time() < deadline and (count is None or len(out) < count):
        sock.settimeout(max(0.01, deadline - time.time()))
        try:
            first, body = mqtt_read_packet(sock)
        except (socket.timeout, ssl.SSLError) as e:
            if isinstance(e, ssl.SSLError) and "timed out" not in str(e):
                break
            continue
        except (EOFError, OSError):
            break
        if first >> 4 == 3:
            n = int.from_bytes(body[:2], "big")
            topic = body[2:2 + n].decode()
            rest = body[2 + n:]
            if (first >> 1) & 3:
                rest = rest[2:]
            out.append((topic, rest))
    return out


def control_raw(port, store, payload, timeout=10, host="127.0.0.1"):
    """One control request of any size over a raw MQTT connection as the
    store's local administrator; the parsed response, or None."""
    import json
    r = mqtt_connect(port, "raw-admin-%d" % os.getpid(), host=host, keep=True,
                     cert=os.path.join(store, "admin", "admin.pem"), key=os.path.join(store, "admin", "admin.key"))
    if r["result"] != "accepted":
        return None
    sock = r["sock"]
    try:
        mqtt_subscribe(sock, "$CONTROL/certmgr/v1/response")
        mqtt_publish(sock, "$CONTROL/certmgr/v1", payload)
        got = mqtt_messages(sock, timeout, first_only=True)
    finally:
        sock.close()
    return json.loads(got[0][1]) if got else None


class CrlSender:
    """One MQTT v5 connection to the CRL topic, as the local administrator
    or as cert/key: send() publishes a payload with user properties and
    returns when the broker has acknowledged it; responses() waits for
    what came on the response topic."""

    def __init__(self, broker, client_id, cert=None, key=None):
        import queue
        import threading
        import paho.mqtt.client as mqtt
        store = broker.work.store
        self.got = queue.Queue()
        self.acked = set()
        self.cond = threading.Condition()
        subscribed = threading.Event()
        c = mqtt.Client(client_id=client_id, protocol=mqtt.MQTTv5)
        c.tls_set(ca_certs=os.path.join(store, "listener", "mqtt.crt"),
                  certfile=cert or os.path.join(store, "admin", "admin.pem"),
                  keyfile=key or os.path.join(store, "admin", "admin.key"))
        c.tls_insecure_set(True)

        def on_publish(client, userdata, mid):
            with self.cond:
                self.acked.add(mid)
                self.cond.notify_all()

        c.on_message = lambda client, userdata, msg: self.got.put(json.loads(msg.payload))
        c.on_subscribe = lambda client, userdata, mid, rc, props: subscribed.set()
        c.on_connect = lambda client, userdata, flags, rc, props=None: client.subscribe("$CONTROL/certmgr/v1/response")
        c.on_publish = on_publish
        c.connect("localhost", broker.port)
        c.loop_start()
        self.client = c
        if not subscribed.wait(20):
            self.close()
            raise AssertionError("the CRL sender %s did not get its subscription" % client_id)

    def send(self, data, **props):
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties
        p = Properties(PacketTypes.PUBLISH)
        if props:
            p.UserProperty = [(k, str(v)) for k, v in props.items()]
        info = self.client.publish("$CONTROL/certmgr/v1/crl", data, qos=1, properties=p)
        with self.cond:
            if not self.cond.wait_for(lambda: info.mid in self.acked, 30):
                raise AssertionError("part not acknowledged")

    def send_parts(self, data, part, upload, tenant="acme", corr=None):
        for off in range(0, len(data), part):
            extra = {"correlationData": corr} if corr else {}
            self.send(data[off:off + part], tenant=tenant, upload=upload, offset=off, size=len(data), **extra)

    def responses(self, timeout=20):
        """The responses that came within timeout (waiting for the first)."""
        import queue
        out = []
        try:
            out.append(self.got.get(timeout=timeout))
            while True:
                out.append(self.got.get(timeout=0.5))
        except queue.Empty:
            pass
        return out

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def crl_topic(broker, data, tenant="acme", corr=None, cert=None, key=None, timeout=20):
    """Publishes data as it is on $CONTROL/certmgr/v1/crl (MQTT v5, the
    tenant a user property) as the local administrator, or as cert/key;
    the parsed response, or None when none came."""
    import json
    import threading
    import paho.mqtt.client as mqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties
    store = broker.work.store
    got = []
    done = threading.Event()
    c = mqtt.Client(client_id="crl-topic-%d" % os.getpid(), protocol=mqtt.MQTTv5)
    c.tls_set(ca_certs=os.path.join(store, "listener", "mqtt.crt"),
              certfile=cert or os.path.join(store, "admin", "admin.pem"), keyfile=key or os.path.join(store, "admin", "admin.key"))
    c.tls_insecure_set(True)

    def on_message(client, userdata, msg):
        got.append(json.loads(msg.payload))
        done.set()

    def on_subscribe(client, userdata, mid, reason_codes, properties):
        props = Properties(PacketTypes.PUBLISH)
        pairs = [] if tenant is None else [("tenant", tenant)]
        if corr:
            pairs.append(("correlationData", corr))
        if pairs:
            props.UserProperty = pairs
        client.publish("$CONTROL/certmgr/v1/crl", data, qos=1, properties=props)

    def on_connect(client, userdata, flags, rc, properties=None):
        client.subscribe("$CONTROL/certmgr/v1/response")

    c.on_message = on_message
    c.on_subscribe = on_subscribe
    c.on_connect = on_connect
    c.connect("localhost", broker.port)
    c.loop_start()
    try:
        done.wait(timeout)
    finally:
        c.disconnect()
        c.loop_stop()
    return got[0] if got else None
