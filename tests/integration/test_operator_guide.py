"""docs/OPERATOR.md, run: every ```sh block of the guide, in order, as one
shell script (set -euo pipefail), against a real broker started from the
configuration as built for installation. It runs in a private network and
mount namespace, where the broker has the guide's ports (8883 to 8885) to
itself, the store is at its installed path (/var/lib/mosquitto/certmgr,
a bind mount of a scratch directory) and mqtt.acme.example is 127.0.0.1."""

import os
import re
import shlex
import shutil
import subprocess
import unittest

from harness import Workdir, SOURCE_DIR, sanitizer_env, world_readable_copy

GUIDE = os.path.join(SOURCE_DIR, "docs", "OPERATOR.md")


def guide_blocks():
    with open(GUIDE) as f:
        return re.findall(r"```sh\n(.*?)```", f.read(), re.S)


class OperatorGuideTest(unittest.TestCase):
    def test_every_command_of_the_guide_runs(self):
        blocks = guide_blocks()
        self.assertGreater(len(blocks), 10)
        work = Workdir()
        try:
            built = os.path.join(os.environ["CERTMGR_BUILD_DIR"], "conf")
            with open(os.path.join(built, "certmgr.conf")) as f:
                dropin = f.read()
            acl = work.file("acl")
            shutil.copy(os.path.join(SOURCE_DIR, "conf", "acl"), acl)
            os.chmod(acl, 0o644)
            dropin = re.sub(r"(?m)^plugin /.*$", "plugin " + work.plugin, dropin)
            dropin = re.sub(r"(?m)^acl_file .*$", "acl_file " + acl, dropin)
            # The console as built, where the broker's user reads it.
            console = work.file("console")
            world_readable_copy(os.path.join(os.environ["CERTMGR_BUILD_DIR"], "console"), console)
            dropin = re.sub(r"(?m)^http_dir .*$", "http_dir " + console, dropin)
            confd = work.file("conf.d")
            os.mkdir(confd)
            os.chmod(confd, 0o755)
            with open(os.path.join(confd, "certmgr.conf"), "w") as f:
                f.write(dropin)
            log = work.file("broker-guide.log")
            conf = work.file("mosquitto.conf")
            with open(conf, "w") as f:
                f.write("log_dest stderr\nlog_type all\nsys_interval 1\ninclude_dir %s\n" % confd)
            with open("/etc/hosts") as f:
                hosts = f.read() + "\n127.0.0.1 mqtt.acme.example\n"
            with open(work.file("hosts"), "w") as f:
                f.write(hosts)
            bindir = work.file("bin")
            os.mkdir(bindir)
            os.symlink(os.environ["CERTMGR_CTRL"], os.path.join(bindir, "certmgr_ctrl"))
            os.symlink(os.environ["CERTMGR_ENROLL"], os.path.join(bindir, "certmgr_enroll"))
            home = work.file("home")
            os.mkdir(home)
            with open(work.file("guide.sh"), "w") as f:
                f.write("set -euo pipefail\nset -x\n" + "\n".join(blocks))
            env_prefix = " ".join("%s=%s" % (k, shlex.quote(v)) for k, v in sanitizer_env().items())
            driver = """
set -e
ip link set lo up
# The mount point outlives the namespace: one made here goes at the end.
made=
if [ ! -d /var/lib/mosquitto/certmgr ]; then
    mkdir -p /var/lib/mosquitto/certmgr
    made=1
fi
mount --bind {store} /var/lib/mosquitto/certmgr
mount --bind {hosts} /etc/hosts
env {env} mosquitto -c {conf} > {log} 2>&1 &
broker=$!
for i in $(seq 200); do
    if (exec 3<>/dev/tcp/127.0.0.1/8884) 2>/dev/null; then break; fi
    sleep 0.1
done
set +e
HOME={home} PATH={bindir}:$PATH bash {guide}
rc=$?
kill $broker
wait $broker
umount /var/lib/mosquitto/certmgr
if [ -n "$made" ]; then
    rmdir /var/lib/mosquitto/certmgr
fi
exit $rc
""".format(store=work.store, hosts=work.file("hosts"), env=env_prefix, conf=conf, log=log, home=home,
           bindir=bindir, guide=work.file("guide.sh"))
            out = subprocess.run(["unshare", "-m", "-n", "bash", "-c", driver], capture_output=True, text=True,
                                 timeout=300)
            with open(log, errors="replace") as f:
                broker_log = f.read()
            certmgr_lines = "\n".join(l for l in broker_log.splitlines() if "certmgr:" in l)
            self.assertEqual(out.returncode, 0, "guide failed:\n%s\n%s\ncertmgr's log lines:\n%s" % (
                out.stdout[-3000:], out.stderr[-6000:], certmgr_lines[-4000:]))
            self.assertNotIn("AddressSanitizer", broker_log)
            self.assertNotIn("runtime error:", broker_log)
            # What the guide shows happened.
            self.assertRegex(out.stdout, r'"tenant":\s*"acme"')
            self.assertIn('"event":"change"', out.stdout)
            self.assertIn("$SYS/broker/certmgr/handshakes/accepted_total", out.stdout)
            self.assertRegex(out.stdout, r"certificate .d:sensor:s1. is revoked by the CRL")
            # Enrollment: pending, approved and fetched, then revoked by certmgr's own CRL.
            self.assertIn("pending: the request for d:sensor:s20", out.stdout)
            self.assertIn("certificate for d:sensor:s20 written to s20.pem", out.stdout)
            self.assertIn("renewal opens at", out.stdout)
            self.assertIn("verify OK", out.stdout + out.stderr)
        finally:
            work.cleanup()


if __name__ == "__main__":
    unittest.main()
