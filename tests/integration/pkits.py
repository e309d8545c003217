"""NIST PKITS (Public Key Interoperability Test Suite, certificates of
2011) as data for test_pkits.py: the tests of the sections certmgr is
measured on, each mapped to its PKITS number, its expected result, the
certification path of its end entity and the CRLs it needs, all derived
from the files Debian's python3-cryptography-vectors ships.

Only PKITS facts are encoded here (test numbers, names, expected results);
the paths are built from the certificates themselves."""

import base64
import glob
import os
import warnings

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtensionOID

DATA = os.environ.get("CERTMGR_PKITS_DATA",
                      "/usr/lib/python3/dist-packages/cryptography_vectors/x509/PKITS_data")
P12_PASSWORD = b"password"
ROOT = "TrustAnchorRootCertificate"

# PKITS number and the stem of the end entity's file (certs/<stem>EE.crt).
# 4.8.1 replays 4.1.1's path (PKITS gives it no certificate of its own);
# 4.16 (private extensions) is not measured.
TESTS = """
4.1.1 ValidCertificatePathTest1
4.1.2 InvalidCASignatureTest2
4.1.3 InvalidEESignatureTest3
4.1.4 ValidDSASignaturesTest4
4.1.5 ValidDSAParameterInheritanceTest5
4.1.6 InvalidDSASignatureTest6
4.2.1 InvalidCAnotBeforeDateTest1
4.2.2 InvalidEEnotBeforeDateTest2
4.2.3 Validpre2000UTCnotBeforeDateTest3
4.2.4 ValidGeneralizedTimenotBeforeDateTest4
4.2.5 InvalidCAnotAfterDateTest5
4.2.6 InvalidEEnotAfterDateTest6
4.2.7 Invalidpre2000UTCEEnotAfterDateTest7
4.2.8 ValidGeneralizedTimenotAfterDateTest8
4.3.1 InvalidNameChainingTest1
4.3.2 InvalidNameChainingOrderTest2
4.3.3 ValidNameChainingWhitespaceTest3
4.3.4 ValidNameChainingWhitespaceTest4
4.3.5 ValidNameChainingCapitalizationTest5
4.3.6 ValidNameUIDsTest6
4.3.7 ValidRFC3280MandatoryAttributeTypesTest7
4.3.8 ValidRFC3280OptionalAttributeTypesTest8
4.3.9 ValidUTF8StringEncodedNamesTest9
4.3.10 ValidRolloverfromPrintableStringtoUTF8StringTest10
4.3.11 ValidUTF8StringCaseInsensitiveMatchTest11
4.4.1 InvalidMissingCRLTest1
4.4.2 InvalidRevokedCATest2
4.4.3 InvalidRevokedEETest3
4.4.4 InvalidBadCRLSignatureTest4
4.4.5 InvalidBadCRLIssuerNameTest5
4.4.6 InvalidWrongCRLTest6
4.4.7 ValidTwoCRLsTest7
4.4.8 InvalidUnknownCRLEntryExtensionTest8
4.4.9 InvalidUnknownCRLExtensionTest9
4.4.10 InvalidUnknownCRLExtensionTest10
4.4.11 InvalidOldCRLnextUpdateTest11
4.4.12 Invalidpre2000CRLnextUpdateTest12
4.4.13 ValidGeneralizedTimeCRLnextUpdateTest13
4.4.14 ValidNegativeSerialNumberTest14
4.4.15 InvalidNegativeSerialNumberTest15
4.4.16 ValidLongSerialNumberTest16
4.4.17 ValidLongSerialNumberTest17
4.4.18 InvalidLongSerialNumberTest18
4.4.19 ValidSeparateCertificateandCRLKeysTest19
4.4.20 InvalidSeparateCertificateandCRLKeysTest20
4.4.21 InvalidSeparateCertificateandCRLKeysTest21
4.5.1 ValidBasicSelfIssuedOldWithNewTest1
4.5.2 InvalidBasicSelfIssuedOldWithNewTest2
4.5.3 ValidBasicSelfIssuedNewWithOldTest3
4.5.4 ValidBasicSelfIssuedNewWithOldTest4
4.5.5 InvalidBasicSelfIssuedNewWithOldTest5
4.5.6 ValidBasicSelfIssuedCRLSigningKeyTest6
4.5.7 InvalidBasicSelfIssuedCRLSigningKeyTest7
4.5.8 InvalidBasicSelfIssuedCRLSigningKeyTest8
4.6.1 InvalidMissingbasicConstraintsTest1
4.6.2 InvalidcAFalseTest2
4.6.3 InvalidcAFalseTest3
4.6.4 ValidbasicConstraintsNotCriticalTest4
4.6.5 InvalidpathLenConstraintTest5
4.6.6 InvalidpathLenConstraintTest6
4.6.7 ValidpathLenConstraintTest7
4.6.8 ValidpathLenConstraintTest8
4.6.9 InvalidpathLenConstraintTest9
4.6.10 InvalidpathLenConstraintTest10
4.6.11 InvalidpathLenConstraintTest11
4.6.12 InvalidpathLenConstraintTest12
4.6.13 ValidpathLenConstraintTest13
4.6.14 ValidpathLenConstraintTest14
4.6.15 ValidSelfIssuedpathLenConstraintTest15
4.6.16 InvalidSelfIssuedpathLenConstraintTest16
4.6.17 ValidSelfIssuedpathLenConstraintTest17
4.7.1 InvalidkeyUsageCriticalkeyCertSignFalseTest1
4.7.2 InvalidkeyUsageNotCriticalkeyCertSignFalseTest2
4.7.3 ValidkeyUsageNotCriticalTest3
4.7.4 InvalidkeyUsageCriticalcRLSignFalseTest4
4.7.5 InvalidkeyUsageNotCriticalcRLSignFalseTest5
4.8.1 ValidCertificatePathTest1
4.8.2 AllCertificatesNoPoliciesTest2
4.8.3 DifferentPoliciesTest3
4.8.4 DifferentPoliciesTest4
4.8.5 DifferentPoliciesTest5
4.8.6 OverlappingPoliciesTest6
4.8.7 DifferentPoliciesTest7
4.8.8 DifferentPoliciesTest8
4.8.9 DifferentPoliciesTest9
4.8.10 AllCertificatesSamePoliciesTest10
4.8.11 AllCertificatesanyPolicyTest11
4.8.12 DifferentPoliciesTest12
4.8.13 AllCertificatesSamePoliciesTest13
4.8.14 AnyPolicyTest14
4.8.15 UserNoticeQualifierTest15
4.8.16 UserNoticeQualifierTest16
4.8.17 UserNoticeQualifierTest17
4.8.18 UserNoticeQualifierTest18
4.8.19 UserNoticeQualifierTest19
4.8.20 CPSPointerQualifierTest20
4.9.1 ValidrequireExplicitPolicyTest1
4.9.2 ValidrequireExplicitPolicyTest2
4.9.3 InvalidrequireExplicitPolicyTest3
4.9.4 ValidrequireExplicitPolicyTest4
4.9.5 InvalidrequireExplicitPolicyTest5
4.9.6 ValidSelfIssuedrequireExplicitPolicyTest6
4.9.7 InvalidSelfIssuedrequireExplicitPolicyTest7
4.9.8 InvalidSelfIssuedrequireExplicitPolicyTest8
4.10.1 ValidPolicyMappingTest1
4.10.2 InvalidPolicyMappingTest2
4.10.3 ValidPolicyMappingTest3
4.10.4 InvalidPolicyMappingTest4
4.10.5 ValidPolicyMappingTest5
4.10.6 ValidPolicyMappingTest6
4.10.7 InvalidMappingFromanyPolicyTest7
4.10.8 InvalidMappingToanyPolicyTest8
4.10.9 ValidPolicyMappingTest9
4.10.10 InvalidPolicyMappingTest10
4.10.11 ValidPolicyMappingTest11
4.10.12 ValidPolicyMappingTest12
4.10.13 ValidPolicyMappingTest13
4.10.14 ValidPolicyMappingTest14
4.11.1 InvalidinhibitPolicyMappingTest1
4.11.2 ValidinhibitPolicyMappingTest2
4.11.3 InvalidinhibitPolicyMappingTest3
4.11.4 ValidinhibitPolicyMappingTest4
4.11.5 InvalidinhibitPolicyMappingTest5
4.11.6 InvalidinhibitPolicyMappingTest6
4.11.7 ValidSelfIssuedinhibitPolicyMappingTest7
4.11.8 InvalidSelfIssuedinhibitPolicyMappingTest8
4.11.9 InvalidSelfIssuedinhibitPolicyMappingTest9
4.11.10 InvalidSelfIssuedinhibitPolicyMappingTest10
4.11.11 InvalidSelfIssuedinhibitPolicyMappingTest11
4.12.1 InvalidinhibitAnyPolicyTest1
4.12.2 ValidinhibitAnyPolicyTest2
4.12.3 inhibitAnyPolicyTest3
4.12.4 InvalidinhibitAnyPolicyTest4
4.12.5 InvalidinhibitAnyPolicyTest5
4.12.6 InvalidinhibitAnyPolicyTest6
4.12.7 ValidSelfIssuedinhibitAnyPolicyTest7
4.12.8 InvalidSelfIssuedinhibitAnyPolicyTest8
4.12.9 ValidSelfIssuedinhibitAnyPolicyTest9
4.12.10 InvalidSelfIssuedinhibitAnyPolicyTest10
4.13.1 ValidDNnameConstraintsTest1
4.13.2 InvalidDNnameConstraintsTest2
4.13.3 InvalidDNnameConstraintsTest3
4.13.4 ValidDNnameConstraintsTest4
4.13.5 ValidDNnameConstraintsTest5
4.13.6 ValidDNnameConstraintsTest6
4.13.7 InvalidDNnameConstraintsTest7
4.13.8 InvalidDNnameConstraintsTest8
4.13.9 InvalidDNnameConstraintsTest9
4.13.10 InvalidDNnameConstraintsTest10
4.13.11 ValidDNnameConstraintsTest11
4.13.12 InvalidDNnameConstraintsTest12
4.13.13 InvalidDNnameConstraintsTest13
4.13.14 ValidDNnameConstraintsTest14
4.13.15 InvalidDNnameConstraintsTest15
4.13.16 InvalidDNnameConstraintsTest16
4.13.17 InvalidDNnameConstraintsTest17
4.13.18 ValidDNnameConstraintsTest18
4.13.19 ValidDNnameConstraintsTest19
4.13.20 InvalidDNnameConstraintsTest20
4.13.21 ValidRFC822nameConstraintsTest21
4.13.22 InvalidRFC822nameConstraintsTest22
4.13.23 ValidRFC822nameConstraintsTest23
4.13.24 InvalidRFC822nameConstraintsTest24
4.13.25 ValidRFC822nameConstraintsTest25
4.13.26 InvalidRFC822nameConstraintsTest26
4.13.27 ValidDNandRFC822nameConstraintsTest27
4.13.28 InvalidDNandRFC822nameConstraintsTest28
4.13.29 InvalidDNandRFC822nameConstraintsTest29
4.13.30 ValidDNSnameConstraintsTest30
4.13.31 InvalidDNSnameConstraintsTest31
4.13.32 ValidDNSnameConstraintsTest32
4.13.33 InvalidDNSnameConstraintsTest33
4.13.34 ValidURInameConstraintsTest34
4.13.35 InvalidURInameConstraintsTest35
4.13.36 ValidURInameConstraintsTest36
4.13.37 InvalidURInameConstraintsTest37
4.13.38 InvalidDNSnameConstraintsTest38
4.14.1 ValiddistributionPointTest1
4.14.2 InvaliddistributionPointTest2
4.14.3 InvaliddistributionPointTest3
4.14.4 ValiddistributionPointTest4
4.14.5 ValiddistributionPointTest5
4.14.6 InvaliddistributionPointTest6
4.14.7 ValiddistributionPointTest7
4.14.8 InvaliddistributionPointTest8
4.14.9 InvaliddistributionPointTest9
4.14.10 ValidNoissuingDistributionPointTest10
4.14.11 InvalidonlyContainsUserCertsTest11
4.14.12 InvalidonlyContainsCACertsTest12
4.14.13 ValidonlyContainsCACertsTest13
4.14.14 InvalidonlyContainsAttributeCertsTest14
4.14.15 InvalidonlySomeReasonsTest15
4.14.16 InvalidonlySomeReasonsTest16
4.14.17 InvalidonlySomeReasonsTest17
4.14.18 ValidonlySomeReasonsTest18
4.14.19 ValidonlySomeReasonsTest19
4.14.20 InvalidonlySomeReasonsTest20
4.14.21 InvalidonlySomeReasonsTest21
4.14.22 ValidIDPwithindirectCRLTest22
4.14.23 InvalidIDPwithindirectCRLTest23
4.14.24 ValidIDPwithindirectCRLTest24
4.14.25 ValidIDPwithindirectCRLTest25
4.14.26 InvalidIDPwithindirectCRLTest26
4.14.27 InvalidcRLIssuerTest27
4.14.28 ValidcRLIssuerTest28
4.14.29 ValidcRLIssuerTest29
4.14.30 ValidcRLIssuerTest30
4.14.31 InvalidcRLIssuerTest31
4.14.32 InvalidcRLIssuerTest32
4.14.33 ValidcRLIssuerTest33
4.14.34 InvalidcRLIssuerTest34
4.14.35 InvalidcRLIssuerTest35
4.15.1 InvaliddeltaCRLIndicatorNoBaseTest1
4.15.2 ValiddeltaCRLTest2
4.15.3 InvaliddeltaCRLTest3
4.15.4 InvaliddeltaCRLTest4
4.15.5 ValiddeltaCRLTest5
4.15.6 InvaliddeltaCRLTest6
4.15.7 ValiddeltaCRLTest7
4.15.8 ValiddeltaCRLTest8
4.15.9 InvaliddeltaCRLTest9
4.15.10 InvaliddeltaCRLTest10
"""

