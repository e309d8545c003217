/* The store: creation, loading, refusals that change nothing, crashes,
 * and the changes of a slot (server certificates, CSRs). */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fsutil.h"
#include "enroll.h"
#include "store.h"
#include "store-int.h" /* white-box: the test reads the store's fields */
#include "testutil.h"

static char *fresh_store(struct cm_store **out)
{
	char *dir = tu_mkdtemp();
	char *store_dir;
	bool created = false;
	struct cm_err err;

	assert_true(asprintf(&store_dir, "%s/store", dir) > 0);
	free(dir);
	assert_int_equal(cm_store_open(store_dir, "host.example", out, &created, &err), CM_OK);
	assert_true(created);
	return store_dir;
}

static void cleanup(char *store_dir)
{
	char *parent = strdup(store_dir);
	*strrchr(parent, '/') = '\0';
	tu_rmtree(parent);
	free(parent);
	free(store_dir);
}

static void assert_mode(const char *dir, const char *rel, mode_t mode)
{
	char path[1024];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	assert_int_equal(stat(path, &st), 0);
	if((st.st_mode & 0777) != mode){
		fail_msg("%s has mode %o, expected %o", rel, st.st_mode & 0777, mode);
	}
}

static void test_first_open_creates_every_slot_with_builtin_default(void **state)
{
	struct cm_store *store = NULL;
	char *dir = fresh_store(&store);
	char rel[256];
	int i;

	(void)state;
	assert_int_equal(store->schema, CM_STORE_SCHEMA);
	assert_int_equal(store->generation, 1);
	assert_mode(dir, ".", 0700);
	assert_mode(dir, "slots", 0700);
	assert_mode(dir, "listener", 0700);
	assert_mode(dir, "store.json", 0600);
	for(i = 0; i < CM_SLOT_COUNT; i++){
		const struct cm_server_cert *def = cm_store_slot_default(store, (enum cm_slot_id)i);
		assert_non_null(def);
		assert_true(def->builtin);
		snprintf(rel, sizeof(rel), "slots/%s", cm_slot_name((enum cm_slot_id)i));
		assert_mode(dir, rel, 0700);
		snprintf(rel, sizeof(rel), "slots/%s/%s.key", cm_slot_name((enum cm_slot_id)i), def->id);
		assert_mode(dir, rel, 0600);
		snprintf(rel, sizeof(rel), "listener/%s.key", cm_slot_name((enum cm_slot_id)i));
		assert_mode(dir, rel, 0600);
	}
	/* Slots are independent: each has its own key. */
	assert_string_not_equal(cm_store_slot_default(store, CM_SLOT_MQTT)->id, cm_store_slot_default(store, CM_SLOT_BRIDGE)->id);
	cm_store_free(&store);
	assert_null(store);
	cm_store_free(&store); /* twice is fine */
	cleanup(dir);
}

static char *read_rel(const char *dir, const char *rel)
{
	char path[1024];
	char *text = NULL;
	size_t len = 0;
	struct cm_err err;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	assert_int_equal(cm_fs_read_file(path, 65536, &text, &len, &err), CM_OK);
	return text;
}

/* With a passphrase the admin CA's key is encrypted like the others (the
 * local operator's client key stays the plain 0600 credential it is); a
 * store written without one is converted when opened with one. */
static void test_admin_ca_key_is_encrypted_at_rest(void **state)
{
	static const char pass[] = "correct horse battery";
	struct cm_store *store = NULL;
	char *dir = fresh_store(&store), *text;
	bool created = true;
	struct cm_err err;

	(void)state;
	text = read_rel(dir, "admin/ca.key");
	assert_non_null(strstr(text, "BEGIN PRIVATE KEY"));
	free(text);
	cm_store_free(&store);
	assert_int_equal(cm_store_open_ex(dir, "host.example", pass, &store, &created, &err), CM_OK);
	assert_false(created);
	text = read_rel(dir, "admin/ca.key");
	assert_non_null(strstr(text, "BEGIN ENCRYPTED PRIVATE KEY"));
	free(text);
	assert_mode(dir, "admin/ca.key", 0600);
	text = read_rel(dir, "admin/admin.key");
	assert_non_null(strstr(text, "BEGIN PRIVATE KEY"));
	free(text);
	cm_store_free(&store);
	/* Opened again with the passphrase: it loads, nothing to convert. */
	assert_int_equal(cm_store_open_ex(dir, "host.example", pass, &store, &created, &err), CM_OK);
	cm_store_free(&store);
	cleanup(dir);

	/* A store created with a passphrase never holds it plain. */
	dir = tu_mkdtemp();
	{
		char *sd;
		assert_true(asprintf(&sd, "%s/store", dir) > 0);
		free(dir);
		dir = sd;
	}
	assert_int_equal(cm_store_open_ex(dir, "host.example", pass, &store, &created, &err), CM_OK);
	assert_true(created);
	text = read_rel(dir, "admin/ca.key");
	assert_non_null(strstr(text, "BEGIN ENCRYPTED PRIVATE KEY"));
	free(text);
	cm_store_free(&store);
	cleanup(dir);
}

