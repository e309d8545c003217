/* tenmem [COUNT]: the heap a tenant with one CA takes once the store is
 * loaded, by component. It makes a store of COUNT tenants (default 1,000)
 * the way bench/run-bench's tenants() does (tenant t<i>, host name
 * t<i>.bench, one EC P-256 CA), loads it with the store's own loader
 * (cm_store_load) and reports, per tenant, the loader's whole heap and
 * what each part of a tenant holds: its records (walked, each
 * allocation's chunk as glibc's malloc counts it, so the allocator's
 * overhead is apart), and what OpenSSL holds (measured by freeing it:
 * the trust store first, then the parsed certificates). glibc only
 * (mallinfo2, malloc_usable_size). */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/x509.h>

#include "store.h"
#include "store-int.h"

/* The parts a tenant's memory is reported in. */
enum part {
	P_TENANT, P_CA, P_HOSTS, P_TOPICS, P_SNI, P_NAMES, P_HASH, P_OVERHEAD, P_COUNT
};

static const char *const part_names[P_COUNT] = {
	"tenant record (struct cm_tenant, name, org id)",
	"CA record (struct cm_ca, description)",
	"host names (list, strings)",
	"topic patterns (publish, subscribe)",
	"SNI index entry (struct cm_sni_entry, host)",
	"CA name index (buckets, references)",
	"hash tables (uthash bucket arrays, share)",
	"allocator overhead of the above (chunk - requested)",
};

static size_t parts[P_COUNT];

/* An allocation of want bytes at p, counted to part: the bytes asked for
 * to the part, the rest of glibc's chunk (its header, rounding) to the
 * overhead. */
static void count(enum part part, const void *p, size_t want)
{
	size_t chunk;

	if(p == NULL){
		return;
	}
	chunk = malloc_usable_size((void *)p) + sizeof(size_t);
	parts[part] += want;
	parts[P_OVERHEAD] += chunk - want;
}

static void count_str(enum part part, const char *s)
{
	if(s){
		count(part, s, strlen(s) + 1);
	}
}

static void count_list(enum part part, const struct cm_strlist *l)
{
	count(part, l->v, l->n * sizeof(char *));
	for(size_t i = 0; i < l->n; i++){
		count_str(part, l->v[i]);
	}
}

/* A uthash table's bucket array and table record, whole. */
static void count_table(const UT_hash_handle *hh)
{
	if(hh && hh->tbl){
		count(P_HASH, hh->tbl->buckets, hh->tbl->num_buckets * sizeof(UT_hash_bucket));
		count(P_HASH, hh->tbl, sizeof(UT_hash_table));
	}
}

static void walk(const struct cm_store *s)
{
	const struct cm_tenant *t;
	const struct cm_sni_entry *e, *etmp;
	const struct cm_name_bucket *b, *btmp;

	for(t = s->tenants; t; t = t->hh.next){
		count(P_TENANT, t, sizeof(*t));
		count_str(P_TENANT, t->name);
		count_str(P_TENANT, t->org_id);
		count_list(P_HOSTS, &t->hostnames);
		count_list(P_TOPICS, &t->publish);
		count_list(P_TOPICS, &t->subscribe);
		for(const struct cm_ca *ca = t->cas; ca; ca = ca->next){
			count(P_CA, ca, sizeof(*ca));
			count_str(P_CA, ca->description);
			count_str(P_CA, ca->crl_url);
			count_str(P_CA, ca->crl_learned_url);
		}
	}
	HASH_ITER(hh, s->sni, e, etmp){
		count(P_SNI, e, sizeof(*e));
		count_str(P_SNI, e->host);
	}
	HASH_ITER(hh, s->names, b, btmp){
		count(P_NAMES, b, sizeof(*b));
		count(P_NAMES, b->v, b->cap * sizeof(*b->v));
	}
	count_table(s->tenants ? &s->tenants->hh : NULL);
	count_table(s->orgs ? &s->orgs->hh_org : NULL);
	count_table(s->sni ? &s->sni->hh : NULL);
	count_table(s->names ? &s->names->hh : NULL);
}

/* The process's resident size, in bytes. */
static size_t rss(void)
{
	unsigned long pages = 0, res = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if(f){
		if(fscanf(f, "%lu %lu", &pages, &res) != 2){
			res = 0;
		}
		fclose(f);
	}
	return (size_t)res * 4096;
}

static double cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* What making a cold tenant's trust would cost at its handshake: its
 * CA's DER parsed, and its trust store built (microseconds a tenant). */
static void cold_cost(struct cm_store *s, size_t n, double *parse_us, double *build_us)
{
	struct cm_tenant *t;
	struct cm_err err = {0};
	double t0;

	t0 = cpu_s();
	for(t = s->tenants; t; t = t->hh.next){
		for(struct cm_ca *ca = t->cas; ca; ca = ca->next){
			unsigned char *der = NULL;
			const unsigned char *p;
			int len = i2d_X509(ca->cert, &der);
			X509 *x;

			p = der;
			x = len > 0 ? d2i_X509(NULL, &p, len) : NULL;
			if(x == NULL){
				fprintf(stderr, "tenmem: cannot parse a CA again\n");
				exit(1);
			}
			X509_free(x);
			OPENSSL_free(der);
		}
	}
	*parse_us = (cpu_s() - t0) / (double)n * 1e6;
	t0 = cpu_s();
	for(t = s->tenants; t; t = t->hh.next){
		if(build_trust(t, s->admin_ca, &err) != CM_OK){
			fprintf(stderr, "tenmem: %s\n", err.msg);
			exit(1);
		}
	}
	*build_us = (cpu_s() - t0) / (double)n * 1e6;
}

