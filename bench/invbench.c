/* invbench [COUNT]: the device inventory alone, without a broker: its
 * heap per device (mallinfo2) with COUNT devices (default 100,000), the
 * cost of what a CONNECT adds to it (the leaf's facts, a record found or
 * made), and of a listDevices page of 1,000 (sorting what was added,
 * finding the page). bench/run-bench measures the same in a broker. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "inventory.h"
#include "pki.h"

static double now_s(void)
{
	struct timespec ts;

	/* The process's CPU time: a busy machine blurs it less than the clock. */
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	size_t count = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000, reps = 10;
	struct cm_inventory *inv;
	struct mallinfo2 before, after;
	struct cm_cert_facts f;
	X509 *ca, *leaf;
	EVP_PKEY *kc, *kl;
	struct cm_err err;
	char id[64];
	bool clone;
	struct cm_inventory_snapshot *snap;
	const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	double snapshot_ms = 0, write_ms;
	int steps = 0;
	double t0, facts_us, digest_us, admit_us, first_page_ms, page_ms = 0;

	if(count == 0 || cm_pki_make_ca("invbench CA", 30, &ca, &kc, &err) != CM_OK
			|| cm_pki_make_client_cert(ca, kc, "d:sensor:b1", 30, &leaf, &kl, &err) != CM_OK){
		fprintf(stderr, "invbench: cannot make a certificate\n");
		return 1;
	}
	t0 = now_s();
	for(size_t i = 0; i < count; i++){
		(void)cm_cert_facts_of(leaf, &f);
	}
	facts_us = (now_s() - t0) / (double)count * 1e6;
	t0 = now_s();
	for(size_t i = 0; i < count; i++){
		unsigned char md[EVP_MAX_MD_SIZE];
		unsigned int n;
		(void)X509_digest(leaf, EVP_sha256(), md, &n);
	}
	digest_us = (now_s() - t0) / (double)count * 1e6;
	before = mallinfo2();
	inv = cm_inventory_new(1000000);
	for(size_t i = 0; i < count; i++){
		snprintf(id, sizeof(id), "d:bench:sensor:dev%06zu", i);
		f.fp[0] = (unsigned char)i;
		f.fp[1] = (unsigned char)(i >> 8);
		f.fp[2] = (unsigned char)(i >> 16);
		cm_inventory_disconnected(inv, cm_inventory_admit(inv, "bench", id, &f, "", 1700000000, &clone));
	}
	t0 = now_s();
	if(cm_inventory_sort(inv) != CM_OK){
		return 1;
	}
	first_page_ms = (now_s() - t0) * 1e3;
	after = mallinfo2();
	/* What a CONNECT of a known device costs: found, its record updated. */
	t0 = now_s();
	for(size_t r = 0; r < reps; r++){
		for(size_t i = 0; i < count; i++){
			snprintf(id, sizeof(id), "d:bench:sensor:dev%06zu", i);
			f.fp[0] = (unsigned char)i;
			f.fp[1] = (unsigned char)(i >> 8);
			f.fp[2] = (unsigned char)(i >> 16);
			cm_inventory_disconnected(inv, cm_inventory_admit(inv, "bench", id, &f, "", 1700000001, &clone));
		}
	}
	admit_us = (now_s() - t0) / (double)(count * reps) * 1e6;
	/* A page: the lower bound, then a walk of 1,000 (what listDevices does
	 * before it renders them). */
	for(size_t off = 0; off < count; off += 1000){
		size_t i = cm_inventory_lower_bound(inv, "bench", "");
		size_t n = 0;
		t0 = now_s();
		for(i += off; i < inv->order_n && n < 1000; i++, n++){
			__asm__ volatile("" : : "r"(inv->order[i]->last_seen));
		}
		page_ms += (now_s() - t0) * 1e3;
	}
	/* What the broker thread does for a write of the file: the copy. */
	snap = cm_inventory_snapshot_begin(inv);
	for(int done = 0; snap && done == 0;){
		/* A step a tick, of plugin/devices.h's CM_INVENTORY_SNAPSHOT_STEP. */
		double t = now_s(), ms;
		done = cm_inventory_snapshot_step(inv, snap, 20000);
		ms = (now_s() - t) * 1e3;
		snapshot_ms = ms > snapshot_ms ? ms : snapshot_ms;
		steps++;
	}
	t0 = now_s();
	if(snap == NULL || cm_inventory_write(snap, dir, &err) != CM_OK){
		fprintf(stderr, "invbench: %s\n", snap ? err.msg : "out of memory");
		return 1;
	}
	write_ms = (now_s() - t0) * 1e3;
	cm_inventory_snapshot_free(&snap);
	printf("snapshot_steps=%d longest_step_ms=%.1f (broker thread) write_ms=%.1f (worker) ", steps, snapshot_ms, write_ms);
	printf("devices=%zu bytes_per_device=%.0f record_bytes=%zu facts_us=%.2f (X509_digest with EVP_sha256(): %.2f) admit_us=%.2f"
			" sort_all_ms=%.1f page_walk_ms=%.3f\n",
			count, (double)(after.uordblks - before.uordblks) / (double)count, sizeof(struct cm_device), facts_us, digest_us, admit_us,
			first_page_ms, page_ms / (double)((count + 999) / 1000));
	cm_inventory_free(&inv);
	X509_free(ca);
	X509_free(leaf);
	EVP_PKEY_free(kc);
	EVP_PKEY_free(kl);
	return 0;
}
