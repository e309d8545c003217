"""docker/README.md, run: every ```sh block, in order, each as a bash
script (set -euo pipefail) with tests/container/bin/docker, a stand-in for
the docker commands it uses, first on PATH; between the blocks, what they
should have done is checked from the "host" side. tests/container/run-test
starts this in private mount and network namespaces (the README's ports
are the test's own) with CERTMGR_BASE_TAR, the debian:12 base it made or
found in its cache."""

import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

from harness import SOURCE_DIR, mqtt_connect, served_certificate

HERE = os.path.dirname(os.path.abspath(__file__))
README = os.path.join(SOURCE_DIR, "docker", "README.md")
VOLUME = "certmgr-store"
STORE = "/var/lib/mosquitto/certmgr"
# What the image's runtime stage adds to debian:12 (Mosquitto, its
# libraries, libcurl, certmgr): far less than a compiler and headers.
MAX_ADDED_MB = 40


def readme_blocks():
    with open(README) as f:
        return re.findall(r"```sh\n(.*?)```", f.read(), re.S)


def pem_digest(path):
    out = subprocess.run(["openssl", "x509", "-in", path, "-outform", "DER"], capture_output=True, check=True)
    return hashlib.sha256(out.stdout).hexdigest()


def refused(host, port):
    try:
        socket.create_connection((host, port), timeout=3).close()
        return False
    except OSError:
        return True