static void test_reopen_loads_the_same_certificates(void **state)
{
	struct cm_store *store = NULL, *again = NULL;
	char *dir = fresh_store(&store);
	bool created = true;
	struct cm_err err;
	int i;

	(void)state;
	assert_int_equal(cm_store_open(dir, "other.example", &again, &created, &err), CM_OK);
	assert_false(created);
	for(i = 0; i < CM_SLOT_COUNT; i++){
		assert_string_equal(cm_store_slot_default(store, (enum cm_slot_id)i)->id,
				cm_store_slot_default(again, (enum cm_slot_id)i)->id);
	}
	cm_store_free(&store);
	cm_store_free(&again);
	cleanup(dir);
}

static void test_listener_files_are_restored_to_the_default(void **state)
{
	struct cm_store *store = NULL;
	char *dir = fresh_store(&store);
	char path[1024], digest1[65], digest2[65];
	bool created;
	struct cm_err err;

	(void)state;
	tu_tree_digest(dir, digest1);
	cm_store_free(&store);
	snprintf(path, sizeof(path), "%s/listener/mqtt.crt", dir);
	tu_write_file(path, "tampered");
	snprintf(path, sizeof(path), "%s/listener/websockets.key", dir);
	unlink(path);
	assert_int_equal(cm_store_open(dir, "h", &store, &created, &err), CM_OK);
	tu_tree_digest(dir, digest2);
	assert_string_equal(digest1, digest2);
	cm_store_free(&store);
	cleanup(dir);
}

/* Each damage, applied to a fresh store, must be refused with the file
 * named in the reason, and leave every byte of the store as it was. */
struct damage {
	const char *what;
	const char *file;     /* relative path, {mqtt} for the mqtt default id */
	const char *content;  /* NULL: remove the file */
	enum cm_rc rc;
	const char *reason;   /* a part of the expected message */
};

static void apply_and_check(const struct damage *d)
{
	struct cm_store *store = NULL;
	char *dir = fresh_store(&store);
	char rel[512], path[1024], before[65], after[65];
	const char *mark;
	struct cm_err err;
	bool created = false;

	mark = strstr(d->file, "{mqtt}");
	if(mark){
		snprintf(rel, sizeof(rel), "%.*s%s%s", (int)(mark - d->file), d->file,
				cm_store_slot_default(store, CM_SLOT_MQTT)->id, mark + 6);
	}else{
		snprintf(rel, sizeof(rel), "%s", d->file);
	}
	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	if(d->content){
		tu_write_file(path, d->content);
	}else{
		assert_int_equal(unlink(path), 0);
	}
	cm_store_free(&store);
	tu_tree_digest(dir, before);
	err.msg[0] = '\0';
	if(cm_store_open(dir, "h", &store, &created, &err) != d->rc){
		fail_msg("%s: expected rc %d, got message '%s'", d->what, d->rc, err.msg);
	}
	assert_null(store);
	assert_false(created);
	if(strstr(err.msg, d->reason) == NULL || (d->rc == CM_ERR_CORRUPT && strstr(err.msg, rel) == NULL)){
		fail_msg("%s: message '%s' lacks '%s' or the file %s", d->what, err.msg, d->reason, rel);
	}
	tu_tree_digest(dir, after);
	if(strcmp(before, after)){
		fail_msg("%s: the store changed", d->what);
	}
	cleanup(dir);
}

