/* certmgr_ctrl: administers certmgr over $CONTROL/certmgr/v1.
 *
 * Exit codes are libmosquitto's error numbers, as mosquitto_ctrl's are:
 * 0 done (and --help); 1 no command given (the usage is printed); 3
 * (MOSQ_ERR_INVAL) a bad argument or an unreadable file; 10
 * (MOSQ_ERR_NOT_SUPPORTED) an unknown command; the libmosquitto error of a
 * failed connection (14 MOSQ_ERR_ERRNO: nothing listening, 5 refused, 7
 * lost, 8 TLS); 12 (MOSQ_ERR_ACL_DENIED) not allowed to read the answers:
 * no administrator; 27 (MOSQ_ERR_TIMEOUT) no answer in time; 13
 * (MOSQ_ERR_UNKNOWN) the broker answered with an error (mosquitto_ctrl
 * prints it and exits 0; a script needs to tell). */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>

#include "fsutil.h"
#include "print.h"
#include "store.h"
#include "tlsclient.h"

#define REQUEST_TOPIC "$CONTROL/certmgr/v1"
#define RESPONSE_TOPIC "$CONTROL/certmgr/v1/response"
/* uploadCRL's: the CRL file as it is (MQTT v5, the tenant a user
 * property), so that its size is not bounded by a JSON string. */
#define CRL_TOPIC "$CONTROL/certmgr/v1/crl"
/* A CRL larger than this goes in parts of this size, each sent when the
 * one before is acknowledged: the broker reads one at a time and serves
 * its other clients in between. */
#define CRL_PART (1024 * 1024)
#define DEFAULT_STORE "/var/lib/mosquitto/certmgr"

enum {
	EXIT_OK = MOSQ_ERR_SUCCESS,
	EXIT_NO_COMMAND = 1,
	EXIT_USAGE = MOSQ_ERR_INVAL,
	EXIT_UNKNOWN_COMMAND = MOSQ_ERR_NOT_SUPPORTED,
	EXIT_NOT_ADMIN = MOSQ_ERR_ACL_DENIED,
	EXIT_TIMEOUT = MOSQ_ERR_TIMEOUT,
	EXIT_REFUSED = MOSQ_ERR_UNKNOWN,
};

struct opts {
	const char *host;
	int port;
	const char *user, *password;
	const char *cafile, *cert, *key;
	const char *store;
	const char *outfile;
	bool insecure, no_tls, json;
	bool pinned; /* cafile is the store's served certificate: trusted as it is */
	int timeout;
};

struct session {
	char *request;
	/* uploadCRL: the file for CRL_TOPIC, instead of request. */
	char *crl;
	size_t crl_len;
	size_t crl_sent; /* bytes of crl published */
	int crl_mid;     /* the part in flight */
	const char *tenant;
	char corr[40];
	bool subscribed, done;
	int failure;       /* the exit code of a failed exchange */
	cJSON *response; /* the matching entry of "responses" */
	int sub_mid;
};

/* ===================================================================
 * Building the request
 * =================================================================== */

static bool readable(const char *path)
{
	return path && access(path, R_OK) == 0;
}

__attribute__((format(printf, 1, 2)))
static int fail_usage(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "certmgr_ctrl: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	return EXIT_USAGE;
}

/* A whole number in [min, max], or -1. */
static long number(const char *s, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	return (errno || end == s || *end || v < min || v > max) ? -1 : v;
}

/* The commands: their positional arguments (the field each fills; a
 * field starting with '@' is read from the file named), the options they
 * take (letters of build_command's options), and their help. */
struct spec {
	const char *name;
	const char *pos[3];
	const char *opts;
	const char *args;  /* the usage after the name */
	const char *about; /* what it does, for COMMAND --help */
};