static size_t heap(void)
{
	return mallinfo2().uordblks;
}

static int make_store(const char *dir, size_t n)
{
	struct cm_store *s = NULL;
	struct cm_err err = {0};
	bool created;

	if(cm_store_open(dir, "localhost", &s, &created, &err) != CM_OK){
		fprintf(stderr, "tenmem: %s\n", err.msg);
		return -1;
	}
	for(size_t i = 0; i < n; i++){
		char name[32], host[48], cn[48];
		const char *hosts[1] = {host};
		struct cm_tenant *t, *old = NULL;
		struct cm_ca *entry;
		X509 *ca;
		EVP_PKEY *key;

		snprintf(name, sizeof(name), "t%zu", i);
		snprintf(host, sizeof(host), "t%zu.bench", i);
		snprintf(cn, sizeof(cn), "tenmem CA %zu", i);
		t = cm_tenant_new(name);
		if(t == NULL || cm_pki_make_ca(cn, 365, &ca, &key, &err) != CM_OK){
			fprintf(stderr, "tenmem: cannot make tenant %s\n", name);
			return -1;
		}
		EVP_PKEY_free(key);
		if(cm_strlist_set(&t->hostnames, hosts, 1) != CM_OK
				|| cm_tenant_append_ca(t, ca, "", &entry, &err) != CM_OK
				|| cm_store_put_tenant(s, t, &old, &err) != CM_OK){
			fprintf(stderr, "tenmem: tenant %s: %s\n", name, err.msg);
			return -1;
		}
		X509_free(ca);
		cm_tenant_free(&old);
	}
	cm_store_free(&s);
	return 0;
}

/* The loader's heap for the store in dir; *out keeps the store. */
static size_t load(const char *dir, struct cm_store **out)
{
	struct cm_err err = {0};
	size_t before = heap();

	if(cm_store_load(dir, out, &err) != CM_OK){
		fprintf(stderr, "tenmem: %s\n", err.msg);
		exit(1);
	}
	return heap() - before;
}

int main(int argc, char **argv)
{
	size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000, base, full, before, trust, x509, rest, walked = 0;
	size_t rss0, rss_loaded, rss_trimmed, free_loaded;
	char empty[] = "/tmp/tenmem-0-XXXXXX", many[] = "/tmp/tenmem-n-XXXXXX", cmd[128];
	struct cm_store *s = NULL;
	struct cm_tenant *t;
	double per, parse_us, build_us;

	if(n == 0 || mkdtemp(empty) == NULL || mkdtemp(many) == NULL){
		fprintf(stderr, "usage: tenmem [COUNT > 0]\n");
		return 2;
	}
	if(make_store(empty, 0) || make_store(many, n)){
		return 1;
	}
	/* OpenSSL's one-time set-up and the store's fixed part: not a tenant's. */
	base = load(empty, &s);
	cm_store_free(&s);
	base = load(empty, &s);
	cm_store_free(&s);
	malloc_trim(0);
	rss0 = rss();
	full = load(many, &s);
	rss_loaded = rss();
	free_loaded = mallinfo2().fordblks;
	malloc_trim(0);
	rss_trimmed = rss();
	per = (double)(full - base) / (double)n;
	walk(s);
	cold_cost(s, n, &parse_us, &build_us);
	/* The trust stores first (they hold references to the certificates),
	 * then the certificates themselves. */
	before = heap();
	for(t = s->tenants; t; t = t->hh.next){
		cm_tenant_drop_trust(t);
	}
	trust = before - heap();
	before = heap();
	for(t = s->tenants; t; t = t->hh.next){
		for(struct cm_ca *ca = t->cas; ca; ca = ca->next){
			X509_free(ca->cert);
			ca->cert = NULL;
		}
	}
	x509 = before - heap();
	before = heap();
	cm_store_free(&s);
	rest = before - heap();

	printf("tenants %zu: the loader's heap %.0f bytes a tenant (store alone %zu)\n", n, per, base);
	printf("  resident size added by the load: %.0f bytes a tenant, %.0f after malloc_trim(0); %.0f free in the heap\n",
			((double)rss_loaded - (double)rss0) / (double)n, ((double)rss_trimmed - (double)rss0) / (double)n,
			(double)free_loaded / (double)n);
	printf("  %-52s %6.0f\n", "parsed X509 (OpenSSL, with its DER)", (double)x509 / (double)n);
	printf("  %-52s %6.0f\n", "X509_STORE and stacks (OpenSSL)", (double)trust / (double)n);
	printf("  %-52s %6d\n", "DER kept apart from the X509", 0);
	for(int i = 0; i < P_COUNT; i++){
		printf("  %-52s %6.0f\n", part_names[i], (double)parts[i] / (double)n);
		walked += parts[i];
	}
	/* What the store frees besides the walked records: its fixed part,
	 * and what no walk named (should be about nothing). */
	printf("  %-52s %6.0f\n", "other (freed with the store, not walked)",
			((double)rest - (double)walked - (double)base) / (double)n);
	printf("  a cold tenant's trust: %.1f us CPU to parse its CA's DER (and i2d it), %.1f us to build its trust store\n",
			parse_us, build_us);
	if(getenv("TENMEM_KEEP")){
		/* For a look at a broker on the same stores. */
		printf("  stores kept: %s (no tenant but the default), %s\n", empty, many);
		return 0;
	}
	snprintf(cmd, sizeof(cmd), "rm -rf %s %s", empty, many);
	return system(cmd) == 0 ? 0 : 1;
}