class ContainerReadmeTest(unittest.TestCase):
    """One step per block of the README; a step runs only when the ones
    before it passed."""

    @classmethod
    def setUpClass(cls):
        cls.blocks = readme_blocks()
        cls.ran = []
        cls.failed = None
        cls.tmp = tempfile.mkdtemp(prefix="certmgr-container-", dir="/tmp")
        os.chmod(cls.tmp, 0o755)
        cls.state = os.path.join(cls.tmp, "shim")
        cls.work = os.path.join(cls.tmp, "work")
        os.mkdir(cls.state)
        os.mkdir(cls.work)
        cls.env = dict(os.environ, CERTMGR_SHIM_STATE=cls.state,
                       PATH=os.path.join(HERE, "bin") + ":" + os.environ["PATH"])
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        cls.base_image()
        cls.device_pki()

    @classmethod
    def tearDownClass(cls):
        try:
            out = cls.docker("_cleanup")
            if out.returncode != 0:
                raise AssertionError("cleanup failed:\n" + out.stderr)
        finally:
            shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def buildah(cls, *args, check=True):
        argv = ["buildah", "--root", os.path.join(cls.state, "storage"), "--runroot",
                os.path.join(cls.state, "run"), "--storage-driver", "overlay"] + list(args)
        out = subprocess.run(argv, capture_output=True, text=True)
        if check and out.returncode != 0:
            raise AssertionError("%s:\n%s%s" % (" ".join(argv), out.stdout, out.stderr))
        return out.stdout

    @classmethod
    def docker(cls, *args):
        return subprocess.run(["docker"] + list(args), capture_output=True, text=True, env=cls.env, timeout=120)

    @classmethod
    def base_image(cls):
        """debian:12, as the Dockerfile's FROM names it, from the cached
        debootstrap tarball."""
        tar = os.environ.get("CERTMGR_BASE_TAR")
        if not tar or not os.path.isfile(tar):
            raise AssertionError("CERTMGR_BASE_TAR names no base tarball: run tests/container/run-test")
        ctr = cls.buildah("from", "scratch").strip()
        cls.buildah("add", ctr, tar, "/")
        cls.buildah("commit", "-q", ctr, "debian:12")
        cls.buildah("rm", ctr)

    @classmethod
    def device_pki(cls):
        """ca.pem, dev.pem, dev.key as the top-level README makes them."""
        def openssl(*args):
            subprocess.run(["openssl"] + list(args), cwd=cls.work, check=True, capture_output=True)
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=My Devices CA",
                "-days", "3650", "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        openssl("req", "-new", *ec, "-keyout", "dev.key", "-out", "dev.csr", "-subj", "/CN=d:sensor:1")
        openssl("x509", "-req", "-in", "dev.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-days", "365", "-out", "dev.pem")
        for name in ("ca.pem", "dev.pem", "dev.key"):
            os.chmod(os.path.join(cls.work, name), 0o644)

    # ------------------------------------------------------------------

    def setUp(self):
        if type(self).failed:
            self.skipTest("an earlier step failed: %s" % type(self).failed)

    def run(self, result=None):
        before = len(result.failures) + len(result.errors) if result else 0
        out = super().run(result)
        if result and len(result.failures) + len(result.errors) > before and not type(self).failed:
            type(self).failed = self.id().rsplit(".", 1)[1]
        return out

    def block(self, n, must_contain, cwd=None, timeout=120):
        """Runs README block n, which must contain must_contain (the README
        and this test agree on the order); returns its output."""
        self.assertGreater(len(self.blocks), n, "docker/README.md has fewer sh blocks than the test expects")
        text = self.blocks[n]
        self.assertIn(must_contain, text, "README block %d is not the one this step expects:\n%s" % (n, text))
        t0 = time.time()
        out = subprocess.run(["bash", "-c", "set -euo pipefail\nset -x\n" + text], cwd=cwd or self.work,
                             env=self.env, capture_output=True, text=True, timeout=timeout)
        type(self).ran.append(n)
        if out.returncode != 0:
            logs = self.docker("logs", "certmgr")
            self.fail("README block %d failed (%d) after %.0f s:\n%s\n--- stdout:\n%s\n--- stderr:\n%s\n"
                      "--- the certmgr container's log:\n%s" % (
                          n, out.returncode, time.time() - t0, text, out.stdout[-4000:], out.stderr[-6000:],
                          logs.stdout[-4000:] + logs.stderr[-2000:]))
        return out.stdout

    def volume(self, *path):
        return os.path.join(self.state, "volumes", VOLUME, *path)

    def container(self):
        with open(os.path.join(self.state, "containers", "certmgr", "config.json")) as f:
            return json.load(f)

    def broker_uids(self):
        """The uids of the mosquitto processes below the certmgr
        container's process."""
        parent, comm = {}, {}
        for p in os.listdir("/proc"):
            try:
                with open("/proc/%s/stat" % p) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                with open("/proc/%s/comm" % p) as f:
                    comm[int(p)] = f.read().strip()
                parent[int(p)] = int(fields[1])
            except (OSError, ValueError):
                continue
        top, uids = self.container()["pid"], []
        for p, name in comm.items():
            q = p
            while q > 1 and q != top:
                q = parent.get(q, 0)
            if q == top and name == "mosquitto":
                with open("/proc/%d/status" % p) as f:
                    uids.append(int(re.search(r"(?m)^Uid:\s+(\d+)", f.read()).group(1)))
        return uids

    def assertMounted(self, path, host_path):
        """path in the certmgr container is host_path (a bind mount: the
        same inode)."""
        out = self.docker("exec", "certmgr", "stat", "-c", "%i", path)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(int(out.stdout), os.stat(host_path).st_ino, "%s is not %s" % (path, host_path))

    def content_bytes(self, image):
        """The bytes of an image's files, as du counts them."""
        ctr = self.buildah("from", "--pull=never", image).strip()
        try:
            root = self.buildah("mount", ctr).strip()
            out = subprocess.run(["du", "-sb", "-x", root], capture_output=True, text=True, check=True)
            return int(out.stdout.split()[0])
        finally:
            self.buildah("rm", ctr)

    def device(self):
        return mqtt_connect(8883, "d:default:sensor:1", cert=os.path.join(self.work, "dev.pem"),
                            key=os.path.join(self.work, "dev.key"), host="localhost")["result"]

    def assertSameStore(self):
        """The container's broker runs on the store of the first: the same
        certificate, loaded, not made."""
        log = self.docker("logs", "certmgr").stdout
        self.assertIn("certmgr: loaded store %s" % STORE, log)
        self.assertNotIn("created store", log)
        self.assertEqual(served_certificate(8883, host="localhost")[1], self.served)

    def assertAdmitted(self):
        result = self.device()
        if result != "accepted":
            logs = self.docker("logs", "certmgr")
            self.fail("the device is not admitted (%s); the container's log:\n%s" % (
                result, (logs.stdout + logs.stderr)[-5000:]))

    # ------------------------------------------------------------------

    def test_01_the_image_builds_small_and_without_the_build(self):
        t0 = time.time()
        self.block(0, "docker build -f docker/Dockerfile -t certmgr .", cwd=SOURCE_DIR, timeout=900)
        print("\n  image built in %.0f s" % (time.time() - t0), flush=True)
        conf = json.loads(self.buildah("inspect", "--type", "image", "certmgr"))["Docker"]["config"]
        self.assertEqual(conf["User"], "1883:1883")
        self.assertEqual(conf["Volumes"], {STORE: {}})
        self.assertEqual(conf["Healthcheck"]["Test"], ["CMD-SHELL", "certmgr_ctrl getStatus || exit 1"])
        self.assertEqual(conf["Cmd"], ["mosquitto", "-c", "/etc/certmgr/mosquitto.conf"])
        type(self).healthcheck = conf["Healthcheck"]["Test"][1]
        image, base = self.content_bytes("certmgr"), self.content_bytes("debian:12")
        print("  image %.1f MB, of which debian:12 %.1f MB" % (image / 1e6, base / 1e6), flush=True)
        self.assertLess(image - base, MAX_ADDED_MB * 1e6, "the runtime stage adds more than Mosquitto and certmgr")
        # Nothing of the build in the runtime stage.
        ctr = self.buildah("from", "--pull=never", "certmgr").strip()
        try:
            root = self.buildah("mount", ctr).strip()
            for path in ("usr/bin/gcc", "usr/bin/cmake", "usr/include/openssl", "usr/include/mosquitto_broker.h",
                         "src", "build", "stage"):
                self.assertFalse(os.path.exists(os.path.join(root, path)), path + " is in the image")
            for path in ("usr/bin/certmgr_ctrl", "usr/sbin/mosquitto", "etc/mosquitto/conf.d/certmgr.conf",
                         "etc/certmgr/mosquitto.conf", "etc/certmgr/acl"):
                self.assertTrue(os.path.exists(os.path.join(root, path)), path + " is not in the image")
            st = os.stat(os.path.join(root, STORE.lstrip("/")))
            self.assertEqual((st.st_uid, st.st_gid, st.st_mode & 0o7777), (1883, 1883, 0o700))
        finally:
            self.buildah("rm", ctr)

    def test_02_the_broker_serves_certmgrs_self_signed_certificate(self):
        log = self.block(1, "docker run -d --name certmgr -p 8883:8883")
        self.assertIn("certmgr: created store %s" % STORE, log)
        self.assertIn("mosquitto version", log)
        st = os.stat(self.volume())
        self.assertEqual((st.st_uid, st.st_gid, st.st_mode & 0o7777), (1883, 1883, 0o700),
                         "the named volume is not a copy of the image's store directory")
        der, served = served_certificate(8883, host="localhost")
        self.assertEqual(served, pem_digest(self.volume("listener", "mqtt.crt")))
        subject = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-subject", "-issuer"],
                                 input=der, capture_output=True, check=True).stdout.decode().splitlines()
        self.assertEqual(subject[0].split("=", 1)[1], subject[1].split("=", 1)[1], "not self-signed")
        type(self).served = served
        uids = self.broker_uids()
        self.assertTrue(uids, "no mosquitto process in the container")
        self.assertEqual(set(uids), {1883}, "the broker does not run as the image's mosquitto user")
        # The administration listener is the container's own.
        self.assertTrue(refused("localhost", 8884), "8884 answers on the host side")
        self.assertTrue(refused(self.container()["ip"], 8884), "8884 answers on the container's address")
        # The image's HEALTHCHECK, in the container, as its user.
        out = self.docker("exec", "certmgr", "sh", "-c", self.healthcheck)
        self.assertEqual(out.returncode, 0, "HEALTHCHECK fails:\n" + out.stdout + out.stderr)
        # No CA yet: the device is turned away.
        self.assertNotEqual(self.device(), "accepted")

    def test_03_certmgr_ctrl_answers_inside_the_container(self):
        out = self.block(2, "docker exec certmgr certmgr_ctrl getStatus")
        self.assertRegex(out, r'"generation":\s*1\b')
        self.assertRegex(out, r'"tenants":\s*1\b')
        out = self.docker("exec", "certmgr", "certmgr_ctrl", "listTenants")
        self.assertRegex(out.stdout, r"(?m)^acme\b.*mqtt\.acme\.example$")

    def test_04_a_ca_added_through_it_admits_a_device_from_the_host(self):
        self.block(3, "mosquitto_pub -h localhost -p 8883")
        self.assertAdmitted()
        self.assertEqual(pem_digest(os.path.join(self.work, "broker.crt")), self.served)

    def test_05_a_restart_and_a_new_container_on_the_volume_keep_the_state(self):
        out = self.block(4, "docker restart certmgr")
        self.assertRegex(out, r"(?m)^acme\b.*mqtt\.acme\.example")
        self.assertRegex(out, r"(?m)^[0-9a-f]{64} +active +\S+ +My Devices CA$")
        self.assertSameStore()
        self.assertAdmitted()

    def test_06_a_drop_in_of_ones_own_is_mounted_over_the_images(self):
        self.block(5, "docker cp certmgr:/etc/mosquitto/conf.d/certmgr.conf .")
        self.assertMounted("/etc/mosquitto/conf.d/certmgr.conf", os.path.join(self.work, "certmgr.conf"))
        self.assertIn("Loading config file /etc/mosquitto/conf.d/certmgr.conf", self.docker("logs", "certmgr").stdout)
        self.assertSameStore()
        self.assertAdmitted()

    def test_07_files_added_beside_it_are_read(self):
        self.block(6, "mosquitto_passwd -c -b passwd monitor")
        self.assertMounted("/etc/mosquitto/conf.d/zz-extra.conf", os.path.join(self.work, "extra.conf"))
        self.assertMounted("/etc/certmgr/passwd", os.path.join(self.work, "passwd"))
        self.assertIn("Loading config file /etc/mosquitto/conf.d/zz-extra.conf", self.docker("logs", "certmgr").stdout)
        self.assertSameStore()
        self.assertAdmitted()

    def test_08_a_store_in_a_directory_of_the_host(self):
        out = self.block(7, '-v "$PWD/store:/var/lib/mosquitto/certmgr"')
        self.assertRegex(out, r'"generation":\s*1\b')
        store = os.path.join(self.work, "store")
        self.assertIn("certmgr: created store %s" % STORE, self.docker("logs", "certmgr").stdout)
        self.assertMounted(STORE, store)
        st = os.stat(os.path.join(store, "admin", "admin.key"))
        self.assertEqual((st.st_uid, st.st_mode & 0o077), (1883, 0), "the admin key is not the broker user's alone")
        self.assertEqual(served_certificate(8883, host="localhost")[1],
                         pem_digest(os.path.join(store, "listener", "mqtt.crt")))

    def test_09_the_image_runs_as_the_mosquitto_user(self):
        out = self.block(8, "docker run --rm certmgr id")
        self.assertIn("uid=1883(mosquitto) gid=1883(mosquitto)", out)

    def test_10_every_block_ran_and_nothing_is_left(self):
        self.assertEqual(sorted(self.ran), list(range(len(self.blocks))), "a README block no step runs")
        out = self.docker("_cleanup")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(self.buildah("containers", "-q").strip(), "")
        self.assertTrue(refused("localhost", 8883), "8883 still answers")
        netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        self.assertNotIn("certmgr-", netns)


if __name__ == "__main__":
    unittest.main()