static const struct spec specs[] = {
	{"listTenants", {NULL}, "", "", "Lists the tenants: name, org id, policy, number of CAs, host names."},
	{"getTenant", {"tenant"}, "", "TENANT", "Shows a tenant and its trust list."},
	{"createTenant", {"tenant"}, "HOLBSV",
		"TENANT [--hostname H]... [--org ORG] [--policy P] [--revocation R]\n            [--publish PATTERN]... [--subscribe PATTERN]...",
		"Creates a tenant. --hostname: an SNI name that selects it (*.domain for one label); --org: the org id\n"
		"in its devices' client ids (default: the tenant's name); --policy: certificate (default),\n"
		"certificate+token, token or bridge; --revocation: when-available (default) or required;\n"
		"--publish/--subscribe: topic patterns with {org}, {type}, {id} (default {org}/{type}/{id}/#)."},
	{"modifyTenant", {"tenant"}, "HOLBSNVmidraqn", "TENANT [the options of createTenant] [--no-hostnames]",
		"Changes a tenant; a list given replaces the old one. --no-hostnames removes every host name."},
	{"deleteTenant", {"tenant"}, "", "TENANT", "Deletes a tenant and its trust list; its devices are disconnected."},
	{"addCA", {"tenant", "@certificate"}, "DIUpf", "TENANT CERTFILE [--description TEXT] [--inactive] [--crl-url URL]"
		" [--purpose devices|claim] [--verification-cert FILE]",
		"Adds a CA (PEM file) to a tenant's trust list. Its CRL, from --crl-url or the CA's distribution\n"
		"point, is downloaded first: a CA whose CRL cannot be had is refused."},
	{"modifyCA", {"tenant", "id"}, "DUT", "TENANT ID [--description TEXT] [--crl-url URL] [--stale-policy fail-closed|fail-open]",
		"Changes a CA's description, CRL URL (downloaded before the answer) or stale-CRL policy."},
	{"refreshCRL", {"tenant", "id"}, "", "TENANT ID", "Downloads the CA's CRL now."},
	{"uploadCRL", {"tenant", "@crl"}, "", "TENANT CRLFILE", "Installs a CRL (PEM or DER file) for the CA that signed it."},
	{"removeCA", {"tenant", "id"}, "", "TENANT ID", "Removes a CA; the devices it vouched for are disconnected."},
	{"setCAState", {"tenant", "id"}, "AI", "TENANT ID --active|--inactive", "Switches a CA on or off without removing it."},
	{"clearCAs", {"tenant"}, "", "TENANT", "Empties a tenant's trust list."},
	{"listCAs", {"tenant"}, "", "TENANT", "Lists a tenant's CAs and pinned certificates."},
	{"getCA", {"tenant", "id"}, "F", "TENANT ID [--format pem|der]", "Shows a CA; -o FILE writes its certificate."},
	{"exportTrustList", {"tenant"}, "", "TENANT", "Prints the tenant's trust list as one PEM bundle (-o FILE writes it)."},
	{"trustCertificate", {"tenant", "@certificate"}, "D", "TENANT CERTFILE [--description TEXT]",
		"Trusts a bundle: CAs go in as CAs, other certificates are pinned."},
	{"untrustCertificate", {"tenant", "id"}, "", "TENANT ID", "Removes a pinned certificate or a CA."},
	{"inspectCertificate", {"@certificate"}, "", "CERTFILE", "Shows what certmgr reads in a certificate, without storing it."},
	{"listRejected", {NULL}, "W", "[--fleet]",
		"Lists the client chains certmgr refused, most recent first. --fleet: every fleet node's list too."},
	{"getRejected", {"id"}, "", "ID", "Shows a refused chain; -o FILE writes it."},
	{"trustRejected", {"id", "tenant"}, "R", "ID TENANT --anchor root|leaf",
		"Trusts a refused chain in a tenant: by its root (a CA that issued the chain) or by its leaf (pinned)."},
	{"clearRejected", {NULL}, "", "", "Empties the list of refused chains."},
	{"listDevices", {"tenant"}, "jxlz", "TENANT [--filter connected|expiring|refused|blocked] [--prefix ID] [--limit N] [--offset N]",
		"Lists the devices this broker admitted for a tenant, with the certificate each used last."},
	{"getDevice", {"tenant", "id"}, "", "TENANT ID", "Shows a device of the inventory: certificate, first and last seen, refusals."},
	{"blockDevice", {"tenant", "id"}, "o", "TENANT ID [--reason TEXT]",
		"Refuses a device id whatever certificate it presents; it is disconnected at once."},
	{"unblockDevice", {"tenant", "id"}, "", "TENANT ID", "Lifts a device's block."},
	{"blockCertificate", {"tenant"}, "yCo", "TENANT --fingerprint SHA256 | --certificate FILE [--reason TEXT]",
		"Refuses one certificate whatever id it claims, without a CRL; its device is disconnected at once."},
	{"unblockCertificate", {"tenant"}, "yC", "TENANT --fingerprint SHA256 | --certificate FILE", "Lifts a certificate's block."},
	{"listBlocked", {"tenant"}, "", "TENANT", "Lists a tenant's blocked devices and certificates."},
	{"auditFleet", {NULL}, "kvh", "[--tenant TENANT] [--expiring-days N] [--seen-days N]",
		"Audits the fleet: expiring certificates, shared ones, clones, weak keys and signatures, expiring CAs,\n"
		"CAs without a CRL, devices connected under a blocked or revoked certificate."},
	{"getStatus", {NULL}, "", "", "Shows certmgr's state: store, slots, expiring certificates, CRL health."},
	{"listNodes", {NULL}, "", "", "Lists the nodes of a fleet (plugin_opt_store etcd) and the revision each has applied."},
	{"listServerCertificates", {"slot"}, "", "SLOT", "Lists a slot's certificates (slots: mqtt, websockets, bridge)."},
	{"getServerCertificate", {"slot", "id"}, "FK", "SLOT ID [--format pem|der] [--include-private-key]",
		"Shows a server certificate; -o FILE writes it. The key only over TLS with an admin certificate."},
	{"addServerCertificate", {"slot"}, "DPCYX1",
		"SLOT --certificate FILE --key FILE [--passphrase P] [--description TEXT] [--default]\n"
		"  addServerCertificate SLOT --pkcs12 FILE --passphrase P [--description TEXT] [--default]",
		"Uploads a server certificate with its chain and key (PEM, the key possibly encrypted, or PKCS#12)."},
	{"setDefaultServerCertificate", {"slot", "id"}, "", "SLOT ID", "Makes a certificate the slot's default, served from the next handshake."},
	{"removeServerCertificate", {"slot", "id"}, "", "SLOT ID", "Removes a server certificate that is neither default nor named by a tenant."},
	{"regenerateSelfSigned", {"slot"}, "MEtbc",
		"SLOT [--cn NAME] [--san DNS:NAME]... [--key-type ec|rsa|ed25519]\n            [--key-curve P-256|P-384] [--key-bits 2048|3072|4096]",
		"Replaces the slot's built-in self-signed certificate with a new one, made the default."},
	{"createCSR", {"slot"}, "MEtbcwg",
		"SLOT --cn NAME [--o ORG] [--ou UNIT] [--c CC] [--st STATE] [--l CITY] [--email ADDR]\n"
		"            [--san DNS:NAME|IP:ADDR|email:ADDR|URI:URI]... [--key-type ec|rsa] [--key-bits N]\n"
		"            [--key-curve P-256|P-384] [--reuse-key] [--allow-weak-key]",
		"Makes a key and a CSR for a CA to sign; -o FILE writes the CSR."},
	{"listCSRs", {"slot"}, "", "SLOT", "Lists a slot's pending CSRs."},
	{"getCSR", {"slot", "id"}, "F", "SLOT ID [--format pem|der]", "Shows a pending CSR; -o FILE writes it."},
	{"removeCSR", {"slot", "id"}, "", "SLOT ID", "Drops a pending CSR and its key."},
	{"installCertificate", {"slot", "csr", "@certificate"}, "1", "SLOT CSR_ID CERTFILE [--default]",
		"Installs the CA's answer to a CSR (PEM, with its chain) with the CSR's key."},
	{"createIssuingCA", {"tenant"}, "Mtbcdu", "TENANT --cn NAME [--o ORG] [--ou UNIT] [--c CC] [--key-type ec|rsa] [--key-bits N]"
		" [--key-curve P-256|P-384] [--validity-days N] [--parent TENANT]",
		"Makes the tenant's issuing CA (key and certificate) and its first CRL; -o FILE writes the CA certificate."},
	{"importIssuingCA", {"tenant", "@certificate"}, "YP", "TENANT CERTFILE --key KEYFILE [--passphrase TEXT]",
		"Makes a CA certificate and key you have the tenant's issuing CA."},
	{"preRegisterDevices", {"tenant"}, "e", "TENANT --id d:TYPE:ID...", "Pre-registers identities for the allowlist mode."},
	{"listEnrollments", {"tenant"}, "", "TENANT", "Lists the enrollment requests and the pre-registered identities."},
	{"approveEnrollment", {"tenant", "identity"}, "", "TENANT IDENTITY", "Signs a waiting request; the device gets its certificate."},
	{"rejectEnrollment", {"tenant", "identity"}, "o", "TENANT IDENTITY [--reason TEXT]", "Refuses a waiting request."},
	{"revokeCertificate", {"tenant"}, "sCo", "TENANT --serial HEX|--certificate FILE [--reason REASON]",
		"Revokes a certificate of the issuing CA: its CRL is issued at once."},
	{"getRegistrationCode", {"tenant"}, "", "TENANT", "A single-use code for addCA's proof of possession."},
	{"trustServerCertificate", {"slot", "id", "tenant"}, "", "SLOT ID TENANT",
		"Trusts one of this broker's server certificates in a tenant (bridges between brokers)."},
};