# PKITS's result, with its default settings (initial policy set anyPolicy,
# no explicit policy, mapping and anyPolicy not inhibited), for the tests
# whose name does not say Valid or Invalid.
EXPECTED_UNNAMED = {
    "4.8.2": True, "4.8.3": True, "4.8.4": False, "4.8.5": False, "4.8.6": True,
    "4.8.7": False, "4.8.8": False, "4.8.9": False, "4.8.10": True, "4.8.11": True,
    "4.8.12": False, "4.8.13": True, "4.8.14": True, "4.8.15": True, "4.8.16": True,
    "4.8.17": True, "4.8.18": True, "4.8.19": True, "4.8.20": True, "4.12.3": True,
}

# The number of tests of each section in PKITS (4.8 counts 4.8.1).
SECTION_SIZES = {
    "4.1": 6, "4.2": 8, "4.3": 11, "4.4": 21, "4.5": 8, "4.6": 17, "4.7": 5,
    "4.8": 20, "4.9": 8, "4.10": 14, "4.11": 11, "4.12": 10,
    "4.13": 38, "4.14": 35, "4.15": 10,
}
SECTION_TITLES = {
    "4.1": "Signature Verification", "4.2": "Validity Periods", "4.3": "Verifying Name Chaining",
    "4.4": "Basic Certificate Revocation", "4.5": "Verifying Paths with Self-Issued Certificates",
    "4.6": "Verifying Basic Constraints", "4.7": "Key Usage", "4.8": "Certificate Policies",
    "4.9": "Require Explicit Policy", "4.10": "Policy Mappings", "4.11": "Inhibit Policy Mapping",
    "4.12": "Inhibit Any Policy", "4.13": "Name Constraints", "4.14": "Distribution Points",
    "4.15": "Delta-CRLs",
}
PATH_SECTIONS = ("4.1", "4.2", "4.3", "4.4", "4.5", "4.6", "4.7", "4.13", "4.14", "4.15")
POLICY_SECTIONS = ("4.8", "4.9", "4.10", "4.11", "4.12")


