"""Installation: `cmake --install` of a build configured for Debian's
layout (-DCMAKE_INSTALL_PREFIX=/usr) into a staging root (DESTDIR), and a
broker started from the installed files; the installed tool's help, man
page and bash completion."""

import os
import re
import shutil
import subprocess
import tempfile
import unittest

from harness import Broker, Workdir, SANITIZE, SOURCE_DIR, free_port, https_get, pki, read


def multiarch():
    return subprocess.run(["gcc", "-print-multiarch"], capture_output=True, text=True, check=True).stdout.strip()


@unittest.skipIf(SANITIZE, "the plain build's run covers installation")
class InstallTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="certmgr-install-", dir="/tmp")
        os.chmod(cls.tmp, 0o755)
        cls.build = os.path.join(cls.tmp, "build")
        cls.stage = os.path.join(cls.tmp, "stage")
        subprocess.run(["cmake", "-S", SOURCE_DIR, "-B", cls.build, "-DCMAKE_INSTALL_PREFIX=/usr",
                        "-DCMAKE_BUILD_TYPE=Release", "-DBUILD_TESTING=OFF"], check=True, capture_output=True)
        subprocess.run(["cmake", "--build", cls.build, "-j2", "--target", "mosquitto_certmgr", "certmgr_ctrl", "certmgr_enroll", "certmgr_etcd",
                        "console"],
                       check=True, capture_output=True)
        env = dict(os.environ, DESTDIR=cls.stage)
        out = subprocess.run(["cmake", "--install", cls.build], env=env, capture_output=True, text=True)
        if out.returncode != 0:
            raise AssertionError(out.stdout + out.stderr)
        for root, dirs, files in os.walk(cls.stage):
            os.chmod(root, 0o755)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def staged(self, path):
        return os.path.join(self.stage, path.lstrip("/"))

    def test_files_go_where_debian_keeps_mosquittos_own(self):
        expected = ["/usr/lib/%s/mosquitto_certmgr.so" % multiarch(), "/usr/bin/certmgr_ctrl", "/usr/bin/certmgr_enroll", "/usr/bin/certmgr_etcd",
                    "/usr/share/man/man1/certmgr_enroll.1", "/usr/share/man/man1/certmgr_etcd.1",
                    "/etc/mosquitto/conf.d/certmgr.conf", "/etc/certmgr/acl", "/etc/certmgr/mosquitto.conf",
                    "/usr/share/man/man1/certmgr_ctrl.1", "/usr/share/bash-completion/completions/certmgr_ctrl",
                    "/usr/share/certmgr/console/index.html"]
        for path in expected:
            self.assertTrue(os.path.isfile(self.staged(path)), path)
        dropin = read(self.staged("/etc/mosquitto/conf.d/certmgr.conf"))
        self.assertIn("plugin /usr/lib/%s/mosquitto_certmgr.so\n" % multiarch(), dropin)
        self.assertIn("acl_file /etc/certmgr/acl\n", dropin)
        self.assertIn("plugin_opt_store_dir /var/lib/mosquitto/certmgr\n", dropin)
        self.assertIn("http_dir /usr/share/certmgr/console\n", dropin)
        self.assertIn("include_dir /etc/mosquitto/conf.d\n", read(self.staged("/etc/certmgr/mosquitto.conf")))
        # The man pages render without warnings.
        for page in ("certmgr_ctrl.1", "certmgr_enroll.1", "certmgr_etcd.1"):
            out = subprocess.run(["man", "--warnings", "-l", self.staged("/usr/share/man/man1/" + page)],
                                 capture_output=True, text=True, env=dict(os.environ, MANPAGER="cat", MANWIDTH="80"))
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertEqual(out.stderr, "", page)
            self.assertIn("EXIT STATUS", out.stdout)

    def test_a_broker_runs_from_the_installed_files(self):
        work = Workdir()
        try:
            # Debian's main file includes conf.d; the staged drop-in with
            # its installed paths moved under the staging root, a scratch
            # store and free ports.
            port, admin_port = free_port(), free_port()
            dropin = read(self.staged("/etc/mosquitto/conf.d/certmgr.conf"))
            dropin = re.sub(r"(?m)^(plugin|acl_file|http_dir) (/.*)$",
                            lambda m: "%s %s" % (m.group(1), self.staged(m.group(2))), dropin)
            console_port = free_port()
            dropin = (dropin.replace("/var/lib/mosquitto/certmgr", work.store)
                      .replace("8883", str(port)).replace("8884", str(admin_port))
                      .replace("8885", str(console_port)))
            confd = work.file("conf.d")
            os.mkdir(confd)
            os.chmod(confd, 0o755)
            with open(os.path.join(confd, "certmgr.conf"), "w") as f:
                f.write(dropin)
            b = Broker(work, port=admin_port, conf_name="debian.conf")
            with open(b.conf, "w") as f:
                f.write("log_dest stderr\nlog_type all\ninclude_dir %s\n" % confd)
            b.start()
            self.assertIn("Loading plugin: %s" % self.staged("/usr/lib/%s/mosquitto_certmgr.so" % multiarch()),
                          b.run_log())
            ctrl = self.staged("/usr/bin/certmgr_ctrl")
            out = subprocess.run([ctrl, "--store", work.store, "-p", str(admin_port), "createTenant", "acme",
                                  "--hostname", "acme.test"], capture_output=True, text=True)
            self.assertEqual(out.returncode, 0, out.stderr)
            out = subprocess.run([ctrl, "--store", work.store, "-p", str(admin_port), "listTenants"],
                                 capture_output=True, text=True)
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertRegex(out.stdout, r"(?m)^acme +acme +certificate +0 +acme\.test$")
            # The console's listener serves the installed console, over
            # HTTP/1.1 to a client that offers h2 too, as a browser does.
            status, body, proto = https_get(console_port, "/")
            self.assertEqual((status, proto), (200, "http/1.1"))
            self.assertEqual(body, read(self.staged("/usr/share/certmgr/console/index.html")))
            self.assertEqual(b.stop(), 0)
        finally:
            work.cleanup()

    def test_the_installed_tool_explains_every_command_and_completes_them(self):
        ctrl = self.staged("/usr/bin/certmgr_ctrl")
        out = subprocess.run([ctrl, "--help"], capture_output=True, text=True)
        self.assertEqual(out.returncode, 0)
        commands = re.findall(r"(?m)^  ([a-zA-Z]+)", out.stdout.split("Commands:")[1])
        # Every command of the control API's tables, and no other.
        api = set()
        control_dir = os.path.join(SOURCE_DIR, "plugin", "control")
        for name in os.listdir(control_dir):
            if name.startswith("cmd_") and name.endswith(".c"):
                with open(os.path.join(control_dir, name)) as f:
                    api |= set(re.findall(r'^\s*\{"(\w+)", \w+, CM_(?:WRITES|READS), \w+\},', f.read(), re.M))
        self.assertEqual(set(commands), api)
        for c in set(commands):
            h = subprocess.run([ctrl, c, "--help"], capture_output=True, text=True)
            self.assertEqual(h.returncode, 0, c)
            self.assertTrue(h.stdout.startswith("usage: certmgr_ctrl [options] " + c), c)
            self.assertGreater(len(h.stdout.splitlines()), 2, c)
        self.assertEqual(subprocess.run([ctrl], capture_output=True).returncode, 1)
        self.assertEqual(subprocess.run([ctrl, "help", "nope"], capture_output=True).returncode, 10)

        def complete(*words):
            line = " ".join(words)
            script = ('source %s; COMP_WORDS=(%s); COMP_CWORD=%d; _certmgr_ctrl; printf "%%s\\n" "${COMPREPLY[@]}"'
                      % (self.staged("/usr/share/bash-completion/completions/certmgr_ctrl"), line, len(words) - 1))
            return subprocess.run(["bash", "-c", script], capture_output=True, text=True).stdout.split()

        self.assertEqual(complete(ctrl, "createT"), ["createTenant"])
        self.assertIn("listServerCertificates", complete(ctrl, "list"))
        self.assertEqual(complete(ctrl, "createTenant", "acme", "--pol"), ["--policy"])
        self.assertEqual(complete(ctrl, "createTenant", "acme", "--policy", "cert"), ["certificate", "certificate+token"])
        self.assertEqual(complete(ctrl, "createCSR", "web"), ["websockets"])
        self.assertEqual(complete(ctrl, "-p", "8884", "getSt"), ["getStatus"])
        self.assertEqual(complete(ctrl, "listDevices", "acme", "--filter", "b"), ["blocked"])
        self.assertEqual(complete(ctrl, "blockC"), ["blockCertificate"])
        self.assertEqual(complete(ctrl, "addCA", "acme", "ca.pem", "--purpose", "cl"), ["claim"])
        self.assertEqual(complete(ctrl, "modifyTenant", "acme", "--enroll-mode", "a"), ["auto", "allowlist", "approval"])
        enroll = subprocess.run([self.staged("/usr/bin/certmgr_enroll"), "--help"], capture_output=True, text=True)
        self.assertEqual(enroll.returncode, 0)
        self.assertIn("--claim-cert", enroll.stdout)


if __name__ == "__main__":
    unittest.main()
