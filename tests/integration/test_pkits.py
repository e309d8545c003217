"""NIST PKITS replayed through a real broker: which certification paths
certmgr admits and refuses, against what PKITS says of each (the
measuring instrument of issue 17's RFC 5280 trust decision).

One broker, one tenant per PKITS test, per registration mode, per
revocation setting:
- every-ca: the trust anchor and every intermediate CA of the path are
  registered with addCA; the device sends its end-entity certificate alone.
- root-only: only the trust anchor is registered; the device sends its
  end entity and the intermediates (the usual deployment).
and `revocation` `required` or `when-available`. The CRLs of the test go
through uploadCRL; a CRL whose issuer is not registered carries the chain
from its issuer up towards the registered CA in `issuerCertificates`.

Tenants have the `bridge` policy, which admits any client id: PKITS end
entities have Common Names such as "Valid Certificate Path Test1 EE", not
certmgr device identities, and the identity rules are not what is measured.
The verdict is the TLS 1.2 handshake's (certmgr decides the chain and its
revocation in the handshake's certificate verification; a TLS 1.2 client
learns of a refusal by the server's alert before the handshake ends),
confirmed by an MQTT CONNECT answered with CONNACK 0.

PKITS keys are RSA-1024 and DSA-1024, hence `ciphers DEFAULT:@SECLEVEL=0`
on the listener and the client.

Sections 4.1-4.7 and 4.13-4.15 are the path tests; 4.8-4.12 (certificate
policies, with PKITS's default settings: anyPolicy as the initial set) are
run and asserted separately. The table is printed and written as JSON to
the build directory (pkits-results.json) for diffing runs.
CERTMGR_PKITS_ONLY=4.4,4.14.3 replays only those sections or tests."""

import json
import os
import re
import socket
import ssl
import subprocess
import time
import unittest
from concurrent.futures import ThreadPoolExecutor

import pkits
from harness import Broker, SANITIZE, SOURCE_DIR, VALGRIND, Workdir, control, free_port

MODES = ("every-ca", "root-only")
REVOCATIONS = ("required", "when-available")
COMBOS = [(m, r) for m in MODES for r in REVOCATIONS]

# Valid paths certmgr may refuse, each with its cause. Nothing else.
KNOWN_EXCEPTIONS = {
    "4.1.5": "DSA parameter inheritance (RFC 5280 6.1.4 (i)): the end entity's DSA key has no "
             "parameters of its own and OpenSSL 3.0 does not take them from the issuer's key; the "
             "client cannot even pair that certificate with its key, so no handshake is made",
    "4.14.30": "an indirect CRL whose cRLIssuer certificate is covered only by that same CRL: OpenSSL 3.0 "
               "validates the CRL issuer's path in a context of its own (check_crl_path), which finds no "
               "CRL for the cRLIssuer certificate and refuses ('CRL path validation error'); refused, "
               "which fails closed",
}

# Under revocation `when-available` a level is checked when a CRL of its
# issuer is known, and admitted when none is: that is what the policy
# says. PKITS's cases of a missing or unusable CRL are such levels, since
# certmgr refuses an unusable CRL when it is uploaded (a bad signature, a
# wrong issuer name, a nextUpdate in the past) rather than hold it. They
# are refused under `required`, in both registration modes.
WHEN_AVAILABLE_ADMITS = {
    "4.4.1": "the CA has no CRL",
    "4.4.4": "the CRL's signature is bad: refused at upload, so no CRL of the CA is known",
    "4.4.5": "the CRL names another issuer: refused at upload, so no CRL of the CA is known",
    "4.4.6": "the only CRL is another CA's: no CRL of the EE's issuer is known",
    "4.4.11": "the CRL's nextUpdate has passed: refused at upload, so no CRL of the CA is known",
    "4.4.12": "the CRL's nextUpdate (1999) has passed: refused at upload, so no CRL of the CA is known",
    "4.14.26": "the CRL the EE's distribution point names is not in the test data: none is known",
}