def available():
    return os.path.isdir(os.path.join(DATA, "certs"))


def _ext(cert, oid):
    try:
        return cert.extensions.get_extension_for_oid(oid).value
    except x509.ExtensionNotFound:
        return None


def _ski(cert):
    v = _ext(cert, ExtensionOID.SUBJECT_KEY_IDENTIFIER)
    return v.digest if v else None


def _aki(obj):
    try:
        v = obj.extensions.get_extension_for_oid(ExtensionOID.AUTHORITY_KEY_IDENTIFIER).value
    except x509.ExtensionNotFound:
        return None
    return v.key_identifier


def name_key(name):
    """A name compared as RFC 5280 wants it, near enough for PKITS: RDNs
    in order, attribute values case-folded with white space collapsed."""
    return tuple(tuple(sorted((a.oid.dotted_string, " ".join(str(a.value).split()).casefold()) for a in rdn))
                 for rdn in name.rdns)


def _signed_by(obj, issuer):
    """Whether issuer's key made obj's signature (a certificate or CRL)."""
    key = issuer.public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(obj.signature, obj.tbs_certificate_bytes if isinstance(obj, x509.Certificate) else obj.tbs_certlist_bytes,
                       padding.PKCS1v15(), obj.signature_hash_algorithm)
        elif isinstance(key, dsa.DSAPublicKey):
            key.verify(obj.signature, obj.tbs_certificate_bytes if isinstance(obj, x509.Certificate) else obj.tbs_certlist_bytes,
                       obj.signature_hash_algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(obj.signature, obj.tbs_certificate_bytes if isinstance(obj, x509.Certificate) else obj.tbs_certlist_bytes,
                       ec.ECDSA(obj.signature_hash_algorithm))
        else:
            return False
    except (InvalidSignature, ValueError, TypeError):
        # TypeError/ValueError: a DSA key without parameters (4.1.5).
        return False
    return True


class Cert:
    def __init__(self, stem, der):
        self.stem = stem
        self.der = der
        self.x = x509.load_der_x509_certificate(der)
        self.subject = name_key(self.x.subject)
        self.issuer = name_key(self.x.issuer)
        self.ski = _ski(self.x)
        self.aki = _aki(self.x)

    def pem(self):
        return self.x.public_bytes(serialization.Encoding.PEM).decode()

    def __repr__(self):
        return self.stem


def _tlv(der, pos):
    """(tag, start of the value, end of the value) of the DER element at pos."""
    tag = der[pos]
    n = der[pos + 1]
    pos += 2
    if n & 0x80:
        k = n & 0x7f
        n = int.from_bytes(der[pos:pos + k], "big")
        pos += k
    return tag, pos, pos + n


def _crl_issuer_der(der):
    """The DER of a CRL's issuer name, read by hand: cryptography cannot
    parse PKITS's CRL with a negative serial number (4.4.15)."""
    _, pos, _ = _tlv(der, 0)            # CertificateList
    _, pos, _ = _tlv(der, pos)          # TBSCertList
    tag, _, end = _tlv(der, pos)
    if tag == 0x02:                     # version
        pos = end
    _, _, pos = _tlv(der, pos)          # signature algorithm
    _, _, end = _tlv(der, pos)          # issuer
    return der[pos:end]


class Crl:
    def __init__(self, stem, der, certs):
        self.stem = stem
        self.der = der
        try:
            self.x = x509.load_der_x509_crl(der)
        except ValueError:
            self.x = None
        if self.x is not None:
            self.issuer = name_key(self.x.issuer)
            self.aki = _aki(self.x)
            self.delta = _ext(self.x, ExtensionOID.DELTA_CRL_INDICATOR) is not None
        else:
            raw = _crl_issuer_der(der)
            named = [c for c in certs if c.x.subject.public_bytes() == raw]
            self.issuer = named[0].subject if named else ("unparsed", raw)
            self.aki = None
            self.delta = False

    def pem(self):
        b = base64.encodebytes(self.der).decode().replace("\n", "")
        return "-----BEGIN X509 CRL-----\n" + "\n".join(b[i:i + 64] for i in range(0, len(b), 64)) + "\n-----END X509 CRL-----\n"

    def __repr__(self):
        return self.stem


class Test:
    """One PKITS test: its number, name, expected result, the path from
    its end entity up to the trust anchor, and its CRLs, each with the
    chain of the CRL's signer (signer first, up to the trust anchor)."""

    def __init__(self, tid, stem, expected, ee, path, crls):
        self.id = tid
        self.stem = stem
        self.expected = expected
        self.ee = ee
        self.path = path            # [EE, CA..., trust anchor]
        self.crls = crls            # [(Crl, [signer, ..., trust anchor] or None)]

    @property
    def section(self):
        return self.id.rsplit(".", 1)[0]

    @property
    def intermediates(self):
        return self.path[1:-1]


class Data:
    """Every certificate and CRL of PKITS, and the tests built from them."""

    def __init__(self, root=DATA):
        # 4.4.14/4.4.15's negative serial numbers are on purpose.
        warnings.filterwarnings("ignore", message=".*negative serial number.*")
        self.root = root
        self.certs = {}
        for p in sorted(glob.glob(os.path.join(root, "certs", "*.crt"))):
            stem = os.path.basename(p)[:-4]
            with open(p, "rb") as f:
                self.certs[stem] = Cert(stem, f.read())
        self.cas = [c for s, c in self.certs.items() if not s.endswith("EE")]
        self.crls = {}
        for p in sorted(glob.glob(os.path.join(root, "crls", "*.crl"))):
            stem = os.path.basename(p)[:-4]
            with open(p, "rb") as f:
                self.crls[stem] = Crl(stem, f.read(), self.cas)
        self.anchor = self.certs[ROOT]

    def issuer_of(self, obj, exclude=()):
        """The certificate that issued obj (a Cert or Crl): the one named
        by its issuer whose key identifier its authority key identifier
        gives; failing a name match, the one of that key identifier (so
        that paths whose names do not chain, 4.3.1 and 4.3.2, are still
        replayed with the CA that signed them). Ties go to the one whose
        key verifies the signature."""
        pool = [c for c in self.cas if c is not obj and c not in exclude]
        cands = [c for c in pool if c.subject == obj.issuer]
        if obj.aki is not None:
            by_key = [c for c in cands if c.ski == obj.aki]
            if by_key:
                cands = by_key
            elif not cands:
                cands = [c for c in pool if c.ski == obj.aki]
        if len(cands) > 1 and getattr(obj, "x", None) is not None:
            signed = [c for c in cands if _signed_by(obj.x, c.x)]
            if signed:
                cands = signed
        if len(cands) != 1:
            return None
        return cands[0]

    def chain(self, start):
        """start and its issuers up to the trust anchor, or None."""
        out = [start]
        while out[-1] is not self.anchor:
            nxt = self.issuer_of(out[-1], exclude=out)
            if nxt is None:
                return None
            out.append(nxt)
        return out

    def crl_owner(self, crl):
        """The CA a CRL file is named after (the longest CA file stem its
        own stem starts with: GoodCACRL is Good CA's, TwoCRLsCABadCRL is
        Two CRLs CA's), or None."""
        best = None
        for c in self.cas:
            base = c.stem[:-len("Certificate")] if c.stem.endswith("Certificate") else c.stem[:-len("Cert")]
            if crl.stem.startswith(base) and (best is None or len(base) > len(best[0])):
                best = (base, c)
        return best[1] if best else None

    def crls_for(self, path):
        """The CRLs of a path: those of its CAs' files (a CRL PKITS means
        for that CA, even when its issuer name or signature is wrong:
        4.4.5, 4.4.6), and those issued in the name of one of its CAs or of
        an indirect CRL issuer its certificates' distribution points name
        (cRLIssuer), unless the file is another CA's. Base CRLs top down,
        delta CRLs last."""
        names = [c.subject for c in reversed(path[1:])]
        for c in path:
            dps = _ext(c.x, ExtensionOID.CRL_DISTRIBUTION_POINTS)
            for dp in dps or []:
                for gn in dp.crl_issuer or []:
                    if isinstance(gn, x509.DirectoryName):
                        k = name_key(gn.value)
                        if k not in names:
                            names.append(k)
        picked = []
        for k in names:
            for crl in self.crls.values():
                owner = self.crl_owner(crl)
                if crl in picked:
                    continue
                if owner in path[1:] and owner.subject == k:
                    picked.append(crl)
                elif crl.issuer == k and (owner is None or owner.subject == crl.issuer):
                    picked.append(crl)
        for c in reversed(path[1:]):
            for crl in self.crls.values():
                if self.crl_owner(crl) is c and crl not in picked:
                    picked.append(crl)
        picked.sort(key=lambda crl: crl.delta)
        out = []
        for crl in picked:
            signer = self.issuer_of(crl)
            out.append((crl, self.chain(signer) if signer else None))
        return out

    def tests(self):
        out = []
        for line in TESTS.strip().splitlines():
            tid, stem = line.split()
            if stem.startswith("Valid"):
                expected = True
            elif stem.startswith("Invalid"):
                expected = False
            else:
                expected = EXPECTED_UNNAMED[tid]
            ee = self.certs[stem + "EE"]
            path = self.chain(ee)
            if path is None:
                raise AssertionError("PKITS %s %s: no path from its end entity to the trust anchor" % (tid, stem))
            out.append(Test(tid, stem, expected, ee, path, self.crls_for(path)))
        return out

    def key_pem(self, stem):
        """The end entity's private key (PKCS#8 PEM) from its PKCS#12."""
        with open(os.path.join(self.root, "pkcs12", stem + ".p12"), "rb") as f:
            key, _, _ = pkcs12.load_key_and_certificates(f.read(), P12_PASSWORD)
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())