static const struct spec *find_spec(const char *name)
{
	size_t i;

	for(i = 0; i < sizeof(specs) / sizeof(specs[0]); i++){
		if(!strcmp(specs[i].name, name)){
			return &specs[i];
		}
	}
	return NULL;
}

static void usage(FILE *f)
{
	size_t i;

	fprintf(f,
		"usage: certmgr_ctrl [options] COMMAND [ARGS]\n"
		"       certmgr_ctrl COMMAND --help\n"
		"\n"
		"Connection (defaults: localhost:8884, the shipped local admin listener, over TLS with the local admin\n"
		"certificate from the store, when readable):\n"
		"  -h HOST  -p PORT  -u USER  -P PASSWORD\n"
		"  --cafile FILE  --cert FILE  --key FILE  --insecure  --no-tls\n"
		"  --store DIR      certmgr's store, for the default credentials (%s)\n"
		"  -W SECONDS       how long to wait for the answer (10)\n"
		"Output:\n"
		"  --json           print the broker's answer as JSON\n"
		"  -o FILE          write the certificate, chain or CSR the command returns to FILE\n"
		"\n"
		"Commands:\n", DEFAULT_STORE);
	for(i = 0; i < sizeof(specs) / sizeof(specs[0]); i++){
		fprintf(f, "  %s%s%s\n", specs[i].name, specs[i].args[0] ? " " : "", specs[i].args);
	}
	fprintf(f, "\nPolicies: certificate, certificate+token, token, bridge. Revocation: when-available, required.\n"
		"Exit codes: 0 done; 1 no command; 3 bad arguments; 10 unknown command; 13 the broker answered\n"
		"with an error; 12 not an administrator; 27 no answer in time; other libmosquitto errors for the\n"
		"connection (14: nothing listening). See certmgr_ctrl(1).\n");
}

static void command_help(const struct spec *sp)
{
	printf("usage: certmgr_ctrl [options] %s%s%s\n\n%s\n", sp->name, sp->args[0] ? " " : "", sp->args, sp->about);
}

static int add_array(cJSON *cmd, const char *name, const char *value)
{
	cJSON *arr = cJSON_GetObjectItemCaseSensitive(cmd, name);

	if(arr == NULL){
		arr = cJSON_AddArrayToObject(cmd, name);
	}
	return arr && cJSON_AddItemToArray(arr, cJSON_CreateString(value)) ? 0 : -1;
}

/* Puts a file's content in a field: as text, or base64 for binary. */
static int add_file(cJSON *cmd, const char *field, const char *path, bool binary)
{
	char *text = NULL;
	size_t len = 0;
	struct cm_err err;

	if(cm_fs_read_file(path, 4 * 1024 * 1024, &text, &len, &err) != CM_OK){
		return fail_usage("%s", err.msg);
	}
	if(binary){
		char *b64 = malloc(len / 3 * 4 + 8);
		if(b64 == NULL || len > INT_MAX){
			free(text);
			free(b64);
			return fail_usage("%s", "out of memory");
		}
		EVP_EncodeBlock((unsigned char *)b64, (unsigned char *)text, (int)len);
		cJSON_AddStringToObject(cmd, field, b64);
		free(b64);
	}else{
		cJSON_AddStringToObject(cmd, field, text);
	}
	OPENSSL_cleanse(text, len);
	free(text);
	return EXIT_OK;
}

