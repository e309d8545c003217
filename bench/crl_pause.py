#!/usr/bin/env python3
"""Benchmark: the longest pause of the broker thread while a CRL of a
million entries is brought in, four ways: a refreshCRL download, an
addCA whose CRL URL serves it, a uploadCRL of it (base64 DER in the
request, about 30 MB), and a CRL of 1.4 million entries (over 30 MB of
DER) published as it is on $CONTROL/certmgr/v1/crl, in one PUBLISH and
in parts of 1 MiB (what certmgr_ctrl uploadCRL sends).

A client pings the broker (MQTT PINGREQ) every 5 ms and records each
round trip; another keeps opening mutual-TLS device connections. The
figures of a quiet period and of the period around each command are
printed side by side, with an addCA that has no CRL for reference (the
store's own writes and fsyncs on the broker thread, as for any command).
Target: no pause over 50 ms.

    bench/crl_pause.py BUILD_DIR      (run as root; BUILD_DIR has the plugin)
"""

import base64
import os
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "build"))
os.environ.setdefault("CERTMGR_PLUGIN", os.path.join(build, "mosquitto_certmgr.so"))
os.environ.setdefault("CERTMGR_SOURCE_DIR", os.path.join(HERE, ".."))

from crlserver import CrlServer  # noqa: E402
from harness import Broker, CrlSender, Workdir, crl_topic, free_port, ok, pki, read, mqtt_connect  # noqa: E402


def pinger(port, rtts, stop):
    """Plain MQTT pings on the broker's loopback listener, every 5 ms."""
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    body = b"\x00\x04MQTT\x04\x02\x00\x3c\x00\x04ping"
    s.sendall(bytes([0x10, len(body)]) + body)
    s.recv(4)
    while not stop.is_set():
        t0 = time.perf_counter()
        s.sendall(b"\xc0\x00")
        s.recv(2)
        rtts.append((time.perf_counter() - t0) * 1000)
        time.sleep(0.005)
    s.close()


def load(port, cafile, stop, count):
    while not stop.is_set():
        r = mqtt_connect(port, "d:acme:sensor:a1", sni="acme.test", cafile=cafile,
                         cert=pki("dev-a1.pem"), key=pki("dev-a1.key"))
        count[0] += r["result"] == "accepted"


def measure(b, cafile, seconds, action=None):
    rtts, stop, count = [], threading.Event(), [0]
    threads = [threading.Thread(target=pinger, args=(b.ping_port, rtts, stop)),
               threading.Thread(target=load, args=(b.port, cafile, stop, count))]
    for t in threads:
        t.start()
    time.sleep(0.5)
    started = time.time()
    if action:
        action()
    while time.time() - started < seconds:
        time.sleep(0.1)
    stop.set()
    for t in threads:
        t.join()
    return rtts, count[0]


