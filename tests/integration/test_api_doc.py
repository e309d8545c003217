"""docs/API.md cannot drift: every example request in it is sent, in
order, to a real broker, and the answer must be the documented one."""

import json
import os
import re
import unittest

from harness import Broker, Workdir, control, SOURCE_DIR

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
# Fields whose value is the moment of the change: any time stamp will do.
MOMENTS = {"created", "added", "firstSeen", "lastSeen", "lastAttempt", "lastSuccess"}
# A documented "..." stands for a value that depends on the broker's own
# self-signed certificate or on the traffic so far; the key must be there.
ANY = "..."


def examples(text):
    """(request, documented response) pairs of the document, in order."""
    blocks = re.findall(r"```json (request|response)\n(.*?)```", text, re.S)
    pairs = []
    for i in range(0, len(blocks), 2):
        (kind1, req), (kind2, resp) = blocks[i], blocks[i + 1]
        assert (kind1, kind2) == ("request", "response"), "examples must alternate request/response at %d" % i
        pairs.append((req.strip(), resp.strip()))
    return pairs


def differences(doc, got, path="$"):
    """Where got differs from doc (the documented value)."""
    if isinstance(doc, dict) and isinstance(got, dict):
        out = []
        if set(doc) != set(got):
            out.append("%s: keys %s documented, %s answered" % (path, sorted(doc), sorted(got)))
        for k in set(doc) & set(got):
            if k in MOMENTS and isinstance(doc[k], str) and ISO.match(doc[k]) and isinstance(got[k], str) and ISO.match(got[k]):
                continue
            out += differences(doc[k], got[k], "%s.%s" % (path, k))
        return out
    if isinstance(doc, list) and isinstance(got, list):
        if len(doc) != len(got):
            return ["%s: %d entries documented, %d answered" % (path, len(doc), len(got))]
        out = []
        for i, (d, g) in enumerate(zip(doc, got)):
            out += differences(d, g, "%s[%d]" % (path, i))
        return out
    if doc == ANY:
        return []
    return [] if doc == got else ["%s: documented %r, answered %r" % (path, doc, got)]


class ApiDocTest(unittest.TestCase):
    def test_every_documented_example_gets_the_documented_answer(self):
        with open(os.path.join(SOURCE_DIR, "docs", "API.md")) as f:
            pairs = examples(f.read())
        self.assertGreaterEqual(len(pairs), 10)
        work = Workdir()
        b = Broker(work)
        b.start()
        try:
            for req, documented in pairs:
                got = control(b, None, raw=req)
                self.assertIsNotNone(got, "no answer to " + req[:100])
                diff = differences(json.loads(documented), got)
                self.assertEqual(diff, [], "request %s\nanswered %s" % (req[:200], json.dumps(got, indent=2)))
        finally:
            self.assertEqual(b.stop(), 0)
            work.cleanup()

    def test_every_command_of_the_api_is_documented(self):
        with open(os.path.join(SOURCE_DIR, "docs", "API.md")) as f:
            text = f.read()
        commands = set()
        for name in os.listdir(os.path.join(SOURCE_DIR, "plugin", "control")):
            if name.startswith("cmd_") and name.endswith(".c"):
                with open(os.path.join(SOURCE_DIR, "plugin", "control", name)) as f:
                    commands |= set(re.findall(r'^\s*\{"(\w+)", \w+, CM_(?:WRITES|READS), \w+\},', f.read(), re.M))
        self.assertTrue(commands)
        documented = set(re.findall(r"^### (\w+)$", text, re.M))
        self.assertEqual(commands - documented, set(), "commands without a section in docs/API.md")
        sent = {json.loads(req)["commands"][0]["command"] for req, _ in examples(text) if isinstance(json.loads(req)["commands"], list)}
        self.assertEqual(commands - sent, set(), "commands without an example in docs/API.md")


if __name__ == "__main__":
    unittest.main()