TENANTS_PER_REQUEST = 8
HANDSHAKE_WORKERS = 4


def tenant_name(test, mode, revocation):
    return "pk-%s-%s-%s" % (test.id.replace(".", "-"), "all" if mode == "every-ca" else "root",
                            "req" if revocation == "required" else "wa")


def host_name(tenant):
    return tenant + ".pkits.test"


def setup_commands(data, test, mode, revocation):
    """The control commands that make the tenant of one test in one mode."""
    name = tenant_name(test, mode, revocation)
    cmds = [{"command": "createTenant", "tenant": name, "hostnames": [host_name(name)],
             "policy": "bridge", "revocation": revocation}]
    registered = [data.anchor] if mode == "root-only" else list(reversed(test.path[1:]))
    for ca in registered:
        cmds.append({"command": "addCA", "tenant": name, "certificate": ca.pem(),
                     "description": "PKITS %s %s" % (test.id, ca.stem)})
    for crl, chain in test.crls:
        cmd = {"command": "uploadCRL", "tenant": name, "crl": crl.pem()}
        issuers = []
        for c in chain or []:
            if c in registered:
                break
            issuers.append(c.pem())
        if issuers:
            cmd["issuerCertificates"] = issuers
        cmds.append(cmd)
    return name, cmds


def connect(port, cafile, sni, certfile, keyfile, clientid):
    """One TLS 1.2 handshake with the device's credentials and an MQTT
    3.1.1 CONNECT: ("admitted" | "refused" | "client-error", detail)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = False
    ctx.load_verify_locations(cafile)
    ctx.verify_mode = ssl.CERT_REQUIRED
    try:
        ctx.load_cert_chain(certfile, keyfile)
    except (ssl.SSLError, ValueError) as e:
        return "client-error", "the client cannot use the key: %s" % e
    raw = socket.create_connection(("127.0.0.1", port), timeout=30)
    try:
        s = ctx.wrap_socket(raw, server_hostname=sni)
    except (ssl.SSLError, OSError) as e:
        raw.close()
        return "refused", "handshake: %s" % (getattr(e, "reason", None) or e)
    try:
        cid = clientid.encode()
        var = b"\x00\x04MQTT" + bytes([4, 0x02, 0, 60])
        body = var + len(cid).to_bytes(2, "big") + cid
        s.sendall(bytes([0x10, len(body)]) + body)
        ack = b""
        while len(ack) < 4:
            chunk = s.recv(4 - len(ack))
            if not chunk:
                break
            ack += chunk
    except (ssl.SSLError, OSError) as e:
        s.close()
        return "refused", "after the handshake: %s" % (getattr(e, "reason", None) or e)
    try:
        if len(ack) == 4 and ack[3] == 0:
            s.sendall(b"\xe0\x00")
    except OSError:
        pass
    s.close()
    if len(ack) < 4:
        return "refused", "closed before CONNACK"
    if ack[3] != 0:
        return "refused", "CONNACK %d" % ack[3]
    return "admitted", "CONNACK 0"


REFUSAL = re.compile(r"refused client certificate from \S+ \(SNI '([^']*)', tenant ([^)]*)\): (.*)$")


def cell(expected, result):
    if result == "admitted":
        return "ok" if expected else "OPEN"
    if result == "refused":
        return "REFUSED" if expected else "ok"
    return "ERROR"


class PkitsTest(unittest.TestCase):
    """The replay runs once for the class; each test method judges a part."""

    @classmethod
    def setUpClass(cls):
        if not pkits.available():
            raise unittest.SkipTest("PKITS data not installed (python3-cryptography-vectors; scripts/install-deps)")
        started = time.time()
        cls.data = pkits.Data()
        cls.all_tests = cls.data.tests()
        only = [x.strip() for x in os.environ.get("CERTMGR_PKITS_ONLY", "").split(",") if x.strip()]
        cls.tests = [t for t in cls.all_tests if not only or t.section in only or t.id in only]
        cls.work = Workdir()
        port = free_port()
        store = cls.work.store
        listener = ("listener %d localhost\ncertfile %s/listener/mqtt.crt\nkeyfile %s/listener/mqtt.key\n"
                    "ciphers DEFAULT:@SECLEVEL=0" % (port, store, store))
        cls.b = Broker(cls.work, port=port, listeners=[listener])
        cls.b.start()
        try:
            cls._replay()
        except BaseException:
            cls._stop()
            raise
        cls.seconds = time.time() - started
        cls._report()

    @classmethod
    def _stop(cls):
        rc = cls.b.stop()
        log = cls.b.log()
        cls.work.cleanup()
        return rc, log

    @classmethod
    def tearDownClass(cls):
        rc, log = cls._stop()
        if rc != 0:
            raise AssertionError("broker exit code %s\n%s" % (rc, log[-20000:]))
        if "AddressSanitizer" in log or "runtime error" in log:
            raise AssertionError("sanitizer report in the broker's log\n" + log[-20000:])

    # ------------------------------------------------------------------

    @classmethod
    def _replay(cls):
        data, work = cls.data, cls.work
        cls.results = {}     # (test id, mode, revocation) -> dict
        # Credentials: the end entity's key, the EE alone, the EE and its
        # intermediates (end entity first, then up towards the anchor).
        creds = {}
        for t in cls.tests:
            base = work.file("pkits-%s" % t.id)
            key = base + ".key"
            if t.id not in creds:
                with open(key, "wb") as f:
                    f.write(data.key_pem(t.ee.stem))
                os.chmod(key, 0o600)
                with open(base + "-ee.pem", "w") as f:
                    f.write(t.ee.pem())
                with open(base + "-chain.pem", "w") as f:
                    f.write("".join(c.pem() for c in t.path[:-1]))
                creds[t.id] = (key, base + "-ee.pem", base + "-chain.pem")
        # Tenants, in batches of several tenants per request.
        jobs = []
        for t in cls.tests:
            for mode, rev in COMBOS:
                name, cmds = setup_commands(data, t, mode, rev)
                jobs.append((t, mode, rev, name, cmds))
                cls.results[(t.id, mode, rev)] = {"tenant": name, "setup": []}
        # Generous: a guard against a hang, not a measure (the suite runs
        # two tests at a time on two cores).
        timeout = 300 if (SANITIZE or VALGRIND) else 120
        for i in range(0, len(jobs), TENANTS_PER_REQUEST):
            batch = jobs[i:i + TENANTS_PER_REQUEST]
            cmds = [c for j in batch for c in j[4]]
            resp = control(cls.b, cmds, timeout=timeout)
            if resp is None or len(resp.get("responses", [])) != len(cmds):
                raise AssertionError("no (complete) answer to the setup of %s" % [j[3] for j in batch])
            answers = iter(resp["responses"])
            for t, mode, rev, name, tcmds in batch:
                res = cls.results[(t.id, mode, rev)]
                for c in tcmds:
                    a = next(answers)
                    if c["command"] == "createTenant" and "error" in a:
                        raise AssertionError("createTenant %s: %s" % (name, a["error"]))
                    what = c.get("description", "").split(" ")[-1] if c["command"] == "addCA" else ""
                    if c["command"] == "uploadCRL":
                        what = next(crl.stem for crl, _ in t.crls if crl.pem() == c["crl"])
                    res["setup"].append({"command": c["command"], "item": what,
                                         "error": a.get("error")} if "error" in a else
                                        {"command": c["command"], "item": what})

        def one(job):
            t, mode, rev = job
            key, ee, chain = creds[t.id]
            name = tenant_name(t, mode, rev)
            return job, connect(cls.b.port, os.path.join(work.store, "listener", "mqtt.crt"), host_name(name),
                                ee if mode == "every-ca" else chain, key, "pkits-" + name)

        with ThreadPoolExecutor(HANDSHAKE_WORKERS) as pool:
            for (t, mode, rev), (result, detail) in pool.map(one, [(t, m, r) for t in cls.tests for m, r in COMBOS]):
                cls.results[(t.id, mode, rev)].update(result=result, client=detail)
        # The broker's reason for each refusal, by SNI.
        reasons = {}
        for line in cls.b.run_log().splitlines():
            m = REFUSAL.search(line)
            if m:
                reasons.setdefault(m.group(1), []).append(m.group(3).strip())
        for r in cls.results.values():
            if r["result"] != "admitted":
                got = reasons.get(host_name(r["tenant"]))
                r["broker"] = "; ".join(got) if got else None

    @classmethod
    def _report(cls):
        lines = []
        summary = {}
        for section in pkits.PATH_SECTIONS + pkits.POLICY_SECTIONS:
            tests = [t for t in cls.tests if t.section == section]
            lines.append("")
            lines.append("PKITS %s %s (%d paths)" % (section, pkits.SECTION_TITLES[section], len(tests)))
            lines.append("  %-8s %-52s %-8s %s" % ("test", "name (file)", "expected", " ".join("%-24s" % ("%s/%s" % c) for c in COMBOS)))
            for t in tests:
                cells = []
                for mode, rev in COMBOS:
                    r = cls.results[(t.id, mode, rev)]
                    cells.append("%-24s" % cell(t.expected, r["result"]))
                lines.append(("  %-8s %-52s %-8s %s" % (t.id, t.stem, "valid" if t.expected else "invalid", " ".join(cells))).rstrip())
        for group, sections in (("paths", pkits.PATH_SECTIONS), ("policies", pkits.POLICY_SECTIONS)):
            tests = [t for t in cls.tests if t.section in sections]
            for mode, rev in COMBOS:
                agree = open_ = refused = errors = 0
                for t in tests:
                    c = cell(t.expected, cls.results[(t.id, mode, rev)]["result"])
                    agree += c == "ok"
                    open_ += c == "OPEN"
                    refused += c == "REFUSED"
                    errors += c == "ERROR"
                summary["%s %s/%s" % (group, mode, rev)] = {"paths": len(tests), "agree": agree, "fail-open": open_,
                                                            "valid-refused": refused, "client-error": errors}
        lines.append("")
        lines.append("ok: agrees with PKITS; OPEN: PKITS invalid, admitted (fail-open); REFUSED: PKITS valid, refused; "
                     "ERROR: the client could not present the credentials")
        for k, v in summary.items():
            lines.append("PKITS summary %-36s %3d/%3d agree, %3d fail-open (invalid admitted), %3d valid refused, %d client errors"
                         % (k, v["agree"], v["paths"], v["fail-open"], v["valid-refused"], v["client-error"]))
        lines.append("PKITS replay took %.1f s" % cls.seconds)
        print("\n".join(lines), flush=True)
        try:
            commit = subprocess.run(["git", "-C", SOURCE_DIR, "rev-parse", "HEAD"], capture_output=True,
                                    text=True, timeout=10).stdout.strip() or None
        except (OSError, subprocess.SubprocessError):
            commit = None
        out = {
            "commit": commit,
            "sanitize": SANITIZE,
            "seconds": round(cls.seconds, 1),
            "summary": summary,
            "knownExceptions": KNOWN_EXCEPTIONS,
            "whenAvailableAdmits": WHEN_AVAILABLE_ADMITS,
            "tests": [{
                "id": t.id, "name": t.stem, "file": t.ee.stem + ".crt", "section": t.section,
                "expected": "valid" if t.expected else "invalid",
                "path": [c.stem for c in t.path],
                "crls": [{"crl": crl.stem, "signer": [c.stem for c in chain] if chain else None} for crl, chain in t.crls],
                "results": {"%s/%s" % (m, r): dict(cls.results[(t.id, m, r)], verdict=cell(t.expected, cls.results[(t.id, m, r)]["result"]))
                            for m, r in COMBOS},
            } for t in cls.tests],
        }
        outdir = os.environ.get("CERTMGR_BUILD_DIR") or os.environ.get("CERTMGR_LOG_DIR") or cls.work.path
        os.makedirs(outdir, exist_ok=True)
        cls.json_path = os.path.join(outdir, "pkits-results%s.json" % ("-sanitize" if SANITIZE else ""))
        with open(cls.json_path, "w") as f:
            json.dump(out, f, indent=1, sort_keys=False)
        print("PKITS results written to %s" % cls.json_path, flush=True)

    # ------------------------------------------------------------------

    def describe(self, t, mode, rev):
        r = self.results[(t.id, mode, rev)]
        why = r.get("broker") or r.get("client")
        failed = ["%s %s: %s" % (s["command"], s["item"], s["error"]) for s in r["setup"] if s.get("error")]
        return "%s %s [%s/%s]: %s%s" % (t.id, t.stem, mode, rev, r["result"],
                                        (" (%s)" % why if why else "") + (("; setup refused: " + " | ".join(failed)) if failed else ""))

    def judge(self, sections):
        if not any(t.section in sections for t in self.tests):
            self.skipTest("CERTMGR_PKITS_ONLY picks none of these sections")
        fail_open, refused, unmeasured = [], [], []
        for t in self.tests:
            if t.section not in sections:
                continue
            for mode, rev in COMBOS:
                result = self.results[(t.id, mode, rev)]["result"]
                if not t.expected and result == "admitted" and not (rev == "when-available" and t.id in WHEN_AVAILABLE_ADMITS):
                    fail_open.append(self.describe(t, mode, rev))
                if t.id in KNOWN_EXCEPTIONS:
                    continue
                if t.expected and result == "refused":
                    refused.append(self.describe(t, mode, rev))
                if result == "client-error":
                    unmeasured.append(self.describe(t, mode, rev))
        msg = []
        if fail_open:
            msg.append("%d FAIL-OPEN (PKITS invalid, admitted):\n  " % len(fail_open) + "\n  ".join(fail_open))
        if refused:
            msg.append("%d valid paths refused (not a known exception):\n  " % len(refused) + "\n  ".join(refused))
        if unmeasured:
            msg.append("%d paths not measured (the client could not present them):\n  " % len(unmeasured) + "\n  ".join(unmeasured))
        if msg:
            self.fail("\n".join(msg))

    def test_every_test_of_the_sections_is_replayed(self):
        if len(self.tests) != len(self.all_tests):
            self.skipTest("CERTMGR_PKITS_ONLY picks part of PKITS")
        ids = [t.id for t in self.tests]
        self.assertEqual(len(ids), len(set(ids)))
        for section, n in pkits.SECTION_SIZES.items():
            got = sorted(int(i.rsplit(".", 1)[1]) for i in ids if i.rsplit(".", 1)[0] == section)
            self.assertEqual(got, list(range(1, n + 1)), "PKITS section %s" % section)
        for t in self.tests:
            self.assertEqual(int(re.search(r"Test(\d+)$", t.stem).group(1)), int(t.id.rsplit(".", 1)[1]), t.id)
            self.assertIs(t.path[-1], self.data.anchor)
            for mode, rev in COMBOS:
                self.assertIn("result", self.results[(t.id, mode, rev)])
        for tid in KNOWN_EXCEPTIONS:
            self.assertTrue(next(t for t in self.tests if t.id == tid).expected, "a known exception must be a valid path")

    def test_paths_4_1_to_4_7_and_4_13_to_4_15_conform(self):
        """No invalid path admitted in any mode or revocation setting; every
        valid one admitted but the known exceptions."""
        self.judge(pkits.PATH_SECTIONS)

    def test_policies_4_8_to_4_12_conform(self):
        """The same for the certificate policy sections, with anyPolicy as
        the initial policy set."""
        self.judge(pkits.POLICY_SECTIONS)


if __name__ == "__main__":
    unittest.main()