def main():
    if os.geteuid() != 0:
        sys.exit("run as root: the broker drops to the mosquitto user")
    work = Workdir()
    files = work.file("crls")
    os.mkdir(files)
    http = CrlServer(files)
    serial = subprocess.run(["openssl", "x509", "-in", pki("dev-a2.pem"), "-noout", "-serial"],
                            capture_output=True, text=True, check=True).stdout.strip().split("=")[1]
    shutil.copy(pki("crl-a-empty.pem"), os.path.join(files, "live.crl"))
    ping_port = free_port()
    b = Broker(work, extra="listener %d 127.0.0.1\nallow_anonymous true" % ping_port,
               plugin_opts={"max_payload": str(64 * 1024 * 1024)})
    b.ping_port = ping_port
    b.start()
    try:
        cafile = os.path.join(work.store, "listener", "mqtt.crt")
        ok(b, "createTenant", tenant="acme", hostnames=["acme.test"])
        ok(b, "createTenant", tenant="beta", hostnames=["beta.test"])
        ca = ok(b, "addCA", tenant="acme", certificate=read(pki("ca-a.pem")),
                crlUrl=http.url("/files/live.crl"))["ca"]["id"]
        subprocess.run([os.path.join(build, "tests", "make_big_crl"), pki("ca-a.pem"), pki("ca-a.key"), "1000000",
                        os.path.join(files, "live.crl"), serial], check=True)
        size = os.path.getsize(os.path.join(files, "live.crl"))
        with open(os.path.join(files, "live.crl"), "rb") as f:
            b64 = base64.b64encode(f.read()).decode()
        bigger = os.path.join(files, "bigger.crl")
        subprocess.run([os.path.join(build, "tests", "make_big_crl"), pki("ca-a.pem"), pki("ca-a.key"), "1400000",
                        bigger, serial], check=True)
        with open(bigger, "rb") as f:
            der = f.read()

        def topic(name):
            def action():
                t0 = time.time()
                r = crl_topic(b, der, timeout=120)
                if r is None or "error" in r["responses"][0]:
                    raise AssertionError("the CRL topic failed: %s" % r)
                took[name] = (time.time() - t0, r["responses"][0]["data"])
            return action

        def parts(name):
            def action():
                t0 = time.time()
                c = CrlSender(b, "crl-parts-bench")
                try:
                    c.send_parts(der, 1024 * 1024, "bench", corr="bench")
                    r = c.responses(120)
                finally:
                    c.close()
                if not r or "error" in r[0]["responses"][0]:
                    raise AssertionError("the CRL topic in parts failed: %s" % r)
                took[name] = (time.time() - t0, r[0]["responses"][0]["data"])
            return action

        def timed(name, command, **fields):
            def action():
                t0 = time.time()
                r = ok(b, command, **fields)
                took[name] = (time.time() - t0, r)
            return action

        took = {}
        rows = [("quiet (same run)",) + measure(b, cafile, 5)]
        ok(b, "createTenant", tenant="gamma", hostnames=["gamma.test"])
        for name, action in (
                ("addCA, no CRL (reference)", timed("addCA, no CRL (reference)", "addCA", tenant="gamma",
                                                    certificate=read(pki("ca-a.pem")))),
                ("refreshCRL (download)", timed("refreshCRL (download)", "refreshCRL", tenant="acme", id=ca)),
                ("addCA (download)", timed("addCA (download)", "addCA", tenant="beta", certificate=read(pki("ca-a.pem")),
                                           crlUrl=http.url("/files/live.crl"))),
                ("uploadCRL (30 MB request)", timed("uploadCRL (30 MB request)", "uploadCRL", tenant="acme", crl=b64)),
                ("CRL topic (%.0f MB DER)" % (len(der) / 1e6), topic("CRL topic (%.0f MB DER)" % (len(der) / 1e6))),
                ("CRL topic, parts of 1 MiB", parts("CRL topic, parts of 1 MiB"))):
            rows.append((name,) + measure(b, cafile, 6, action))
        print("certmgr CRL pause benchmark: 1,000,001-entry CRL, %.1f MB; 1,400,001 entries on the CRL topic, %.1f MB"
              % (size / 1e6, len(der) / 1e6))
        for name, (seconds, r) in took.items():
            print("  %-26s answered in %.2f s" % (name, seconds))
        print("%-26s %8s %8s %8s %8s %8s" % ("", "pings", "p50 ms", "p99 ms", "max ms", "conns"))
        for name, r, c in rows:
            q = statistics.quantiles(r, n=100)
            print("%-26s %8d %8.2f %8.2f %8.2f %8d" % (name, len(r), statistics.median(r), q[98], max(r), c))
        print("longest broker pause: %s (target: under 50 ms)" %
              ", ".join("%s %.1f ms" % (name, max(r)) for name, r, c in rows[1:]))
    finally:
        if os.environ.get("BENCH_LOG"):
            print("\n".join(l for l in b.log().splitlines() if "DEBUG" in l))
        b.stop()
        http.stop()
        work.cleanup()


if __name__ == "__main__":
    main()
