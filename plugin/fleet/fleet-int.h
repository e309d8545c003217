#ifndef CM_FLEET_INT_H
#define CM_FLEET_INT_H
/* What the files of plugin/fleet/ share. Fields marked (lock) are read
 * and written under f->lock by both threads and the broker thread;
 * (broker) by the broker thread only; (watch) and (requests) by that
 * thread only, or before the threads start. */

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <uthash.h>

#include "etcd.h"
#include "fleet.h"
#include "record.h"
#include "state.h"

#define FLEET_LEASE_TTL 5
#define FLEET_HEARTBEAT_MS 1000
/* A node's view is put again at least this often, even unchanged. */
#define FLEET_VIEW_REPUT 15
#define FLEET_KEY_MAX 384

/* A slot's name in the revision maps: "slot:<slot>" (no tenant name has
 * a colon). */
#define FLEET_SLOT_PREFIX "slot:"
#define FLEET_NAME_MAX (CM_TENANT_NAME_MAX + 1)

/* A change handed to etcd (requests thread). */
struct fleet_job {
	char name[FLEET_NAME_MAX];  /* a tenant's, or FLEET_SLOT_PREFIX<slot> */
	char rel[96];               /* its key below the prefix: tenants/<name>, slots/<slot> */
	bool remove;                /* a delete; else a put of dir */
	bool refetch;               /* read etcd's record and apply it here (a slot
	                             * whose change did not reach etcd) */
	int64_t staged;             /* the mod_revision it was staged on */
	char dir[PATH_MAX];         /* the staged base (a put) */
	void *owner;
	char who[128], command[64], id[CM_ID_LEN + 1];
	/* The outcome. */
	enum cm_rc rc;
	bool won;
	int64_t revision;
	struct cm_err err;
	time_t finished;            /* (broker) when the tick took it */
	struct fleet_job *next;
};

/* A change the watch received, ready for the tick. */
struct fleet_change {
	char name[FLEET_NAME_MAX];
	int slot;                   /* a slot's change (its id), or -1 */
	struct cm_slot loaded;      /* a slot's, loaded */
	bool remove;
	int64_t revision;           /* the key's mod_revision (of the delete) */
	char base[PATH_MAX];        /* base/tenants/<name>/ holds its files */
	struct cm_tenant *t;        /* loaded; NULL with err when it did not */
	enum cm_rc rc;
	struct cm_err err;
	struct fleet_change *next;
};

/* A tenant's mod_revision as a node knows it. */
struct fleet_rev {
	char name[FLEET_NAME_MAX];
	int64_t revision;
	UT_hash_handle hh;
};

struct cm_fleet {
	const struct cm_fleet_opts *opts; /* st's */
	char *store_dir;
	char key_tenants[FLEET_KEY_MAX], end_tenants[FLEET_KEY_MAX];
	/* What the watch and a resync read: slots/ up to the end of tenants/
	 * (nothing else of certmgr's lies between). */
	char key_watch[FLEET_KEY_MAX];
	char *pass;                        /* the keys' passphrase (slots load with it) */
	pthread_mutex_t lock;
	pthread_cond_t wake;
	pthread_t watch_thread, req_thread;
	bool started;
	bool stop;                         /* (lock) */
	struct fleet_job *jobs, *done;     /* (lock) to do, and done */
	struct fleet_change *changes;      /* (lock) in order */
	bool watching;                     /* (lock) the watch is connected */
	bool requests_ok;                  /* (lock) the last request reached etcd */
	char last_error[256];              /* (lock) */
	time_t down_since;                 /* (lock) 0: connected */
	char *view;                        /* (lock) this node's view, to put */
	char *rejected;                    /* (lock) this node's rejected list, to put */
	char *nodes;                       /* (lock) the nodes/ range as JSON */
	char *others_rejected;             /* (lock) the rejected/ range as JSON */
	uint64_t resyncs, watch_restarts;  /* (lock) */
	/* (watch) */
	struct cm_etcd *wetcd;
	struct fleet_rev *delivered;
	int64_t watch_rev;
	uint64_t seq;                      /* (atomic) scratch directory names */
	/* (requests) */
	struct cm_etcd *retcd;
	int64_t lease;
	char *view_put;
	time_t view_put_at;
	struct fleet_rev *gc_unnamed;      /* blobs no record named at the last pass */
	int64_t gc_revision;               /* of that pass */
	uint64_t gc_deleted;
	time_t gc_at;                      /* CLOCK_MONOTONIC seconds of the last pass */
	/* (broker) */
	struct fleet_rev *applied;
	int64_t applied_rev;
	bool applied_dirty;
	cm_fleet_done_fn done_fn;
	struct fleet_job *settling;        /* done, waiting to be applied here */
	uint64_t jobs_sent, conflicts, apply_errors;
	char last_apply_error[320];
	time_t view_built;
	uint64_t stage_seq;
};