static void test_corrupt_stores_are_refused_and_left_untouched(void **state)
{
	static const struct damage damages[] = {
		{"store.json garbage", "store.json", "{not json", CM_ERR_CORRUPT, "not a JSON object"},
		{"store.json no schema", "store.json", "{\"generation\":1}", CM_ERR_CORRUPT, "'schema' is missing"},
		{"store.json bad generation", "store.json", "{\"schema\":1,\"generation\":\"x\"}", CM_ERR_CORRUPT, "'generation' must be a number"},
		{"newer schema", "store.json", "{\"schema\":99,\"generation\":1}", CM_ERR_NEWER, "newer certmgr"},
		{"slot.json missing", "slots/mqtt/slot.json", NULL, CM_ERR_CORRUPT, "cannot open"},
		{"slot.json empty object", "slots/bridge/slot.json", "{}", CM_ERR_CORRUPT, "is missing"},
		{"slot.json unknown default", "slots/mqtt/slot.json",
			"{\"generation\":1,\"default\":\"0000000000000000000000000000000000000000000000000000000000000000\",\"certificates\":[]}",
			CM_ERR_CORRUPT, "built-in"},
		{"slot.json bad id", "slots/mqtt/slot.json",
			"{\"generation\":1,\"default\":\"x\",\"certificates\":[{\"id\":\"../../x\",\"builtin\":true,\"added\":\"2026-01-01T00:00:00Z\"}]}",
			CM_ERR_CORRUPT, "not a certificate id"},
		{"certificate garbage", "slots/mqtt/{mqtt}.crt", "garbage", CM_ERR_CORRUPT, "no PEM certificate"},
		{"certificate missing", "slots/mqtt/{mqtt}.crt", NULL, CM_ERR_CORRUPT, "cannot open"},
		{"key garbage", "slots/mqtt/{mqtt}.key", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", CM_ERR_CORRUPT, "the private key cannot be read"},
		{"key missing", "slots/mqtt/{mqtt}.key", NULL, CM_ERR_CORRUPT, "cannot open"},
		{"a device blocked twice", "tenants/default/tenant.json", "{\"name\":\"default\",\"orgId\":\"default\",\"policy\":\"certificate\",\"generation\":1,\"created\":\"2026-01-01T00:00:00Z\",\"hostnames\":[],\"publishPatterns\":[\"#\"],\"subscribePatterns\":[\"#\"],\"cas\":[],\"blocked\":{\"devices\":[{\"id\":\"d:default:t:1\",\"at\":\"2026-01-01T00:00:00Z\"},{\"id\":\"d:default:t:1\",\"at\":\"2026-01-01T00:00:00Z\"}]}}",
			CM_ERR_CORRUPT, "blocked twice"},
		{"a blocked certificate that is no id", "tenants/default/tenant.json", "{\"name\":\"default\",\"orgId\":\"default\",\"policy\":\"certificate\",\"generation\":1,\"created\":\"2026-01-01T00:00:00Z\",\"hostnames\":[],\"publishPatterns\":[\"#\"],\"subscribePatterns\":[\"#\"],\"cas\":[],\"blocked\":{\"certificates\":[{\"id\":\"abc\",\"at\":\"2026-01-01T00:00:00Z\"}]}}",
			CM_ERR_CORRUPT, "'blocked.certificates' is malformed"},
		{"blocked is no object", "tenants/default/tenant.json", "{\"name\":\"default\",\"orgId\":\"default\",\"policy\":\"certificate\",\"generation\":1,\"created\":\"2026-01-01T00:00:00Z\",\"hostnames\":[],\"publishPatterns\":[\"#\"],\"subscribePatterns\":[\"#\"],\"cas\":[],\"blocked\":[]}", CM_ERR_CORRUPT, "'blocked' must be an object"},
	};
	size_t i;

	(void)state;
	for(i = 0; i < sizeof(damages) / sizeof(damages[0]); i++){
		apply_and_check(&damages[i]);
	}
}

/* A valid certificate and key, but of another slot: the fingerprint check
 * and the key check must both notice. */
static void test_swapped_files_are_refused(void **state)
{
	struct cm_store *store = NULL;
	char *dir = fresh_store(&store);
	char from[1024], to[1024], before[65], after[65];
	char *text = NULL;
	size_t len;
	bool created;
	struct cm_err err;

	(void)state;
	snprintf(from, sizeof(from), "%s/slots/bridge/%s.key", dir, cm_store_slot_default(store, CM_SLOT_BRIDGE)->id);
	snprintf(to, sizeof(to), "%s/slots/mqtt/%s.key", dir, cm_store_slot_default(store, CM_SLOT_MQTT)->id);
	assert_int_equal(cm_fs_read_file(from, 1 << 20, &text, &len, &err), CM_OK);
	assert_int_equal(cm_fs_write_atomic(to, text, len, 0600, &err), CM_OK);
	free(text);
	tu_tree_digest(dir, before);
	cm_store_free(&store);
	assert_int_equal(cm_store_open(dir, "h", &store, &created, &err), CM_ERR_CORRUPT);
	assert_non_null(strstr(err.msg, "does not match"));
	assert_non_null(strstr(err.msg, to));
	tu_tree_digest(dir, after);
	assert_string_equal(before, after);
	cleanup(dir);
}

static void test_unwritable_directory_is_refused(void **state)
{
	char *dir = tu_mkdtemp();
	char store_dir[1024], before[65], after[65];
	pid_t pid;
	int status;

	(void)state;
	snprintf(store_dir, sizeof(store_dir), "%s/store", dir);
	assert_int_equal(mkdir(store_dir, 0755), 0);
	chmod(dir, 0755);
	tu_tree_digest(dir, before);
	pid = fork();
	if(pid == 0){
		struct cm_store *store = NULL;
		struct cm_err err;
		bool created;
		/* As root access() always says yes: become nobody. */
		if(geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)){
			_exit(10);
		}
		if(cm_store_open(store_dir, "h", &store, &created, &err) != CM_ERR_IO){
			_exit(11);
		}
		_exit(strstr(err.msg, "not writable") ? 0 : 12);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	tu_tree_digest(dir, after);
	assert_string_equal(before, after);
	tu_rmtree(dir);
	free(dir);
}

static void test_relative_and_file_paths_are_refused(void **state)
{
	char *dir = tu_mkdtemp();
	char path[1024];
	struct cm_store *store = NULL;
	struct cm_err err;
	bool created;

	(void)state;
	assert_int_equal(cm_store_open("relative/store", "h", &store, &created, &err), CM_ERR_INVAL);
	snprintf(path, sizeof(path), "%s/file", dir);
	tu_write_file(path, "x");
	assert_int_equal(cm_store_open(path, "h", &store, &created, &err), CM_ERR_IO);
	assert_non_null(strstr(err.msg, "not a directory"));
	snprintf(path, sizeof(path), "%s/missing/store", dir);
	assert_int_equal(cm_store_open(path, "h", &store, &created, &err), CM_ERR_IO);
	assert_null(store);
	tu_rmtree(dir);
	free(dir);
}

/* A first start killed at any moment: the next start still opens a
 * complete store. */
static void test_killed_first_start_recovers(void **state)
{
	int round;

	(void)state;
	srand((unsigned)time(NULL));
	for(round = 0; round < 12; round++){
		char *dir = tu_mkdtemp();
		char store_dir[1024];
		struct cm_store *store = NULL;
		struct cm_err err;
		bool created;
		pid_t pid;

		snprintf(store_dir, sizeof(store_dir), "%s/store", dir);
		pid = fork();
		if(pid == 0){
			_exit(cm_store_open(store_dir, "h", &store, &created, &err) == CM_OK ? 0 : 1);
		}
		usleep((useconds_t)(rand() % 30000));
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		if(cm_store_open(store_dir, "h", &store, &created, &err) != CM_OK){
			fail_msg("round %d: %s", round, err.msg);
		}
		cm_store_free(&store);
		tu_rmtree(dir);
		free(dir);
	}
}

static void test_slot_names(void **state)
{
	(void)state;
	assert_int_equal(cm_slot_parse("mqtt"), CM_SLOT_MQTT);
	assert_int_equal(cm_slot_parse("websockets"), CM_SLOT_WEBSOCKETS);
	assert_int_equal(cm_slot_parse("bridge"), CM_SLOT_BRIDGE);
	assert_int_equal(cm_slot_parse("MQTT"), -1);
	assert_int_equal(cm_slot_parse(""), -1);
	assert_int_equal(cm_slot_parse(NULL), -1);
}

/* A CRL file name read from tenant.json names a file of that CA in crls/
 * and nothing else; new names are unique. */
static void test_crl_file_names(void **state)
{
	const char *id = "3aababbf5905194ffff573ab920f260b34e02864d1186b5ec35d4aedb3fe0162";
	char a[96], b[96], bad[200];

	(void)state;
	cm_store_crl_file_name(id, a, sizeof(a));
	cm_store_crl_file_name(id, b, sizeof(b));
	assert_true(cm_store_crl_file_valid(id, a));
	assert_true(cm_store_crl_file_valid(id, b));
	assert_string_not_equal(a, b);
	snprintf(bad, sizeof(bad), "%s.crl", id);
	assert_true(cm_store_crl_file_valid(id, bad)); /* the name of stores before */
	assert_false(cm_store_crl_file_valid(id, "../../etc/passwd"));
	snprintf(bad, sizeof(bad), "%s-0123456789abcdef.crl/x", id);
	assert_false(cm_store_crl_file_valid(id, bad));
	snprintf(bad, sizeof(bad), "%s-0123456789abcdeg.crl", id);
	assert_false(cm_store_crl_file_valid(id, bad));
	snprintf(bad, sizeof(bad), "%s-0123456789abcde.crl", id);
	assert_false(cm_store_crl_file_valid(id, bad));
	snprintf(bad, sizeof(bad), "f%s.crl", id + 1);
	assert_false(cm_store_crl_file_valid(id, bad));
}

/* A new server certificate (self-signed for name, with key, or a fresh
 * key when key is NULL). */
static struct cm_server_cert *new_cert(const char *name, EVP_PKEY *key)
{
	static const struct cm_keyspec p256 = {CM_KEY_EC, 0, "P-256", false};
	const char *names[1] = {name};
	struct cm_server_cert *c = NULL;
	EVP_PKEY *own = NULL;
	X509 *x = NULL;
	struct cm_err err;

	if(key == NULL){
		assert_int_equal(cm_pki_generate_key(&p256, &own, &err), CM_OK);
		key = own;
	}
	assert_int_equal(cm_pki_make_self_signed(key, name, names, 1, 30, &x, &err), CM_OK);
	assert_int_equal(cm_server_cert_new(x, NULL, key, name, false, &c, &err), CM_OK);
	X509_free(x);
	EVP_PKEY_free(own);
	return c;
}

static struct cm_csr *new_csr(const char *cn)
{
	static const struct cm_keyspec p256 = {CM_KEY_EC, 0, "P-256", false};
	const char *sans[1] = {"DNS:csr.example"};
	struct cm_subject sub = {.cn = cn};
	struct cm_csr *c = calloc(1, sizeof(*c));
	struct cm_err err;

	assert_non_null(c);
	assert_int_equal(cm_pki_generate_key(&p256, &c->key, &err), CM_OK);
	assert_int_equal(cm_pki_make_csr(c->key, &sub, sans, 1, &c->req, &err), CM_OK);
	assert_int_equal(cm_pki_csr_id(c->req, c->id, &err), CM_OK);
	c->created = time(NULL);
	return c;
}

/* Whether slots/<sub><id><ext> exists in the store dir. */
static bool exists_rel(const char *dir, const char *sub, const char *id, const char *ext)
{
	char path[1024];
	struct stat st;

	snprintf(path, sizeof(path), "%s/slots/%s%s%s", dir, sub, id, ext);
	return stat(path, &st) == 0;
}

/* Adding, choosing the default and removing server certificates: each
 * change is in memory, on disk and in a reopened store; each refusal
 * leaves the directory as it was. */
static void test_server_cert_changes(void **state)
{
	struct cm_store *store = NULL, *again = NULL;
	char *dir = fresh_store(&store);
	struct cm_server_cert *c = new_cert("one.example", NULL), *dup;
	const struct cm_server_cert *builtin = cm_store_slot_default(store, CM_SLOT_MQTT);
	char id[CM_ID_LEN + 1], before[65], after[65];
	uint64_t gen = store->generation;
	bool created;
	struct cm_err err;

	(void)state;
	memcpy(id, c->id, sizeof(id));
	assert_int_equal(cm_store_add_server_cert(store, CM_SLOT_MQTT, c, false, &err), CM_OK);
	assert_ptr_equal(cm_store_find_server_cert(store, CM_SLOT_MQTT, id), c);
	assert_null(cm_store_find_server_cert(store, CM_SLOT_BRIDGE, id));
	assert_null(cm_store_find_server_cert(store, CM_SLOT_MQTT, NULL));
	assert_ptr_equal(cm_store_slot_default(store, CM_SLOT_MQTT), builtin);
	assert_true(store->generation > gen);
	assert_true(exists_rel(dir, "mqtt/", id, ".crt"));
	assert_true(exists_rel(dir, "mqtt/", id, ".key"));

	/* Refusals change nothing. */
	tu_tree_digest(dir, before);
	assert_int_equal(cm_server_cert_new(c->leaf, c->extra, c->key, "again", false, &dup, &err), CM_OK);
	assert_int_equal(cm_store_add_server_cert(store, CM_SLOT_MQTT, dup, false, &err), CM_ERR_INVAL);
	assert_non_null(strstr(err.msg, "already"));
	cm_server_cert_free(&dup);
	assert_int_equal(cm_store_set_default_server_cert(store, CM_SLOT_MQTT, "nope", &err), CM_ERR_INVAL);
	assert_int_equal(cm_store_remove_server_cert(store, CM_SLOT_MQTT, "nope", &err), CM_ERR_INVAL);
	assert_int_equal(cm_store_remove_server_cert(store, CM_SLOT_MQTT, builtin->id, &err), CM_ERR_INVAL);
	tu_tree_digest(dir, after);
	assert_string_equal(before, after);

	assert_int_equal(cm_store_set_default_server_cert(store, CM_SLOT_MQTT, id, &err), CM_OK);
	assert_ptr_equal(cm_store_slot_default(store, CM_SLOT_MQTT), c);
	assert_int_equal(cm_store_remove_server_cert(store, CM_SLOT_MQTT, id, &err), CM_ERR_INVAL);
	assert_non_null(strstr(err.msg, "default"));
	assert_int_equal(cm_store_open(dir, "host.example", &again, &created, &err), CM_OK);
	assert_string_equal(cm_store_slot_default(again, CM_SLOT_MQTT)->id, id);
	cm_store_free(&again);

	assert_int_equal(cm_store_set_default_server_cert(store, CM_SLOT_MQTT, builtin->id, &err), CM_OK);
	assert_int_equal(cm_store_remove_server_cert(store, CM_SLOT_MQTT, id, &err), CM_OK);
	assert_null(cm_store_find_server_cert(store, CM_SLOT_MQTT, id));
	assert_false(exists_rel(dir, "mqtt/", id, ".crt"));
	assert_false(exists_rel(dir, "mqtt/", id, ".key"));
	assert_int_equal(cm_store_open(dir, "host.example", &again, &created, &err), CM_OK);
	assert_null(cm_store_find_server_cert(again, CM_SLOT_MQTT, id));
	cm_store_free(&again);
	cm_store_free(&store);
	cleanup(dir);
}

/* A certificate a tenant is served with stays; the built-in one is
 * replaced, not removed. */
static void test_server_cert_named_by_a_tenant_stays(void **state)
{
	struct cm_store *store = NULL;
	char *dir = fresh_store(&store);
	struct cm_server_cert *c = new_cert("two.example", NULL), *fresh;
	struct cm_tenant *t, *old = NULL;
	char id[CM_ID_LEN + 1], builtin[CM_ID_LEN + 1];
	struct cm_err err;

	(void)state;
	memcpy(id, c->id, sizeof(id));
	memcpy(builtin, cm_store_slot_default(store, CM_SLOT_BRIDGE)->id, sizeof(builtin));
	assert_int_equal(cm_store_add_server_cert(store, CM_SLOT_BRIDGE, c, false, &err), CM_OK);
	t = cm_tenant_clone(cm_store_find_tenant(store, CM_DEFAULT_TENANT));
	assert_non_null(t);
	assert_true(cm_tenant_set_server_cert(t, CM_SLOT_BRIDGE, id));
	assert_int_equal(cm_store_put_tenant(store, t, &old, &err), CM_OK);
	cm_tenant_free(&old);
	assert_ptr_equal(cm_store_served_cert(store, t, CM_SLOT_BRIDGE), c);
	assert_ptr_equal(cm_store_served_cert(store, t, CM_SLOT_MQTT), cm_store_slot_default(store, CM_SLOT_MQTT));
	assert_int_equal(cm_store_remove_server_cert(store, CM_SLOT_BRIDGE, id, &err), CM_ERR_INVAL);
	assert_non_null(strstr(err.msg, "served with"));
	assert_non_null(cm_store_find_server_cert(store, CM_SLOT_BRIDGE, id));

	fresh = new_cert("host.example", NULL);
	assert_int_equal(cm_store_replace_builtin(store, CM_SLOT_BRIDGE, fresh, &err), CM_OK);
	assert_true(fresh->builtin);
	assert_ptr_equal(cm_store_slot_default(store, CM_SLOT_BRIDGE), fresh);
	assert_null(cm_store_find_server_cert(store, CM_SLOT_BRIDGE, builtin));
	assert_false(exists_rel(dir, "bridge/", builtin, ".crt"));
	assert_int_equal(cm_store_remove_server_cert(store, CM_SLOT_BRIDGE, id, &err), CM_ERR_INVAL);
	assert_non_null(strstr(err.msg, "served with"));
	cm_store_free(&store);
	cleanup(dir);
}

/* A CSR is pending on disk until it is removed or its certificate is
 * installed, which replaces it in one commit. */
static void test_csr_changes(void **state)
{
	struct cm_store *store = NULL, *again = NULL;
	char *dir = fresh_store(&store);
	struct cm_csr *a = new_csr("a.example"), *b = new_csr("b.example"), *dup;
	struct cm_server_cert *cert;
	char ida[CM_ID_LEN + 1], idb[CM_ID_LEN + 1], before[65], after[65];
	bool created;
	struct cm_err err;

	(void)state;
	memcpy(ida, a->id, sizeof(ida));
	memcpy(idb, b->id, sizeof(idb));
	assert_int_equal(cm_store_add_csr(store, CM_SLOT_WEBSOCKETS, a, &err), CM_OK);
	assert_int_equal(cm_store_add_csr(store, CM_SLOT_WEBSOCKETS, b, &err), CM_OK);
	assert_ptr_equal(cm_store_find_csr(store, CM_SLOT_WEBSOCKETS, ida), a);
	assert_null(cm_store_find_csr(store, CM_SLOT_MQTT, ida));
	assert_null(cm_store_find_csr(store, CM_SLOT_WEBSOCKETS, NULL));
	assert_true(exists_rel(dir, "websockets/csrs/", ida, ".csr"));
	assert_true(exists_rel(dir, "websockets/csrs/", ida, ".key"));
	assert_mode(dir, "slots/websockets/csrs", 0700);

	tu_tree_digest(dir, before);
	dup = calloc(1, sizeof(*dup));
	assert_non_null(dup);
	memcpy(dup->id, ida, sizeof(ida));
	assert_int_equal(cm_store_add_csr(store, CM_SLOT_WEBSOCKETS, dup, &err), CM_ERR_INVAL);
	cm_csr_free(&dup);
	assert_int_equal(cm_store_remove_csr(store, CM_SLOT_WEBSOCKETS, "nope", &err), CM_ERR_INVAL);
	cert = new_cert("a.example", a->key);
	assert_int_equal(cm_store_install_csr(store, CM_SLOT_WEBSOCKETS, "nope", cert, true, &err), CM_ERR_INVAL);
	tu_tree_digest(dir, after);
	assert_string_equal(before, after);

	assert_int_equal(cm_store_open(dir, "host.example", &again, &created, &err), CM_OK);
	assert_non_null(cm_store_find_csr(again, CM_SLOT_WEBSOCKETS, ida));
	assert_non_null(cm_store_find_csr(again, CM_SLOT_WEBSOCKETS, idb));
	cm_store_free(&again);

	assert_int_equal(cm_store_remove_csr(store, CM_SLOT_WEBSOCKETS, idb, &err), CM_OK);
	assert_null(cm_store_find_csr(store, CM_SLOT_WEBSOCKETS, idb));
	assert_false(exists_rel(dir, "websockets/csrs/", idb, ".csr"));
	assert_false(exists_rel(dir, "websockets/csrs/", idb, ".key"));

	assert_int_equal(cm_store_install_csr(store, CM_SLOT_WEBSOCKETS, ida, cert, true, &err), CM_OK);
	assert_null(cm_store_find_csr(store, CM_SLOT_WEBSOCKETS, ida));
	assert_ptr_equal(cm_store_slot_default(store, CM_SLOT_WEBSOCKETS), cert);
	assert_false(exists_rel(dir, "websockets/csrs/", ida, ".key"));
	assert_int_equal(cm_store_open(dir, "host.example", &again, &created, &err), CM_OK);
	assert_null(again->slots[CM_SLOT_WEBSOCKETS].csrs);
	assert_string_equal(cm_store_slot_default(again, CM_SLOT_WEBSOCKETS)->id, cert->id);
	cm_store_free(&again);
	cm_store_free(&store);
	cleanup(dir);
}

/* The readers see what the struct holds. */
/* The fleet's check of a staged tenant and the commit are one check: a
 * tenant whose issuing CA left the trust list is refused by both (the
 * staged check once let it through, and every node then failed to apply
 * it). */
static void test_a_staged_tenant_is_checked_as_a_commit_is(void **state)
{
	struct cm_store *store = NULL;
	char *dir = fresh_store(&store);
	struct cm_tenant *t = cm_tenant_new("issuing"), *old = NULL;
	struct cm_enroll *e;
	struct cm_err err;

	(void)state;
	assert_non_null(t);
	assert_non_null(e = cm_enroll_of(t));
	memset(e->ca_id, 'a', CM_ID_LEN);
	e->ca_id[CM_ID_LEN] = '\0';
	assert_int_equal(cm_store_check_tenant(store, t, &err), CM_ERR_INVAL);
	assert_non_null(strstr(err.msg, "issuing CA"));
	assert_int_equal(cm_store_put_tenant(store, t, &old, &err), CM_ERR_INVAL);
	assert_non_null(strstr(err.msg, "issuing CA"));
	assert_null(cm_store_find_tenant(store, "issuing"));
	cm_tenant_free(&t);
	cm_store_free(&store);
	cleanup(dir);
}

static void test_readers(void **state)
{
	struct cm_store *store = NULL;
	char *dir = fresh_store(&store);
	const struct cm_tenant *t;
	struct cm_csr *csr = new_csr("r.example");
	size_t n = 0;
	struct cm_err err;

	(void)state;
	assert_true(cm_store_generation(store) == store->generation);
	assert_non_null(cm_store_get0_admin_ca(store));
	assert_ptr_equal(cm_store_get0_admin_ca(store), store->admin_ca);
	for(t = cm_store_first_tenant(store); t; t = cm_store_next_tenant(t)){
		assert_ptr_equal(cm_store_find_tenant(store, t->name), t);
		n++;
	}
	assert_int_equal(n, cm_store_tenant_count(store));
	assert_int_equal(n, 1);
	assert_ptr_equal(cm_store_slot_certs(store, CM_SLOT_MQTT), cm_store_slot_default(store, CM_SLOT_MQTT));
	assert_null(cm_store_slot_certs(store, CM_SLOT_MQTT)->next);
	assert_null(cm_store_slot_csrs(store, CM_SLOT_MQTT));
	assert_int_equal(cm_store_add_csr(store, CM_SLOT_MQTT, csr, &err), CM_OK);
	assert_ptr_equal(cm_store_slot_csrs(store, CM_SLOT_MQTT), csr);
	cm_store_free(&store);
	cleanup(dir);
}

/* A tenant record over the loader's limit is never written: the store
 * would not load. Here, thousands of long pre-registered identities and
 * as many topic patterns. */
static void test_a_record_over_the_file_limit_is_refused(void **state)
{
	struct cm_store *store = NULL;
	char *dir = fresh_store(&store), before[65], after[65], id[140];
	struct cm_tenant *t = cm_tenant_new("big"), *old = NULL;
	struct cm_err err;

	(void)state;
	t->enroll = cm_enroll_new();
	for(int i = 0; i < 5000; i++){
		snprintf(id, sizeof(id), "d:%060d:%060d", i, i);
		assert_int_equal(cm_enroll_allow(t->enroll, id, NULL), CM_OK);
	}
	/* And as many long topic patterns: together over 1 MiB. */
	assert_int_equal(cm_strlist_set(&t->publish, (const char *const *)t->enroll->allowed, t->enroll->nallowed), CM_OK);
	tu_tree_digest(dir, before);
	assert_int_equal(cm_store_put_tenant(store, t, &old, &err), CM_ERR_INVAL);
	assert_non_null(strstr(err.msg, "over the store's limit"));
	tu_tree_digest(dir, after);
	assert_string_equal(before, after);
	assert_null(cm_store_find_tenant(store, "big"));
	cm_tenant_free(&t);
	cm_store_free(&store);
	cleanup(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_open_creates_every_slot_with_builtin_default),
		cmocka_unit_test(test_reopen_loads_the_same_certificates),
		cmocka_unit_test(test_admin_ca_key_is_encrypted_at_rest),
		cmocka_unit_test(test_listener_files_are_restored_to_the_default),
		cmocka_unit_test(test_corrupt_stores_are_refused_and_left_untouched),
		cmocka_unit_test(test_swapped_files_are_refused),
		cmocka_unit_test(test_unwritable_directory_is_refused),
		cmocka_unit_test(test_relative_and_file_paths_are_refused),
		cmocka_unit_test(test_killed_first_start_recovers),
		cmocka_unit_test(test_slot_names),
		cmocka_unit_test(test_crl_file_names),
		cmocka_unit_test(test_server_cert_changes),
		cmocka_unit_test(test_server_cert_named_by_a_tenant_stays),
		cmocka_unit_test(test_csr_changes),
		cmocka_unit_test(test_readers),
		cmocka_unit_test(test_a_staged_tenant_is_checked_as_a_commit_is),
		cmocka_unit_test(test_a_record_over_the_file_limit_is_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
