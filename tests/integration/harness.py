"""Real mosquitto processes with the built certmgr plugin, for the
integration tests. Every process started here is stopped by the test that
started it (and, as a last resort, at interpreter exit)."""

import atexit
import hashlib
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time

PLUGIN = os.environ.get("CERTMGR_PLUGIN")
SANITIZE = os.environ.get("CERTMGR_SANITIZE") == "1"
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

    def start(self, expect_running=True, timeout=15):
        env = dict(os.environ)
        env.update(sanitizer_env())
        self._log = open(self.logfile, "ab")
        self._log_start = self._log.tell()
        self.proc = subprocess.Popen(["mosquitto", "-c", self.conf], stdout=self._log, stderr=subprocess.STDOUT,
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