/* The options of the commands (their letters in struct spec's opts). */
static const struct option command_opts[] = {
	/* enrollment */
	{"purpose", required_argument, NULL, 'p'},
	{"verification-cert", required_argument, NULL, 'f'},
	{"validity-days", required_argument, NULL, 'd'},
	{"enroll-mode", required_argument, NULL, 'm'},
	{"id-pattern", required_argument, NULL, 'i'},
	{"renew-within-days", required_argument, NULL, 'r'},
	{"grace-days", required_argument, NULL, 'a'},
	{"require-pop", no_argument, NULL, 'q'},
	{"no-require-pop", no_argument, NULL, 'n'},
	{"id", required_argument, NULL, 'e'},
	{"reason", required_argument, NULL, 'o'},
	{"serial", required_argument, NULL, 's'},
	{"parent", required_argument, NULL, 'u'},
	{"hostname", required_argument, NULL, 'H'},
	{"org", required_argument, NULL, 'O'},
	{"policy", required_argument, NULL, 'L'},
	{"publish", required_argument, NULL, 'B'},
	{"subscribe", required_argument, NULL, 'S'},
	{"no-hostnames", no_argument, NULL, 'N'},
	{"description", required_argument, NULL, 'D'},
	{"inactive", no_argument, NULL, 'I'},
	{"active", no_argument, NULL, 'A'},
	{"format", required_argument, NULL, 'F'},
	{"anchor", required_argument, NULL, 'R'},
	{"revocation", required_argument, NULL, 'V'},
	{"crl-url", required_argument, NULL, 'U'},
	{"stale-policy", required_argument, NULL, 'T'},
	{"include-private-key", no_argument, NULL, 'K'},
	{"passphrase", required_argument, NULL, 'P'},
	{"certificate", required_argument, NULL, 'C'},
	{"key", required_argument, NULL, 'Y'},
	{"pkcs12", required_argument, NULL, 'X'},
	{"default", no_argument, NULL, '1'},
	{"cn", required_argument, NULL, 'M'},
	{"san", required_argument, NULL, 'E'},
	{"key-type", required_argument, NULL, 't'},
	{"key-bits", required_argument, NULL, 'b'},
	{"key-curve", required_argument, NULL, 'c'},
	{"reuse-key", no_argument, NULL, 'w'},
	{"allow-weak-key", no_argument, NULL, 'g'},
	{"filter", required_argument, NULL, 'j'},
	{"prefix", required_argument, NULL, 'x'},
	{"limit", required_argument, NULL, 'l'},
	{"offset", required_argument, NULL, 'z'},
	{"fingerprint", required_argument, NULL, 'y'},
	{"tenant", required_argument, NULL, 'k'},
	{"expiring-days", required_argument, NULL, 'v'},
	{"seen-days", required_argument, NULL, 'h'},
	{"fleet", no_argument, NULL, 'W'},
	/* createCSR's subject fields */
	{"o", required_argument, NULL, 1001},
	{"ou", required_argument, NULL, 1002},
	{"c", required_argument, NULL, 1003},
	{"st", required_argument, NULL, 1004},
	{"l", required_argument, NULL, 1005},
	{"email", required_argument, NULL, 1006},
	{NULL, 0, NULL, 0},
};

/* The options that set one field of the command: to their argument, by
 * adding it to an array, or to true or false. */
enum how { SET_TEXT, ADD_ENTRY, SET_TRUE, SET_FALSE, SET_COUNT };

static const struct {
	int opt;
	const char *field;
	enum how how;
} field_opts[] = {
	{'H', "hostnames", ADD_ENTRY},
	{'O', "orgId", SET_TEXT},
	{'L', "policy", SET_TEXT},
	{'B', "publishPatterns", ADD_ENTRY},
	{'S', "subscribePatterns", ADD_ENTRY},
	{'D', "description", SET_TEXT},
	{'I', "active", SET_FALSE},
	{'A', "active", SET_TRUE},
	{'F', "format", SET_TEXT},
	{'R', "anchor", SET_TEXT},
	{'V', "revocation", SET_TEXT},
	{'U', "crlUrl", SET_TEXT},
	{'T', "stalePolicy", SET_TEXT},
	{'K', "includePrivateKey", SET_TRUE},
	{'w', "reuseKey", SET_TRUE},
	{'g', "allowWeakKey", SET_TRUE},
	{'W', "fleet", SET_TRUE},
	{'P', "passphrase", SET_TEXT},
	{'1', "makeDefault", SET_TRUE},
	{'M', "commonName", SET_TEXT},
	{'E', "subjectAltNames", ADD_ENTRY},
	{'j', "filter", SET_TEXT},
	{'x', "prefix", SET_TEXT},
	{'l', "limit", SET_COUNT},
	{'z', "offset", SET_COUNT},
	{'y', "fingerprint", SET_TEXT},
	{'k', "tenant", SET_TEXT},
	{'v', "expiringWithinDays", SET_COUNT},
	{'h', "seenWithinDays", SET_COUNT},
	{'p', "purpose", SET_TEXT},
	{'q', "requireProofOfPossession", SET_TRUE},
	{'n', "requireProofOfPossession", SET_FALSE},
	{'e', "ids", ADD_ENTRY},
	{'o', "reason", SET_TEXT},
	{'s', "serial", SET_TEXT},
	{'u', "parent", SET_TEXT},
};

