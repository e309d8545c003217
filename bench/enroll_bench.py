#!/usr/bin/env python3
"""Benchmark: enrollment over MQTT. Claim devices ask for certificates
(auto mode) as fast as their connections allow, with an EC P-256 issuing
CA and then an RSA 4096 one; and createIssuingCA with an RSA 4096 key.
Meanwhile a client pings the broker (MQTT PINGREQ every 5 ms) on a plain
listener: the signatures and key generation run on the worker thread, so
the broker thread should not pause (target: under 50 ms).

Prints, per run: certificates issued, per second, the request's round
trip (p50, p99), and the pings' p50, p99 and maximum.

    bench/enroll_bench.py [BUILD_DIR] [--requests N] [--clients K]   (as root)
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

parser = argparse.ArgumentParser()
parser.add_argument("build", nargs="?", default=os.path.join(HERE, "..", "build"))
parser.add_argument("--requests", type=int, default=200)
parser.add_argument("--clients", type=int, default=4)
args = parser.parse_args()
build = os.path.abspath(args.build)
os.environ.setdefault("CERTMGR_PLUGIN", os.path.join(build, "mosquitto_certmgr.so"))
os.environ.setdefault("CERTMGR_SOURCE_DIR", os.path.join(HERE, ".."))

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

from harness import (Broker, Workdir, free_port, ok, mqtt_connect, mqtt_subscribe, mqtt_publish,  # noqa: E402
                     mqtt_messages)

ENROLL = "$CONTROL/certmgr/enroll/v1"
ANSWER = "$CONTROL/certmgr/enroll/v1/response"


def pinger(port, rtts, stop):
    import socket
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


def csrs(n, tag):
    out = []
    for i in range(n):
        key = ec.generate_private_key(ec.SECP256R1())
        req = x509.CertificateSigningRequestBuilder().subject_name(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "d:bench:%s-%d" % (tag, i))])).sign(key, hashes.SHA256())
        out.append(req.public_bytes(serialization.Encoding.PEM).decode())
    return out


def claimer(port, cafile, cert, key, name, todo, lat, issued, sni):
    r = mqtt_connect(port, name, sni=sni, cert=cert, key=key, cafile=cafile, keep=True)
    sock = r["sock"]
    mqtt_subscribe(sock, ANSWER)
    for csr in todo:
        t0 = time.perf_counter()
        mqtt_publish(sock, ENROLL, json.dumps({"csr": csr}))
        got = mqtt_messages(sock, 30, first_only=True)
        lat.append((time.perf_counter() - t0) * 1000)
        issued[0] += bool(got) and b"certificate" in got[0][1]
    sock.close()


def run(b, cafile, cert, key, tag):
    todo = csrs(args.requests, tag)
    rtts, lat, issued, stop = [], [], [0], threading.Event()
    ping = threading.Thread(target=pinger, args=(b.ping_port, rtts, stop))
    ping.start()
    time.sleep(0.3)
    workers = [threading.Thread(target=claimer, args=(b.port, cafile, cert, key, "bench-%s-%d" % (tag, i),
                                                      todo[i::args.clients], lat, issued, tag + ".bench"))
               for i in range(args.clients)]
    t0 = time.time()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    took = time.time() - t0
    stop.set()
    ping.join()
    return issued[0], took, lat, rtts


def timed(b, command, **fields):
    rtts, stop = [], threading.Event()
    ping = threading.Thread(target=pinger, args=(b.ping_port, rtts, stop))
    ping.start()
    time.sleep(0.3)
    t0 = time.time()
    ok(b, command, **fields)
    took = time.time() - t0
    time.sleep(0.3)
    stop.set()
    ping.join()
    return took, rtts


def q(v, p):
    return statistics.quantiles(v, n=100)[p - 1] if len(v) > 1 else (v[0] if v else 0)


def main():
    if os.geteuid() != 0:
        sys.exit("run as root: the broker drops to the mosquitto user")
    work = Workdir()
    ping_port = free_port()
    b = Broker(work, extra="listener %d 127.0.0.1\nallow_anonymous true" % ping_port)
    b.ping_port = ping_port
    b.start()
    try:
        cafile = os.path.join(work.store, "listener", "mqtt.crt")
        d = work.file("claim")
        os.mkdir(d)
        sh = lambda *a: subprocess.run(list(a), check=True, capture_output=True)  # noqa: E731
        sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", d + "/ca.key",
           "-out", d + "/ca.pem", "-subj", "/CN=Bench Claim CA", "-days", "2",
           "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        sh("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", d + "/c.key",
           "-out", d + "/c.csr", "-subj", "/CN=bench")
        sh("openssl", "x509", "-req", "-in", d + "/c.csr", "-CA", d + "/ca.pem", "-CAkey", d + "/ca.key", "-CAcreateserial",
           "-out", d + "/c.pem", "-days", "2")
        rows = []
        with open(d + "/ca.pem") as f:
            claim_ca = f.read()
        for tenant, key in (("ec", {"type": "ec", "curve": "P-256"}), ("rsa", {"type": "rsa", "bits": 4096})):
            ok(b, "createTenant", tenant=tenant, hostnames=[tenant + ".bench"])
            took, rtts = timed(b, "createIssuingCA", tenant=tenant, subject={"CN": "Bench %s CA" % tenant}, key=key)
            rows.append(("createIssuingCA, %s" % ("EC P-256" if tenant == "ec" else "RSA 4096"), None, took, [], rtts))
            ok(b, "addCA", tenant=tenant, certificate=claim_ca, purpose="claim")
            ok(b, "modifyTenant", tenant=tenant, enrollment={"mode": "auto"})
        for tenant in ("ec", "rsa"):
            issued, took, lat, rtts = run(b, cafile, d + "/c.pem", d + "/c.key", tenant)
            rows.append(("enroll, %s CA" % ("EC P-256" if tenant == "ec" else "RSA 4096"), issued, took, lat, rtts))
        print("certmgr enrollment benchmark: %d requests over %d claim connections" % (args.requests, args.clients))
        print("%-26s %7s %8s %8s %8s %8s %8s %8s" % ("", "issued", "per s", "p50 ms", "p99 ms", "ping p50", "ping p99", "ping max"))
        for name, issued, took, lat, rtts in rows:
            print("%-26s %7s %8s %8s %8s %8.2f %8.2f %8.2f" % (
                name, "-" if issued is None else issued, "%.1f s" % took if issued is None else "%.0f" % (issued / took),
                "%.1f" % q(lat, 50) if lat else "-", "%.1f" % q(lat, 99) if lat else "-",
                q(rtts, 50), q(rtts, 99), max(rtts)))
        print("longest broker pause: %.1f ms (target: under 50 ms)" % max(max(r[4]) for r in rows))
    finally:
        b.stop()
        work.cleanup()


if __name__ == "__main__":
    main()
