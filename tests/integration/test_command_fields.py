"""Every command of the dispatch table refuses a field it does not take
and a field of the wrong type, with an error that names the field. The
commands and their fields are read from the tables in plugin/control/cmd_*.c, so
that a command added there is tested here without a line more."""

import os
import re
import unittest

from harness import Broker, Workdir, control, ok, SOURCE_DIR

ROW = re.compile(r'^\s*\{"(\w+)", \w+, CM_(?:WRITES|READS), (\w+)\},', re.M)
TABLE = re.compile(r"static const struct cm_field (\w+)\[\] = \{(.*?)\n\};", re.S)
FIELD = re.compile(r'\{"(\w+)", CM_FIELD_(\w+), CM_(REQUIRED|OPTIONAL)')

# A value of another type than the field's.
WRONG = {"STRING": 5, "BOOL": "yes", "STRINGS": [1], "OBJECT": "x", "PEMS": 5, "COUNT": "ten", "NUMBER": "x"}


def field_tables(text):
    return {t: FIELD.findall(body) for t, body in TABLE.findall(text)}


def command_tables():
    """{command: [(field, type, required)]} of every cmd_*.c: its own
    tables, or the shared ones of control.c."""
    plugin = os.path.join(SOURCE_DIR, "plugin", "control")
    with open(os.path.join(plugin, "control.c")) as f:
        shared = field_tables(f.read().replace("const struct cm_field", "static const struct cm_field"))
    out = {}
    for name in sorted(os.listdir(plugin)):
        if not (name.startswith("cmd_") and name.endswith(".c")):
            continue
        with open(os.path.join(plugin, name)) as f:
            text = f.read()
        tables = dict(shared, **field_tables(text))
        for command, table in ROW.findall(text):
            out[command] = tables[table]
    return out


class CommandFieldsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.commands = command_tables()
        cls.work = Workdir()
        cls.broker = Broker(cls.work)
        cls.broker.start()

    @classmethod
    def tearDownClass(cls):
        rc = cls.broker.stop()
        cls.work.cleanup()
        assert rc == 0, "broker exited with %d" % rc

    def ask(self, commands):
        resp = control(self.broker, commands)
        self.assertIsNotNone(resp, "no answer")
        self.assertEqual(len(resp["responses"]), len(commands))
        return resp["responses"]

    def test_the_tables_are_read(self):
        with open(os.path.join(SOURCE_DIR, "docs", "API.md")) as f:
            documented = set(re.findall(r"^### (\w+)$", f.read(), re.M))
        self.assertEqual(set(self.commands), documented)
        self.assertEqual(self.commands["setCAState"], [("tenant", "STRING", "REQUIRED"), ("id", "STRING", "REQUIRED"),
                                                       ("active", "BOOL", "REQUIRED")])

    def test_every_command_refuses_an_unknown_field_by_name(self):
        names = sorted(self.commands)
        answers = self.ask([{"command": n, "tenantt": "acme", "correlationData": n} for n in names])
        for name, r in zip(names, answers):
            self.assertEqual(r["command"], name)
            self.assertEqual(r.get("correlationData"), name)
            self.assertIn("error", r, name)
            self.assertNotIn("data", r, name)
            self.assertIn("unknown field 'tenantt'", r["error"], name)
            for field, _, _ in self.commands[name]:
                self.assertIn(field, r["error"], "%s: the error lists the fields it takes" % name)

    def test_every_command_refuses_each_mistyped_field_by_name(self):
        sent, expect = [], []
        for name in sorted(self.commands):
            fields = self.commands[name]
            if not fields:
                # A command of no fields: the envelope's own field.
                sent.append({"command": name, "correlationData": 7})
                expect.append((name, "correlationData"))
            for field, kind, _ in fields:
                sent.append({"command": name, field: WRONG[kind]})
                expect.append((name, field))
        answers = self.ask(sent)
        for (name, field), r in zip(expect, answers):
            self.assertEqual(r["command"], name)
            self.assertIn("error", r, "%s.%s" % (name, field))
            self.assertIn("'%s' must be" % field, r["error"], "%s.%s" % (name, field))

    def test_a_missing_required_field_is_named(self):
        for name, fields in sorted(self.commands.items()):
            required = [f for f, _, req in fields if req == "REQUIRED"]
            if not required:
                continue
            r = self.ask([{"command": name}])[0]
            self.assertIn("'%s' is missing" % required[0], r.get("error", ""), name)

    def test_a_refused_field_changes_nothing(self):
        before = ok(self.broker, "getStatus")["status"]["generation"]
        r = self.ask([{"command": "createTenant", "tenant": "fieldtest", "hostname": "x.example.com"}])[0]
        self.assertIn("unknown field 'hostname'", r["error"])
        self.assertNotIn("fieldtest", [t["tenant"] for t in ok(self.broker, "listTenants")["tenants"]])
        self.assertEqual(ok(self.broker, "getStatus")["status"]["generation"], before)

    def test_a_misspelt_member_of_a_key_is_refused(self):
        answers = self.ask([{"command": "regenerateSelfSigned", "slot": "bridge", "key": {"type": "ec", "curv": "P-384"}},
                            {"command": "createCSR", "slot": "mqtt", "subject": {"CN": "x"}, "key": {"type": "rsa", "bit": 4096}}])
        self.assertEqual(answers[0]["error"], "unknown field 'key.curv' (a key takes type, curve, bits)")
        self.assertEqual(answers[1]["error"], "unknown field 'key.bit' (a key takes type, curve, bits)")

    def test_the_envelope_fields_are_taken_by_every_command(self):
        r = self.ask([{"command": "listTenants", "correlationData": "c1"}])[0]
        self.assertNotIn("error", r)
        self.assertEqual(r["correlationData"], "c1")


if __name__ == "__main__":
    unittest.main()