/* fleet_sync.c: records and revisions. */
int64_t fleet_rev_get(struct fleet_rev *const *set, const char *name);
CM_MUST_CHECK bool fleet_rev_set(struct fleet_rev **set, const char *name, int64_t rev);
void fleet_rev_del(struct fleet_rev **set, const char *name);
void fleet_rev_free(struct fleet_rev **set);
CM_MUST_CHECK struct fleet_rev *fleet_rev_copy(struct fleet_rev *const *set);
/* The tenant name of key (prefix tenants/<name>), or NULL. */
const char *fleet_key_name(const struct cm_fleet *f, const char *key);
/* The revision map's name of key: a tenant's name, or "slot:<slot>" for
 * prefix slots/<slot>; NULL for any other key. */
const char *fleet_map_name(const struct cm_fleet *f, const char *key, char buf[FLEET_NAME_MAX]);
/* The slot of a map name, or -1 (a tenant's). */
int fleet_name_slot(const char *name);
/* Makes the change of one put or delete: a put's record written below a
 * scratch directory of its own and loaded. Runs on the watch thread (and
 * at start). */
struct fleet_change *fleet_change_make(struct cm_fleet *f, struct cm_etcd *e, const char *name, const unsigned char *value, size_t len,
		int64_t revision, bool remove);
void fleet_change_free(struct fleet_change *c);
/* The whole tenants/ range against what was delivered: a change for each
 * tenant that differs or is gone, queued in order (lock taken inside).
 * *revision: the range's. */
CM_MUST_CHECK enum cm_rc fleet_resync(struct cm_fleet *f, struct cm_etcd *e, int64_t *revision, struct cm_err *err);
/* Queues c at the end of the changes (lock taken inside). */
void fleet_queue_change(struct cm_fleet *f, struct fleet_change *c);
/* rm -r of a scratch directory of the fleet. */
void fleet_remove_tree(const char *path);
/* Loads/saves <store>/fleet/applied.json. */
void fleet_applied_load(struct cm_fleet *f);
void fleet_applied_save(struct cm_fleet *f);
/* At start: the admin CA (adopted from etcd, or put there first), and the
 * default tenant put there when etcd has none. *reopen: the admin CA
 * changed on disk. */
CM_MUST_CHECK enum cm_rc fleet_sync_admin(struct cm_state *st, struct cm_etcd *e, bool *reopen, struct cm_err *err);

/* fleet_threads.c */
CM_MUST_CHECK enum cm_rc fleet_threads_start(struct cm_fleet *f, struct cm_err *err);
void fleet_threads_stop(struct cm_fleet *f);
/* Runs one job against etcd (requests thread, or at start). */
void fleet_run_job(struct cm_fleet *f, struct cm_etcd *e, struct fleet_job *j);
void fleet_set_health(struct cm_fleet *f, bool *flag, bool ok, const char *why);

/* fleet_gc.c: blobs no record names leave etcd (requests thread). */
CM_MUST_CHECK enum cm_rc fleet_gc(struct cm_fleet *f, struct cm_err *err);

/* fleet_view.c: this node's view and the JSON of the views. */
void fleet_view_tick(struct cm_state *st, time_t now);
/* The tenant's CRL figures of the view. */
cJSON *fleet_crl_health(const struct cm_state *st);

/* fleet.c */
void fleet_apply_changes(struct cm_state *st);

#endif
