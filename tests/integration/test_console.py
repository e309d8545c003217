"""The web console end to end: Debian's Chromium, headless, driven by
chromedriver through Selenium, loads the built console from a real broker's
TLS websockets listener (its http_dir), signs in over wss as a user-name
administrator, and works every page. Each scenario checks the broker's own
state through the control API (as the store's admin certificate) as well as
what the page shows. One broker and one browser serve the whole class.

Screenshots of the pages go to $CERTMGR_BUILD_DIR/console-screenshots/, and
to docs/console/ with CERTMGR_UPDATE_SCREENSHOTS=1."""

import glob
import hashlib
import json
import os
import shutil
import ssl
import subprocess
import tempfile
import time
import unittest

from harness import (SOURCE_DIR, Broker, Workdir, cert_id, closed_within, free_port, mqtt_connect, mqtt_messages, mqtt_publish,
                     mqtt_subscribe, ok, openssl, pki, read, served_certificate,
                     world_readable_copy)
from test_enroll import ANSWER, ENROLL, Pki

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

USER, PASSWORD = "opsadmin", "ops-pw"
WAIT = 20


def console_dir():
    """The built console: CERTMGR_CONSOLE_DIR, else the build's, else console/dist."""
    for d in (os.environ.get("CERTMGR_CONSOLE_DIR"),
              os.path.join(os.environ["CERTMGR_BUILD_DIR"], "console") if os.environ.get("CERTMGR_BUILD_DIR") else None,
              os.path.join(SOURCE_DIR, "console", "dist")):
        if d and os.path.isfile(os.path.join(d, "index.html")):
            return d
    return None


def der_id(pem_text):
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem_text)).hexdigest()


def tid(testid):
    return '[data-testid="%s"]' % testid


class ConsoleTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        built = console_dir()
        if built is None:
            raise AssertionError("no built console (index.html) in CERTMGR_CONSOLE_DIR, $CERTMGR_BUILD_DIR/console "
                                 "or console/dist: build it with `cd console && npm ci && npm run build`")
        cls.work = Workdir()
        store = cls.work.store
        cls.www = cls.work.file("www")
        world_readable_copy(built, cls.www)
        passwd = cls.work.file("passwd")
        subprocess.run(["mosquitto_passwd", "-b", "-c", passwd, USER, PASSWORD], check=True)
        # A user of the password file who is no administrator.
        subprocess.run(["mosquitto_passwd", "-b", passwd, "alice", "alice-pw"], check=True)
        os.chmod(passwd, 0o644)
        cls.mqtt_port, cls.console_port = free_port(), free_port()
        listeners = ["listener %d 127.0.0.1\ncertfile %s/listener/mqtt.crt\nkeyfile %s/listener/mqtt.key" % (cls.mqtt_port, store, store),
                     "listener %d\nprotocol websockets\nhttp_dir %s\ncertfile %s/listener/websockets.crt\nkeyfile %s/listener/websockets.key"
                     % (cls.console_port, cls.www, store, store)]
        cls.b = Broker(cls.work, port=cls.mqtt_port, listeners=listeners, extra="password_file %s" % passwd,
                       plugin_opts={"mqtt_ports": str(cls.mqtt_port), "console_ports": str(cls.console_port), "admin_users": USER})
        cls.b.start()
        cls.downloads = cls.work.file("downloads")
        os.makedirs(cls.downloads)
        cls.profile = tempfile.mkdtemp(prefix="certmgr-chromium-")
        opts = webdriver.ChromeOptions()
        opts.binary_location = "/usr/bin/chromium"
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--user-data-dir=" + cls.profile, "--ignore-certificate-errors", "--window-size=1200,800"):
            opts.add_argument(flag)
        opts.add_experimental_option("prefs", {"download.default_directory": cls.downloads,
                                               "download.prompt_for_download": False,
                                               # The page offers several downloads: no prompt for the second.
                                               "profile.default_content_setting_values.automatic_downloads": 1})
        try:
            cls.d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
        except Exception:
            cls.b.stop()
            cls.work.cleanup()
            raise
        cls.d.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": cls.downloads})
        cls.url = "https://127.0.0.1:%d/" % cls.console_port
        cls.shots = os.path.join(os.environ.get("CERTMGR_BUILD_DIR") or cls.work.path, "console-screenshots")
        os.makedirs(cls.shots, exist_ok=True)
        cls.signed_in = False

    @classmethod
    def tearDownClass(cls):
        try:
            cls.d.quit()
        finally:
            shutil.rmtree(cls.profile, ignore_errors=True)
            rc = cls.b.stop()
            log = cls.b.log()
            cls.work.cleanup()
            if rc != 0 or "AddressSanitizer" in log:
                raise AssertionError("broker exit code %s\n%s" % (rc, log))

    # ------------------------------------------------------------------
    # The page

    def wait(self, cond, timeout=WAIT, what="the page"):
        def safe(d):
            try:
                return cond(d)
            except StaleElementReferenceException:
                return False
        try:
            return WebDriverWait(self.d, timeout).until(safe)
        except TimeoutException:
            shown = [e.text for e in self.d.find_elements(By.CSS_SELECTOR, "p.error") if e.is_displayed()]
            raise AssertionError("waiting for %s; the page shows the errors %s" % (what, shown)) from None

    def el(self, testid, within=None):
        """The displayed element of that data-testid (waited for)."""
        root = within or self.d
        return self.wait(lambda d: next((e for e in root.find_elements(By.CSS_SELECTOR, tid(testid)) if e.is_displayed()), None),
                         what=testid)

    def dialog(self, testid):
        return self.wait(lambda d: next(iter(d.find_elements(By.CSS_SELECTOR, "dialog[open]" + tid(testid))), None), what=testid)

    def no_dialog(self, testid):
        self.wait(lambda d: not d.find_elements(By.CSS_SELECTOR, "dialog[open]" + tid(testid)), what="%s to close" % testid)

    def message(self):
        """The text of the answer the page shows (an action or a dialog
        clears the one before); fails on an error."""
        got = self.wait(lambda d: d.find_elements(By.CSS_SELECTOR, tid("page-messages") + " p"), what="an answer on the page")
        self.assertIn("ok", got[0].get_attribute("class"), got[0].text)
        return got[0].text

    def error_text(self, area):
        return self.wait(lambda d: area.find_elements(By.CSS_SELECTOR, "p.error"), what="an error")[0].text

    def nav(self, page):
        link = self.d.find_element(By.CSS_SELECTOR, tid("nav-" + page))
        if not link.is_displayed():
            self.el("menu-toggle").click()
        self.el("nav-" + page).click()
        return self.loaded(page)

    def loaded(self, page):
        """The page's main element once its body has loaded."""
        return self.wait(lambda d: next(iter(d.find_elements(
            By.CSS_SELECTOR, 'main[data-page="%s"] .page-body[data-loaded]' % page)), None), what="page " + page)

    def row(self, table, row_id):
        return self.wait(lambda d: next(iter(d.find_elements(By.CSS_SELECTOR, '%s tr[data-id="%s"]' % (tid(table), row_id))), None),
                         what="row %s of %s" % (row_id, table))

    def click_in_row(self, table, row_id, testid):
        self.row(table, row_id).find_element(By.CSS_SELECTOR, tid(testid)).click()

    def fill(self, testid, text, within=None):
        e = self.el(testid, within)
        e.clear()
        e.send_keys(text)
        return e

    def submit(self, dialog_testid):
        self.el(dialog_testid + "-submit").click()

    def shot(self, name):
        if not self.d.find_elements(By.CSS_SELECTOR, "dialog[open]"):
            self.d.execute_script("window.scrollTo(0, 0)")
        png = self.d.get_screenshot_as_png()
        with open(os.path.join(self.shots, name + ".png"), "wb") as f:
            f.write(png)
        if os.environ.get("CERTMGR_UPDATE_SCREENSHOTS") == "1":
            docs = os.path.join(SOURCE_DIR, "docs", "console")
            os.makedirs(docs, exist_ok=True)
            with open(os.path.join(docs, name + ".png"), "wb") as f:
                f.write(png)

    def downloaded(self, pattern):
        """The content of the one finished download whose name matches."""
        def done(d):
            if glob.glob(os.path.join(self.downloads, "*.crdownload")):
                return None
            got = [p for p in glob.glob(os.path.join(self.downloads, pattern)) if os.path.getsize(p)]
            return got[0] if got else None
        path = self.wait(done, what="a download %s (the directory has %s)" % (pattern, os.listdir(self.downloads)))
        with open(path, "rb") as f:
            data = f.read()
        os.unlink(path)
        return data

    def sign_in(self, password=PASSWORD, keyboard=False, name=USER):
        self.d.get(self.url)
        user = self.el("login-user")
        self.assertEqual(self.d.switch_to.active_element, user, "the user name field has the focus")
        if keyboard:
            user.send_keys(name)
            ActionChains(self.d).send_keys(Keys.TAB).perform()
            self.assertEqual(self.d.switch_to.active_element, self.el("login-password"))
            ActionChains(self.d).send_keys(password, Keys.ENTER).perform()
        else:
            user.send_keys(name)
            self.el("login-password").send_keys(password)
            self.el("login-submit").click()

    def ensure_signed_in(self):
        if not type(self).signed_in:
            self.sign_in()
            self.el("nav")
            type(self).signed_in = True
        self.d.set_window_size(1200, 800)

    def device(self, name, clientid, sni, cert=None, keep=True):
        return mqtt_connect(self.mqtt_port, clientid, sni=sni, cert=cert or pki(name + ".pem"), key=pki(name + ".key"), keep=keep)

    # ------------------------------------------------------------------
    # Scenarios, in order (one browser session throughout)

    def test_1_sign_in_refused_then_by_keyboard(self):
        self.d.get(self.url)
        self.el("login-form")
        self.shot("sign-in")
        self.sign_in(password="not-the-password")
        refusal = self.el("login-error").text
        self.assertIn("not authorized", refusal)
        self.assertIn("CONNACK 5", refusal)
        self.assertNotIn("u'%s'" % USER, self.b.log())
        # A user who signs in but is no administrator is told so.
        self.sign_in(name="alice", password="alice-pw")
        self.assertIn("this user is not an administrator", self.el("login-error").text)
        self.assertIn("u'alice'", self.b.log())
        self.sign_in(keyboard=True)
        self.el("nav")
        self.loaded("status")
        type(self).signed_in = True
        self.assertEqual(self.el("signed-in-user").text, "%s@127.0.0.1:%d" % (USER, self.console_port))
        # The broker has the console connected as that user.
        self.assertIn("u'%s'" % USER, self.b.log())
        # The navigation and dialogs by keyboard: Enter on a link, Escape
        # closes a dialog, Enter submits its form.
        self.d.execute_script("arguments[0].focus()", self.el("nav-tenants"))
        ActionChains(self.d).send_keys(Keys.ENTER).perform()
        self.loaded("tenants")
        self.d.execute_script("arguments[0].focus()", self.el("tenant-create"))
        ActionChains(self.d).send_keys(Keys.ENTER).perform()
        self.dialog("tenant-dialog")
        self.assertEqual(self.d.switch_to.active_element, self.el("tenant-name"), "the dialog's first field has the focus")
        ActionChains(self.d).send_keys(Keys.ESCAPE).perform()
        self.no_dialog("tenant-dialog")
        self.el("tenant-create").click()
        self.dialog("tenant-dialog")
        self.fill("tenant-hostnames", "acme.test")
        self.fill("tenant-name", "acme").send_keys(Keys.ENTER)
        self.assertEqual(self.message(), "Created tenant acme.")
        self.no_dialog("tenant-dialog")
        self.assertEqual(ok(self.b, "getTenant", tenant="acme")["tenant"]["hostnames"], ["acme.test"])
        self.row("tenants", "acme")
        # An error is shown as the API gives it.
        self.el("tenant-create").click()
        dlg = self.dialog("tenant-dialog")
        self.fill("tenant-hostnames", "ACME.test")
        self.fill("tenant-name", "rival")
        self.submit("tenant-dialog")
        self.assertEqual(self.error_text(dlg), "host name 'acme.test' already belongs to tenant 'acme'")
        self.shot("tenants-error")
        ActionChains(self.d).send_keys(Keys.ESCAPE).perform()
        self.no_dialog("tenant-dialog")
        self.shot("tenants")

    def test_2_upload_a_server_certificate_with_an_encrypted_key(self):
        self.ensure_signed_in()
        key, pem = self.work.file("upload.key"), self.work.file("upload.pem")
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-keyout", key, "-passout", "pass:secret-pass",
                "-out", pem, "-subj", "/CN=console-upload.test", "-days", "30",
                "-addext", "subjectAltName=DNS:console-upload.test,DNS:localhost")
        self.assertIn("ENCRYPTED", read(key))
        new = cert_id(pem)
        builtin = [c["id"] for c in ok(self.b, "listServerCertificates", slot="mqtt")["certificates"] if c["builtin"]][0]
        self.nav("certificates")
        self.el("slot-mqtt").click()
        self.row("server-certs", builtin)
        self.el("upload-open").click()
        dlg = self.dialog("upload-dialog")
        self.assertIn("over TLS", self.el("key-notice", dlg).text)
        self.el("upload-cert-file", dlg).send_keys(pem)
        self.el("upload-key-file", dlg).send_keys(key)
        self.fill("upload-passphrase", "secret-pass")
        self.fill("upload-description", "uploaded by the console test")
        self.el("upload-default").click()
        self.shot("certificates-upload")
        self.submit("upload-dialog")
        self.assertIn("as its default", self.message())
        certs = {c["id"]: c for c in ok(self.b, "listServerCertificates", slot="mqtt")["certificates"]}
        self.assertTrue(certs[new]["default"], certs)
        self.assertEqual(certs[new]["description"], "uploaded by the console test")
        self.assertEqual(served_certificate(self.mqtt_port, host="127.0.0.1")[1], new)
        # Its details, and its downloads: DER made by the page, the chain
        # with its key after the warning.
        self.click_in_row("server-certs", new, "cert-details")
        dlg = self.dialog("server-cert-dialog")
        self.assertEqual(self.el("sha256", dlg).text, new)
        self.assertIn("DNS:console-upload.test", dlg.text)
        self.el("download-der", dlg).click()
        self.assertEqual(hashlib.sha256(self.downloaded("console-upload.test.der")).hexdigest(), new)
        self.el("download-key", dlg).click()
        warn = self.dialog("key-download-dialog")
        self.assertIn("Keep it secret", self.el("key-notice", warn).text)
        self.submit("key-download-dialog")
        data = self.downloaded("console-upload.test-chain-key.pem").decode()
        self.assertIn("PRIVATE KEY", data)
        self.assertEqual(der_id(data[:data.index("-----END CERTIFICATE-----") + 25]), new)
        ActionChains(self.d).send_keys(Keys.ESCAPE).perform()
        self.no_dialog("server-cert-dialog")
        self.shot("certificates")
        # The built-in certificate again, by the page.
        self.click_in_row("server-certs", builtin, "cert-make-default")
        self.assertIn("is the default of the mqtt slot", self.message())
        self.assertEqual(served_certificate(self.mqtt_port, host="127.0.0.1")[1], builtin)

    def test_3_a_csr_signed_by_a_test_ca_is_installed(self):
        self.ensure_signed_in()
        self.nav("certificates")
        self.el("slot-mqtt").click()
        self.el("csr-open").click()
        self.dialog("csr-dialog")
        self.fill("csr-CN", "broker.console.test")
        self.fill("csr-O", "Console Test")
        self.fill("csr-sans", "DNS:broker.console.test")
        Select(self.el("csr-key")).select_by_value("ec-P-384")
        self.submit("csr-dialog")
        result = self.dialog("csr-result-dialog")
        csr_pem = self.el("csr-pem", result).get_attribute("value")
        self.assertIn("BEGIN CERTIFICATE REQUEST", csr_pem)
        csrs = ok(self.b, "listCSRs", slot="mqtt")["csrs"]
        self.assertEqual(len(csrs), 1, csrs)
        self.assertEqual(csrs[0]["keyBits"], 384)
        ActionChains(self.d).send_keys(Keys.ESCAPE).perform()
        self.no_dialog("csr-result-dialog")
        # The CA's answer: the test CA signs it, keeping its SANs.
        csr_file, signed = self.work.file("console.csr"), self.work.file("console-signed.pem")
        with open(csr_file, "w") as f:
            f.write(csr_pem)
        openssl("x509", "-req", "-in", csr_file, "-CA", pki("ca-a.pem"), "-CAkey", pki("ca-a.key"), "-set_serial", "0x%x" % int(time.time()),
                "-days", "30", "-copy_extensions", "copyall", "-out", signed)
        self.click_in_row("csrs", csrs[0]["id"], "csr-install")
        dlg = self.dialog("install-dialog")
        self.el("install-cert-file", dlg).send_keys(signed)
        self.submit("install-dialog")
        self.assertIn("Installed certificate %s" % cert_id(signed)[:16], self.message())
        listed = [c["id"] for c in ok(self.b, "listServerCertificates", slot="mqtt")["certificates"]]
        self.assertIn(cert_id(signed), listed)
        self.assertEqual(ok(self.b, "listCSRs", slot="mqtt")["csrs"], [])
        self.row("server-certs", cert_id(signed))
        self.el("csrs-empty")

    def test_4_a_ca_added_with_preview_then_deactivated_disconnects_its_device(self):
        self.ensure_signed_in()
        if "acme" not in [t["tenant"] for t in ok(self.b, "listTenants")["tenants"]]:
            ok(self.b, "createTenant", tenant="acme", hostnames=["acme.test"])
        ca = cert_id(pki("ca-a.pem"))
        self.nav("tenants")
        self.click_in_row("tenants", "acme", "tenant-trust")
        self.loaded("trust")
        self.assertEqual(Select(self.el("tenant-picker")).first_selected_option.text, "acme")
        self.el("trust-add-open").click()
        dlg = self.dialog("trust-add-dialog")
        self.el("trust-add-file", dlg).send_keys(pki("ca-a.pem"))
        self.fill("trust-add-description", "ACME devices")
        self.submit("trust-add-dialog")
        preview = self.el("trust-preview", dlg)
        self.assertIn("CN=Test CA A", preview.text)
        self.assertIn("CA", preview.text)
        self.assertEqual(ok(self.b, "listCAs", tenant="acme")["cas"], [], "a preview stores nothing")
        self.shot("trust-preview")
        self.submit("trust-add-dialog")
        self.assertIn("Added ca %s" % ca[:16], self.message())
        cas = ok(self.b, "listCAs", tenant="acme")["cas"]
        self.assertEqual([(c["id"], c["description"], c["active"]) for c in cas], [(ca, "ACME devices", True)])
        # A device of that CA connects; deactivated on the page, the CA
        # no longer vouches for it and it is disconnected.
        r = self.device("dev-a1", "d:acme:sensor:a1", "acme.test")
        self.assertEqual(r["result"], "accepted")
        self.click_in_row("trust-ca", ca, "ca-deactivate")
        self.assertIn("inactive", self.message())
        self.assertTrue(closed_within(r["sock"], 5), "the device is still connected")
        r["sock"].close()
        self.assertFalse(ok(self.b, "listCAs", tenant="acme")["cas"][0]["active"])
        self.assertTrue(self.device("dev-a1", "d:acme:sensor:a1", "acme.test", keep=False)["result"].startswith("tls-error"))
        self.click_in_row("trust-ca", ca, "ca-activate")
        self.assertIn("is active", self.message())
        r = self.device("dev-a1", "d:acme:sensor:a1", "acme.test")
        self.assertEqual(r["result"], "accepted")
        self.addCleanup(r["sock"].close)
        # An edit of the tenant: another host name, served with the
        # certificate uploaded before; its device stays connected.
        uploaded = [c["id"] for c in ok(self.b, "listServerCertificates", slot="mqtt")["certificates"]
                    if c["description"] == "uploaded by the console test"][0]
        self.nav("tenants")
        self.click_in_row("tenants", "acme", "tenant-edit")
        self.dialog("tenant-dialog")
        self.el("tenant-hostnames").send_keys("\nacme2.test")
        Select(self.el("tenant-cert-mqtt")).select_by_value(uploaded)
        self.submit("tenant-dialog")
        self.assertEqual(self.message(), "Saved tenant acme.")
        t = ok(self.b, "getTenant", tenant="acme")["tenant"]
        self.assertEqual((t["hostnames"], t["serverCertificates"].get("mqtt")), (["acme.test", "acme2.test"], uploaded))
        self.assertEqual(served_certificate(self.mqtt_port, servername="acme2.test", host="127.0.0.1")[1], uploaded)
        self.assertFalse(closed_within(r["sock"], 0.5), "editing the host names disconnected the device")
        self.click_in_row("tenants", "acme", "tenant-trust")
        self.loaded("trust")
        # Its details and CRL state, its DER made by the page.
        self.click_in_row("trust-ca", ca, "ca-details")
        dlg = self.dialog("ca-dialog")
        self.assertIn("Source", self.el("crl-facts", dlg).text)
        self.el("download-der", dlg).click()
        self.assertEqual(hashlib.sha256(self.downloaded("Test_CA_A.der")).hexdigest(), ca)
        # Refreshing a CRL there is no URL for: the API's error, as it is.
        self.el("crl-refresh", dlg).click()
        self.assertEqual(self.error_text(dlg), "CA %s has no CRL URL to refresh from (give one with modifyCA crlUrl, or upload the CRL)" % ca)
        self.shot("trust-details")
        ActionChains(self.d).send_keys(Keys.ESCAPE).perform()
        self.no_dialog("ca-dialog")
        self.el("trust-export").click()
        self.assertEqual(der_id(self.downloaded("acme-trust-list.pem").decode()), ca)
        self.shot("trust")

    def test_4c_a_crl_uploaded_on_the_page_disconnects_the_revoked_device(self):
        self.ensure_signed_in()
        ok(self.b, "createTenant", tenant="epsilon", hostnames=["epsilon.test"])
        ca = ok(self.b, "addCA", tenant="epsilon", certificate=read(pki("ca-a.pem")))["ca"]["id"]
        revoked = self.device("dev-a2", "d:epsilon:meter:a2", "epsilon.test")
        other = self.device("dev-a1", "d:epsilon:sensor:a1", "epsilon.test")
        self.assertEqual((revoked["result"], other["result"]), ("accepted", "accepted"))
        self.addCleanup(revoked["sock"].close)
        self.addCleanup(other["sock"].close)
        self.nav("trust")
        Select(self.el("tenant-picker")).select_by_value("epsilon")
        self.wait(lambda d: "epsilon" in d.current_url, what="the trust list of epsilon")
        self.row("trust-ca", ca)
        self.el("crl-upload-any").click()
        dlg = self.dialog("crl-upload-dialog")
        self.el("crl-upload-file", dlg).send_keys(pki("crl-a.pem"))
        self.submit("crl-upload-dialog")
        self.assertRegex(self.message(), r"^CRL installed for %s.*: 1 revoked, next update " % ca[:16])
        # Enforced on the live session of the revoked device alone.
        self.assertTrue(closed_within(revoked["sock"], 5), "the revoked device is still connected")
        self.assertFalse(closed_within(other["sock"], 0.5), "a device the CRL does not name was disconnected")
        crl = ok(self.b, "getCA", tenant="epsilon", id=ca)["ca"]["crl"]
        self.assertEqual((crl["source"], crl["revoked"]), ("upload", 1))
        self.assertIn("upload, 1 revoked", self.row("trust-ca", ca).text)
        self.assertFalse(self.device("dev-a2", "d:epsilon:meter:a2", "epsilon.test", keep=False)["result"] == "accepted")

    def test_5_a_rejected_chain_is_trusted_by_its_root(self):
        self.ensure_signed_in()
        ok(self.b, "createTenant", tenant="beta", hostnames=["beta.test"])
        chain = self.work.file("dev-b1-chain.pem")
        with open(chain, "w") as f:
            f.write(read(pki("dev-b1.pem")) + read(pki("ca-b.pem")))
        self.assertTrue(self.device("dev-b1", "d:beta:sensor:b1", "beta.test", cert=chain, keep=False)["result"].startswith("tls-error"))
        entry = [r for r in ok(self.b, "listRejected")["rejected"] if r["commonName"] == "d:sensor:b1"][0]
        self.assertEqual(entry["chainLength"], 2)
        self.nav("rejected")
        row = self.row("rejected", entry["id"])
        self.assertIn("beta.test", row.text)
        self.shot("rejected")
        self.click_in_row("rejected", entry["id"], "rejected-details")
        dlg = self.dialog("rejected-dialog")
        certs = self.wait(lambda d: dlg.find_elements(By.CSS_SELECTOR, tid("chain-cert")))
        self.assertEqual(len(certs), 2)
        self.assertIn("CN=Test CA B", certs[1].text)
        ActionChains(self.d).send_keys(Keys.ESCAPE).perform()
        self.no_dialog("rejected-dialog")
        self.click_in_row("rejected", entry["id"], "rejected-trust")
        self.dialog("trust-rejected-dialog")
        Select(self.el("trust-rejected-tenant")).select_by_value("beta")
        self.el("anchor-root").click()
        self.submit("trust-rejected-dialog")
        self.assertIn("Trusted in beta: ca %s" % cert_id(pki("ca-b.pem"))[:16], self.message())
        self.assertEqual([c["id"] for c in ok(self.b, "listCAs", tenant="beta")["cas"]], [cert_id(pki("ca-b.pem"))])
        self.assertNotIn(entry["id"], [r["id"] for r in ok(self.b, "listRejected")["rejected"]])
        self.assertEqual(self.device("dev-b1", "d:beta:sensor:b1", "beta.test", cert=chain, keep=False)["result"], "accepted")

    def test_5b_markup_in_a_certificate_is_shown_as_text(self):
        # An attacker who can reach the device port chooses every field of
        # the certificate it shows; refused, it lands on the rejected list
        # that an administrator reads in the console. Its markup must be
        # text there, never markup: a script in the page would hold the
        # administrator's signed-in connection.
        self.ensure_signed_in()
        cn = '<img src=x onerror="window.__pwned=1">d:evil:1'
        key, pem = self.work.file("evil.key"), self.work.file("evil.pem")
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
                "-out", pem, "-subj", "/CN=" + cn + "/O=<script>window.__pwned=2<\\/script>", "-days", "30")
        r = mqtt_connect(self.mqtt_port, "d:evil:1", cert=pem, key=key, keep=False)
        self.assertTrue(r["result"].startswith("tls-error"), r)
        entry = [e for e in ok(self.b, "listRejected")["rejected"] if e["commonName"] == cn][0]
        self.nav("status")
        self.nav("rejected")
        row = self.row("rejected", entry["id"])
        self.assertIn(cn, row.text)
        self.click_in_row("rejected", entry["id"], "rejected-details")
        dlg = self.dialog("rejected-dialog")
        cert = self.wait(lambda d: dlg.find_elements(By.CSS_SELECTOR, tid("chain-cert")))[0]
        # The API gives the subject as RFC 2253 writes it, '<' escaped.
        self.assertIn("O=\\<script\\>window.__pwned=2\\</script\\>", cert.text)
        self.assertEqual(self.d.find_elements(By.CSS_SELECTOR, "img[src='x']"), [])
        self.assertIsNone(self.d.execute_script("return window.__pwned === undefined ? null : window.__pwned"))
        # And were markup ever let through, the page's policy runs no
        # script but its own.
        csp = self.d.execute_script(
            "var m = document.querySelector('meta[http-equiv=\"Content-Security-Policy\"]'); return m && m.content")
        self.assertRegex(csp or "", r"(^|; )script-src 'sha256-[A-Za-z0-9+/=]+'(;|$)")
        self.assertFalse(self.d.execute_script(
            "var s = document.createElement('script'); s.textContent = 'window.__pwned = 3';"
            "document.body.appendChild(s); return window.__pwned === 3"))
        ActionChains(self.d).send_keys(Keys.ESCAPE).perform()
        self.no_dialog("rejected-dialog")
        ok(self.b, "clearRejected")

    def test_6_blocking_a_device_disconnects_it(self):
        self.ensure_signed_in()
        ok(self.b, "createTenant", tenant="gamma", hostnames=["gamma.test"])
        ok(self.b, "addCA", tenant="gamma", certificate=read(pki("ca-a.pem")))
        r = self.device("dev-a1", "d:gamma:sensor:a1", "gamma.test")
        self.assertEqual(r["result"], "accepted")
        self.nav("devices")
        Select(self.el("tenant-picker")).select_by_value("gamma")
        self.wait(lambda d: "gamma" in d.current_url, what="the devices of gamma")
        row = self.row("devices", "d:gamma:sensor:a1")
        self.assertIn("on ", row.text)
        self.shot("devices")
        # Its CA has no CRL: the audit finds it, as the API does.
        self.assertEqual(ok(self.b, "auditFleet", tenant="gamma")["counts"]["caWithoutCRL"], 1)
        self.el("audit-run").click()
        self.assertIn("caWithoutCRL", self.el("audit-findings").text)
        self.click_in_row("devices", "d:gamma:sensor:a1", "device-block")
        self.dialog("block-dialog")
        self.assertEqual(self.el("block-id").get_attribute("value"), "d:gamma:sensor:a1")
        self.fill("block-reason", "reported stolen")
        self.submit("block-dialog")
        self.assertEqual(self.message(), "Blocked d:gamma:sensor:a1 (reported stolen).")
        self.assertTrue(closed_within(r["sock"], 5), "the blocked device is still connected")
        r["sock"].close()
        blocked = ok(self.b, "listBlocked", tenant="gamma")["devices"]
        self.assertEqual([(b["id"], b["reason"]) for b in blocked], [("d:gamma:sensor:a1", "reported stolen")])
        self.assertTrue(blocked[0]["by"].startswith("console-%s-" % USER), blocked)
        self.assertTrue(self.device("dev-a1", "d:gamma:sensor:a1", "gamma.test", keep=False)["result"].startswith("tls-error"))
        self.row("blocked-devices", "d:gamma:sensor:a1")
        self.shot("devices-blocked")

    def test_7_an_enrollment_is_approved_on_the_page(self):
        self.ensure_signed_in()
        self.nav("enrollments")
        # The tenant chosen on the devices page is kept: choose another.
        self.assertEqual(Select(self.el("tenant-picker")).first_selected_option.text, "gamma")
        Select(self.el("tenant-picker")).select_by_value("default")
        self.wait(lambda d: d.current_url.endswith("#/enrollments/default"), what="the enrollments of default")
        self.loaded("enrollments")
        self.el("issuing-open").click()
        self.dialog("issuing-dialog")
        self.fill("issuing-cn", "Console Devices CA")
        self.submit("issuing-dialog")
        self.assertIn("Created the issuing CA CN=Console Devices CA", self.message())
        issuing = ok(self.b, "getTenant", tenant="default")["tenant"]["enrollment"]["issuingCA"]
        self.assertIn(issuing, [c["id"] for c in ok(self.b, "listCAs", tenant="default")["cas"]])
        self.el("policy-open").click()
        self.dialog("policy-dialog")
        Select(self.el("policy-mode")).select_by_value("approval")
        self.fill("policy-pattern", "d:sensor:*")
        self.submit("policy-dialog")
        self.assertIn("Saved the enrollment policy", self.message())
        self.assertEqual(ok(self.b, "getTenant", tenant="default")["tenant"]["enrollment"]["idPattern"], "d:sensor:*")
        # A claim device asks for a certificate and waits.
        claims = Pki(self.work.file("claims"))
        ok(self.b, "addCA", tenant="default", certificate=read(claims.ca("claim-ca", "Claim CA")), purpose="claim")
        cert, key = claims.sign("claim", "claim-ca", "batch-1")
        r = mqtt_connect(self.mqtt_port, "claimer-1", cert=cert, key=key, keep=True)
        self.assertEqual(r["result"], "accepted")
        sock = r["sock"]
        self.addCleanup(sock.close)
        self.assertEqual(mqtt_subscribe(sock, ANSWER), 0)
        mqtt_publish(sock, ENROLL, json.dumps({"csr": claims.csr("dev", cn="d:sensor:p1"), "correlationData": "p"}))
        self.assertEqual(json.loads(mqtt_messages(sock, 10, first_only=True)[0][1])["pending"], True)
        self.d.execute_script("window.scrollTo(0, 0)")
        self.el("refresh").click()
        row = self.row("enrollments", "d:sensor:p1")
        self.assertIn("claimer-1", row.text)
        self.shot("enrollments")
        self.click_in_row("enrollments", "d:sensor:p1", "enroll-approve")
        self.assertIn("Approved d:sensor:p1", self.message())
        pushed = json.loads(mqtt_messages(sock, 10, first_only=True)[0][1])
        self.assertIn("BEGIN CERTIFICATE", pushed["certificate"])
        self.assertEqual([(e["identity"], e["state"]) for e in ok(self.b, "listEnrollments", tenant="default")["enrollments"]],
                         [("d:sensor:p1", "approved")])

    def test_8_every_page_shows_its_answers(self):
        self.ensure_signed_in()
        page = self.nav("status")
        counters = self.el("status-counters")
        self.assertIn("Tenants", counters.text)
        tenants = len(ok(self.b, "listTenants")["tenants"])
        self.assertEqual(counters.find_element(By.CSS_SELECTOR, '[data-key="Tenants"] .value').text, str(tenants))
        self.assertIn("Host-name warnings", page.text)
        self.shot("status")
        # The live feed has the changes this session made.
        self.nav("events")
        self.wait(lambda d: d.find_elements(By.CSS_SELECTOR, tid("event-list") + ' li[data-event="change"]'), what="change events")
        ok(self.b, "createTenant", tenant="delta")
        self.wait(lambda d: "tenant=delta" in self.el("event-list").text, what="the event of the change just made")
        self.shot("events")
        # A broker on the files store is no fleet node: the API's error, exactly.
        self.nav("nodes")
        self.assertEqual(self.error_text(self.el("page-messages")), "this broker is no fleet node: plugin_opt_store is files")
        self.shot("nodes")

    def test_9_a_narrow_window_folds_the_navigation(self):
        self.ensure_signed_in()
        self.nav("tenants")
        self.d.set_window_size(400, 800)
        try:
            self.wait(lambda d: not d.find_element(By.CSS_SELECTOR, tid("nav-status")).is_displayed(), what="the navigation to fold")
            toggle = self.el("menu-toggle")
            self.assertEqual(toggle.get_attribute("aria-expanded"), "false")
            toggle.click()
            self.assertEqual(toggle.get_attribute("aria-expanded"), "true")
            self.el("nav-devices")
            self.shot("narrow-menu")
            self.el("nav-tenants").click()
            self.loaded("tenants")
            self.wait(lambda d: not d.find_element(By.CSS_SELECTOR, tid("nav-status")).is_displayed(), what="the menu to close")
            # The page itself does not scroll sideways: its tables do.
            width = self.d.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
            self.assertLessEqual(width[0], width[1], width)
            self.row("tenants", "acme")
            self.shot("narrow")
            # And it works there: a tenant made through the narrow page.
            self.el("tenant-create").click()
            self.dialog("tenant-dialog")
            self.fill("tenant-name", "narrow").send_keys(Keys.ENTER)
            self.assertEqual(self.message(), "Created tenant narrow.")
            self.assertIn("narrow", [t["tenant"] for t in ok(self.b, "listTenants")["tenants"]])
        finally:
            self.d.set_window_size(1200, 800)


if __name__ == "__main__":
    unittest.main()