/* The object field name of cmd, made when it is not there yet. */
static cJSON *sub_object(cJSON *cmd, const char *name)
{
	cJSON *o = cJSON_GetObjectItemCaseSensitive(cmd, name);

	return o ? o : cJSON_AddObjectToObject(cmd, name);
}

/* --key-type, --key-curve, --key-bits: the command's "key". */
static int key_option(cJSON *cmd, int c, const char *arg)
{
	cJSON *k = sub_object(cmd, "key");
	long bits;

	if(c == 't'){
		cJSON_AddStringToObject(k, "type", arg);
	}else if(c == 'c'){
		cJSON_AddStringToObject(k, "curve", arg);
	}else{
		if((bits = number(arg, 1, 16384)) < 0){
			return fail_usage("%s", "--key-bits must be a number");
		}
		cJSON_AddNumberToObject(k, "bits", (double)bits);
	}
	return EXIT_OK;
}

/* --validity-days (createIssuingCA's, or the enrollment's), and the
 * enrollment's --renew-within-days and --grace-days. */
static int days_option(cJSON *cmd, int c, const char *arg)
{
	char *end;
	double v = strtod(arg, &end);
	bool issuing = cJSON_GetObjectItemCaseSensitive(cmd, "command")
			&& !strcmp(cJSON_GetObjectItemCaseSensitive(cmd, "command")->valuestring, "createIssuingCA");

	if(end == arg || *end || v < 0){
		return fail_usage("%s", "a number of days is expected");
	}
	cJSON_AddNumberToObject(issuing ? cmd : sub_object(cmd, "enrollment"), c == 'd' ? "validityDays" : c == 'r' ? "renewWithinDays" : "graceDays", v);
	return EXIT_OK;
}

/* One option of the command into cmd. */
static int command_option(cJSON *cmd, int c, const char *arg)
{
	static const char *const subject[] = {"O", "OU", "C", "ST", "L", "emailAddress"};
	size_t i;

	for(i = 0; i < sizeof(field_opts) / sizeof(field_opts[0]); i++){
		if(field_opts[i].opt != c){
			continue;
		}
		switch(field_opts[i].how){
			case SET_TEXT: cJSON_AddStringToObject(cmd, field_opts[i].field, arg); break;
			case ADD_ENTRY: add_array(cmd, field_opts[i].field, arg); break;
			case SET_TRUE: cJSON_AddBoolToObject(cmd, field_opts[i].field, true); break;
			case SET_FALSE: cJSON_AddBoolToObject(cmd, field_opts[i].field, false); break;
			case SET_COUNT:
				if(number(arg, 0, 1000000000L) < 0){
					return fail_usage("--%s must be a whole number", field_opts[i].field);
				}
				cJSON_AddNumberToObject(cmd, field_opts[i].field, (double)number(arg, 0, 1000000000L));
				break;
		}
		return EXIT_OK;
	}
	if(c >= 1001 && c <= 1006){
		cJSON_AddStringToObject(sub_object(cmd, "subject"), subject[c - 1001], arg);
		return EXIT_OK;
	}
	switch(c){
		case 'N':
			cJSON_AddArrayToObject(cmd, "hostnames");
			return EXIT_OK;
		case 'm':
		case 'i':
			cJSON_AddStringToObject(sub_object(cmd, "enrollment"), c == 'm' ? "mode" : "idPattern", arg);
			return EXIT_OK;
		case 'd':
		case 'r':
		case 'a':
			return days_option(cmd, c, arg);
		case 'f':
			return add_file(cmd, "verificationCertificate", arg, false) != EXIT_OK ? EXIT_USAGE : EXIT_OK;
		case 'C':
		case 'Y':
		case 'X':
			return add_file(cmd, c == 'C' ? "certificate" : c == 'Y' ? "privateKey" : "pkcs12", arg, c == 'X') != EXIT_OK ? EXIT_USAGE : EXIT_OK;
		default:
			return key_option(cmd, c, arg);
	}
}

/* The positional arguments of sp (argv[1] on) into cmd; *npos their
 * number. */
static int positional(cJSON *cmd, const struct spec *sp, int argc, char **argv, int *npos)
{
	int i;

	for(*npos = 0; *npos < 3 && sp->pos[*npos]; (*npos)++){
	}
	if(argc < *npos + 1){
		return fail_usage("%s needs %d argument%s (certmgr_ctrl --help)", sp->name, *npos, *npos == 1 ? "" : "s");
	}
	for(i = 0; i < *npos; i++){
		const char *field = sp->pos[i], *value = argv[1 + i];
		char *text = NULL;
		struct cm_err err;
		if(value[0] == '-' && value[1] == '-'){
			return fail_usage("%s: argument %d is missing", sp->name, i + 1);
		}
		if(field[0] != '@'){
			cJSON_AddStringToObject(cmd, field, value);
			continue;
		}
		if(cm_fs_read_file(value, 4 * 1024 * 1024, &text, NULL, &err) != CM_OK){
			return fail_usage("%s", err.msg);
		}
		cJSON_AddStringToObject(cmd, field + 1, text);
		free(text);
	}
	return EXIT_OK;
}

/* What the options alone do not say: createCSR's --cn is its subject's
 * CN; setCAState needs one of its options. */
