"""Reads the logs of every broker the integration suite started (copied to
CERTMGR_LOG_DIR as each test cleans up) and fails on any line that holds a
private key, a passphrase or password the tests used, or a PEM body.
ctest runs it after all the integration tests (a fixture's cleanup)."""

import os
import re
import sys

# Every secret the tests hand to certmgr or to the broker.
SECRETS = ["secret-pass", "p12-pass", "a long store passphrase", "alice-pw", "ops-pw", "backend-pw"]
# A run of base64 this long, with upper and lower case letters and digits,
# is a PEM or DER body; ids and fingerprints are hex of one case, and paths
# of the store are lower case.
BASE64_RUN = re.compile(r"[A-Za-z0-9+/]{56,}={0,2}")


def is_body(run):
    """Base64 is random: mixed case and digits, and a '/' only every 64
    characters or so, where a path or topic has short words between
    slashes."""
    mixed = any(c.isupper() for c in run) and any(c.islower() for c in run) and any(c.isdigit() for c in run)
    return mixed and len(run) / (run.count("/") + 1) >= 12


def findings(line):
    out = []
    if "-----BEGIN" in line or "-----END" in line:
        out.append("PEM armour")
    if "PRIVATE KEY" in line:
        out.append("private key")
    for s in SECRETS:
        if s in line:
            out.append("secret '%s'" % s)
    for m in BASE64_RUN.finditer(line):
        if is_body(m.group(0)):
            out.append("base64 body")
    return out


def self_test():
    """The detectors find what they are for, and pass a normal line."""
    bad = ["-----BEGIN EC PRIVATE KEY-----",
           "certmgr: addServerCertificate passphrase=secret-pass",
           "MHcCAQEEIBf3n0Lk2sH1v8qv0mXo2pZC9k4r8x3nqj1Jm1xQ0eRnoAoGCCqGSM49AwEHoUQDQgAE",
           "error: ops-pw rejected"]
    for line in bad:
        if not findings(line):
            raise AssertionError("the checker misses: " + line)
    for good in ["1795403652: certmgr: admin | addCA | tenant=acme id=8b2e78efd581fa5303bea2e497978a76d246cc3199761c12ae6ed930e7d3325f",
                 "certmgr: cannot write /tmp/certmgr-it-spdjydbl/store/tenants/acme/crls/2592b0680a616b01df01fdc7657ad0ca44ec.crl",
                 "Sending PUBLISH to x (d0, q0, r1, m0, '$SYS/broker/certmgr/tenants/acme/cas/517c0ac5a9c6efa1/crl/revoked')"]:
        if findings(good):
            raise AssertionError("the checker flags a normal line: " + good)


def main():
    self_test()
    logdir = os.environ.get("CERTMGR_LOG_DIR") or (sys.argv[1] if len(sys.argv) > 1 else None)
    if not logdir or not os.path.isdir(logdir):
        print("no broker logs in %r: the integration tests did not run" % logdir)
        return 1
    files = sorted(os.listdir(logdir))
    lines = bad = 0
    for name in files:
        with open(os.path.join(logdir, name), errors="replace") as f:
            for n, line in enumerate(f, 1):
                lines += 1
                for what in findings(line):
                    bad += 1
                    print("%s:%d: %s: %s" % (name, n, what, line.rstrip()[:200]))
    print("checked %d lines in the logs of %d brokers: %d findings" % (lines, len(files), bad))
    if len(files) < 20:
        # A part of the suite (ctest -R ...) leaves too little to judge:
        # skipped, unless the whole suite ran (scripts/run-tests says so).
        print("too few broker logs: the suite did not run whole")
        return 1 if os.environ.get("CERTMGR_REQUIRE_ALL_LOGS") else 77
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