static int finish_command(cJSON *cmd, const struct spec *sp)
{
	if(!strcmp(sp->name, "createCSR") || !strcmp(sp->name, "createIssuingCA")){
		cJSON *cn = cJSON_DetachItemFromObjectCaseSensitive(cmd, "commonName");
		cJSON *sub = sub_object(cmd, "subject");
		if(cn){
			cJSON_AddItemToObject(sub, "CN", cn);
		}
	}
	if(!strcmp(sp->name, "setCAState") && !cJSON_GetObjectItemCaseSensitive(cmd, "active")){
		return fail_usage("%s", "setCAState needs --active or --inactive");
	}
	return EXIT_OK;
}

/* argv[0] is the command name. Fills cmd. */
static int build_command(cJSON *cmd, int argc, char **argv)
{
	const struct spec *sp = find_spec(argv[0]);
	int npos, c, rc;

	if(sp == NULL){
		fail_usage("unknown command '%s' (certmgr_ctrl --help lists them)", argv[0]);
		return EXIT_UNKNOWN_COMMAND;
	}
	cJSON_AddStringToObject(cmd, "command", sp->name);
	if((rc = positional(cmd, sp, argc, argv, &npos)) != EXIT_OK){
		return rc;
	}
	argc -= npos;
	argv += npos;
	optind = 1;
	while((c = getopt_long(argc, argv, "", command_opts, NULL)) != -1){
		if(c == '?' || (c >= 1000 ? strcmp(sp->name, "createCSR") && strcmp(sp->name, "createIssuingCA") : strchr(sp->opts, c) == NULL)){
			return fail_usage("%s does not take that option (certmgr_ctrl --help)", sp->name);
		}
		if((rc = command_option(cmd, c, optarg)) != EXIT_OK){
			return rc;
		}
	}
	if(optind != argc){
		return fail_usage("unexpected argument '%s'", argv[optind]);
	}
	return finish_command(cmd, sp);
}

/* ===================================================================
 * Talking to the broker
 * =================================================================== */

static void on_connect(struct mosquitto *mosq, void *obj, int rc)
{
	struct session *s = obj;

	if(rc == 0){
		mosquitto_subscribe(mosq, &s->sub_mid, RESPONSE_TOPIC, 1);
	}else{
		fprintf(stderr, "certmgr_ctrl: connection refused: %s\n", mosquitto_connack_string(rc));
		s->failure = MOSQ_ERR_CONN_REFUSED;
		s->done = true;
	}
}

/* The CRL, or its next part: the same user properties on each, and for a
 * CRL in parts the upload id (the correlation data), offset and size. */
static void send_crl_part(struct mosquitto *mosq, struct session *s)
{
	mosquitto_property *props = NULL;
	size_t len = s->crl_len - s->crl_sent;
	bool parts = s->crl_len > CRL_PART;
	char offset[24], size[24];
	int rc;

	if(len > CRL_PART){
		len = CRL_PART;
	}
	snprintf(offset, sizeof(offset), "%zu", s->crl_sent);
	snprintf(size, sizeof(size), "%zu", s->crl_len);
	rc = mosquitto_property_add_string_pair(&props, MQTT_PROP_USER_PROPERTY, "tenant", s->tenant);
	if(rc == MOSQ_ERR_SUCCESS){
		rc = mosquitto_property_add_string_pair(&props, MQTT_PROP_USER_PROPERTY, "correlationData", s->corr);
	}
	if(rc == MOSQ_ERR_SUCCESS && parts){
		rc = mosquitto_property_add_string_pair(&props, MQTT_PROP_USER_PROPERTY, "upload", s->corr);
		if(rc == MOSQ_ERR_SUCCESS){
			rc = mosquitto_property_add_string_pair(&props, MQTT_PROP_USER_PROPERTY, "offset", offset);
		}
		if(rc == MOSQ_ERR_SUCCESS){
			rc = mosquitto_property_add_string_pair(&props, MQTT_PROP_USER_PROPERTY, "size", size);
		}
	}
	if(rc == MOSQ_ERR_SUCCESS){
		rc = mosquitto_publish_v5(mosq, &s->crl_mid, CRL_TOPIC, (int)len, s->crl + s->crl_sent, 1, false, props);
	}
	mosquitto_property_free_all(&props);
	if(rc != MOSQ_ERR_SUCCESS){
		fprintf(stderr, "certmgr_ctrl: cannot send the CRL: %s\n", mosquitto_strerror(rc));
		s->failure = rc;
		s->done = true;
		return;
	}
	s->crl_sent += len;
}

static void on_publish(struct mosquitto *mosq, void *obj, int mid)
{
	struct session *s = obj;

	if(s->crl && mid == s->crl_mid && s->crl_sent < s->crl_len && !s->done){
		send_crl_part(mosq, s);
	}
}

static void on_subscribe(struct mosquitto *mosq, void *obj, int mid, int qos_count, const int *granted)
{
	struct session *s = obj;

	if(mid != s->sub_mid){
		return;
	}
	if(qos_count < 1 || granted[0] > 2){
		fprintf(stderr, "certmgr_ctrl: not allowed to read %s: not an administrator?\n", RESPONSE_TOPIC);
		s->failure = EXIT_NOT_ADMIN;
		s->done = true;
		return;
	}
	s->subscribed = true;
	if(s->crl){
		send_crl_part(mosq, s);
		return;
	}
	mosquitto_publish(mosq, NULL, REQUEST_TOPIC, (int)strlen(s->request), s->request, 1, false);
}

static void on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *msg)
{
	struct session *s = obj;
	cJSON *root, *responses, *r;

	(void)mosq;
	root = cJSON_ParseWithLength(msg->payload, (size_t)msg->payloadlen);
	responses = root ? cJSON_GetObjectItemCaseSensitive(root, "responses") : NULL;
	cJSON_ArrayForEach(r, responses){
		const cJSON *corr = cJSON_GetObjectItemCaseSensitive(r, "correlationData");
		if(cJSON_IsString(corr) && !strcmp(corr->valuestring, s->corr)){
			s->response = cJSON_Duplicate(r, true);
			s->done = true;
			break;
		}
		/* An envelope error (bad JSON, too large) has no correlation. */
		if(corr == NULL && cJSON_GetObjectItemCaseSensitive(r, "error")){
			s->response = cJSON_Duplicate(r, true);
			s->done = true;
			break;
		}
	}
	cJSON_Delete(root);
}

static SSL_CTX *tls_context(const struct opts *o)
{
	struct cm_err err;
	/* The broker's name must be in its certificate. Pinned: the server
	 * must present a certificate the store's own file holds (or that a
	 * CA in it signed), whatever its names; after a CSR for
	 * mqtt.example.com, "localhost" would not match, and need not. */
	SSL_CTX *ctx = cm_tls_client_ctx(o->cafile, o->cert, o->key, o->insecure || o->pinned ? NULL : o->host, &err);

	if(ctx == NULL){
		fprintf(stderr, "certmgr_ctrl: %s\n", err.msg);
	}
	return ctx;
}

/* A client for s, connecting to the broker (*mosq NULL on failure, the
 * exit code returned). */
static int connect_client(const struct opts *o, struct session *s, struct mosquitto **mosq)
{
	int rc = MOSQ_ERR_SUCCESS;

	if((*mosq = mosquitto_new(NULL, true, s)) == NULL){
		fprintf(stderr, "certmgr_ctrl: out of memory\n");
		return MOSQ_ERR_NOMEM;
	}
	mosquitto_connect_callback_set(*mosq, on_connect);
	mosquitto_subscribe_callback_set(*mosq, on_subscribe);
	mosquitto_message_callback_set(*mosq, on_message);
	mosquitto_publish_callback_set(*mosq, on_publish);
	if(s->crl){
		mosquitto_int_option(*mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
	}
	if(o->user){
		mosquitto_username_pw_set(*mosq, o->user, o->password);
	}
	if(!o->no_tls){
		SSL_CTX *ctx = tls_context(o);
		if(ctx == NULL){
			mosquitto_destroy(*mosq);
			*mosq = NULL;
			return MOSQ_ERR_TLS;
		}
		/* Ours as it is: libmosquitto's defaults are on unless told. */
		rc = mosquitto_int_option(*mosq, MOSQ_OPT_SSL_CTX_WITH_DEFAULTS, 0);
		if(rc == MOSQ_ERR_SUCCESS){
			rc = mosquitto_void_option(*mosq, MOSQ_OPT_SSL_CTX, ctx);
		}
		SSL_CTX_free(ctx); /* libmosquitto holds its own reference */
		if(rc != MOSQ_ERR_SUCCESS){
			fprintf(stderr, "certmgr_ctrl: TLS setup failed: %s\n", mosquitto_strerror(rc));
		}
	}
	if(rc == MOSQ_ERR_SUCCESS && (rc = mosquitto_connect(*mosq, o->host, o->port, 30)) != MOSQ_ERR_SUCCESS){
		fprintf(stderr, "certmgr_ctrl: cannot connect to %s:%d: %s\n", o->host, o->port,
				rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
	}
	if(rc != MOSQ_ERR_SUCCESS){
		mosquitto_destroy(*mosq);
		*mosq = NULL;
	}
	return rc;
}

static int exchange(const struct opts *o, struct session *s)
{
	struct mosquitto *mosq;
	time_t deadline;
	int rc;

	mosquitto_lib_init();
	if((rc = connect_client(o, s, &mosq)) != MOSQ_ERR_SUCCESS){
		return rc;
	}
	deadline = time(NULL) + o->timeout;
	while(!s->done && time(NULL) < deadline){
		rc = mosquitto_loop(mosq, 100, 1);
		if(rc != MOSQ_ERR_SUCCESS){
			fprintf(stderr, "certmgr_ctrl: connection lost: %s%s\n",
					rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc),
					s->subscribed ? "" : " (was the TLS handshake refused? an admin certificate or --cert may be needed)");
			s->failure = rc == MOSQ_ERR_ERRNO ? MOSQ_ERR_CONN_LOST : rc;
			s->done = true;
			break;
		}
	}
	mosquitto_disconnect(mosq);
	mosquitto_destroy(mosq);
	mosquitto_lib_cleanup();
	if(s->response == NULL){
		if(!s->done){
			fprintf(stderr, "certmgr_ctrl: no answer within %d s%s\n", o->timeout,
					s->subscribed ? " (is certmgr loaded, and are you an administrator?)" : "");
			return EXIT_TIMEOUT;
		}
		return s->failure ? s->failure : MOSQ_ERR_CONN_LOST;
	}
	return EXIT_OK;
}

/* The tool's own options, before the command, into o. Returns -1 to go
 * on, or the exit code. */
static int tool_options(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{"cafile", required_argument, NULL, 'c'},
		{"cert", required_argument, NULL, 'e'},
		{"key", required_argument, NULL, 'k'},
		{"store", required_argument, NULL, 's'},
		{"insecure", no_argument, NULL, 'i'},
		{"no-tls", no_argument, NULL, 'n'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, '?'},
		{NULL, 0, NULL, 0},
	};
	int c;

	/* '+': options of the tool come before the command; the command's own
	 * options after it. */
	while((c = getopt_long(argc, argv, "+h:p:u:P:o:W:", longopts, NULL)) != -1){
		switch(c){
			case 'h': o->host = optarg; break;
			case 'p': o->port = (int)number(optarg, 1, 65535); break;
			case 'u': o->user = optarg; break;
			case 'P': o->password = optarg; break;
			case 'o': o->outfile = optarg; break;
			case 'W': o->timeout = (int)number(optarg, 1, 3600); break;
			case 'c': o->cafile = optarg; break;
			case 'e': o->cert = optarg; break;
			case 'k': o->key = optarg; break;
			case 's': o->store = optarg; break;
			case 'i': o->insecure = true; break;
			case 'n': o->no_tls = true; break;
			case 'j': o->json = true; break;
			default:
				usage(c == '?' && optopt == 0 ? stdout : stderr);
				return c == '?' && optopt == 0 ? EXIT_OK : EXIT_USAGE;
		}
	}
	if(optind >= argc){
		usage(stderr);
		return EXIT_NO_COMMAND;
	}
	return -1;
}

/* certmgr_ctrl COMMAND --help, certmgr_ctrl help [COMMAND]: -1 when no
 * help was asked for, else the exit code. */
static int command_help_asked(int argc, char **argv)
{
	const char *name = argv[optind];
	const struct spec *sp;
	bool help = !strcmp(name, "help");
	int k;

	for(k = optind + 1; !help && k < argc; k++){
		help = !strcmp(argv[k], "--help") || !strcmp(argv[k], "-h");
	}
	if(!help){
		return -1;
	}
	if(!strcmp(name, "help")){
		if(optind + 1 >= argc){
			usage(stdout);
			return EXIT_OK;
		}
		name = argv[optind + 1];
	}
	if((sp = find_spec(name)) == NULL){
		fail_usage("unknown command '%s' (certmgr_ctrl --help lists them)", name);
		return EXIT_UNKNOWN_COMMAND;
	}
	command_help(sp);
	return EXIT_OK;
}

/* The local operator's credentials from the store, when nothing else is
 * given; the paths are kept in paths. */
static int default_credentials(struct opts *o, char paths[3][4096])
{
	snprintf(paths[0], 4096, "%s/listener/mqtt.crt", o->store);
	snprintf(paths[1], 4096, "%s/admin/admin.pem", o->store);
	snprintf(paths[2], 4096, "%s/admin/admin.key", o->store);
	if(!o->no_tls && o->cafile == NULL && readable(paths[0])){
		o->cafile = paths[0];
		o->pinned = true;
	}
	if(!o->no_tls && o->cert == NULL && o->user == NULL && readable(paths[1]) && readable(paths[2])){
		o->cert = paths[1];
		o->key = paths[2];
	}
	if(!o->no_tls && o->cafile == NULL){
		return fail_usage("%s", "no CA file to verify the broker with: give --cafile (or --store, or --no-tls)");
	}
	return EXIT_OK;
}

/* The request of one command, with its correlation data s->corr, in
 * s->request. */
/* "uploadCRL TENANT FILE": the file goes as it is to CRL_TOPIC. */
static int build_crl_upload(struct session *s, char **argv)
{
	struct cm_err err;

	if(cm_fs_read_file(argv[2], CM_STORE_MAX_CRL, &s->crl, &s->crl_len, &err) != CM_OK){
		return fail_usage("%s", err.msg);
	}
	if(s->crl_len == 0 || s->crl_len > INT_MAX){
		return fail_usage("%s is empty or too large", argv[2]);
	}
	s->tenant = argv[1];
	snprintf(s->corr, sizeof(s->corr), "%ld-%ld", (long)getpid(), (long)time(NULL));
	return EXIT_OK;
}

static int build_request(struct session *s, int argc, char **argv)
{
	cJSON *req, *cmds, *cmd;
	int rc;

	if(argc == 3 && !strcmp(argv[0], "uploadCRL") && argv[1][0] != '-' && argv[2][0] != '-'){
		return build_crl_upload(s, argv);
	}
	req = cJSON_CreateObject();
	cmds = cJSON_AddArrayToObject(req, "commands");
	cmd = cJSON_CreateObject();
	cJSON_AddItemToArray(cmds, cmd);
	rc = build_command(cmd, argc, argv);
	if(rc == EXIT_OK){
		snprintf(s->corr, sizeof(s->corr), "%ld-%ld", (long)getpid(), (long)time(NULL));
		cJSON_AddStringToObject(cmd, "correlationData", s->corr);
		s->request = cJSON_PrintUnformatted(req);
	}
	cJSON_Delete(req);
	return rc;
}

int main(int argc, char **argv)
{
	struct opts o = {.host = "localhost", .port = 8884, .store = DEFAULT_STORE, .timeout = 10};
	struct session s;
	char paths[3][4096];
	const char *command;
	int rc;

	memset(&s, 0, sizeof(s));
	if((rc = tool_options(argc, argv, &o)) >= 0 || (rc = command_help_asked(argc, argv)) >= 0){
		return rc;
	}
	if(o.port < 1 || o.port > 65535 || o.timeout < 1){
		return fail_usage("%s", "-p must be a port and -W a positive number of seconds");
	}
	command = argv[optind]; /* build_request moves optind */
	if((rc = default_credentials(&o, paths)) != EXIT_OK || (rc = build_request(&s, argc - optind, argv + optind)) != EXIT_OK){
		return rc;
	}
	rc = exchange(&o, &s);
	if(rc == EXIT_OK){
		rc = cm_print_answer(o.outfile, o.json, command, s.response);
	}
	cJSON_Delete(s.response);
	free(s.request);
	free(s.crl);
	return rc;
}
