#ifndef CM_RECORD_H
#define CM_RECORD_H
/* A record: the files of one directory of the store (a tenant's
 * tenants/<name>/, the admin CA's admin/), whatever they are, as one etcd
 * value, so that everything a tenant holds reaches every node without
 * this code knowing its fields (docs/FLEET.md, "What is shared"):
 *
 *   {"schema":1,"files":{"tenant.json":{"data":"<base64>"},
 *    "crls/<file>":{"blob":"<sha-256>","size":N}, ...}}
 *
 * A file over CM_RECORD_INLINE_MAX (a large CRL) is a blob: stored before
 * the record as content-addressed chunks of CM_RECORD_CHUNK bytes under
 * <prefix>blobs/<sha-256>/<index>, each request under etcd's default
 * limit of 1.5 MiB; the record that names it commits it, in one revision.
 * A private key that is not encrypted is refused: etcd holds keys
 * encrypted at rest only. */

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "error.h"
#include "etcd.h"

#define CM_RECORD_INLINE_MAX (256 * 1024)
#define CM_RECORD_CHUNK (512 * 1024)
#define CM_RECORD_MAX_FILES 4096
#define CM_RECORD_MAX_FILE (256u * 1024 * 1024)
#define CM_RECORD_MAX_DEPTH 3
/* The largest record value (small files inline). */
#define CM_RECORD_MAX (CM_ETCD_MAX_REQUEST - 4096)

/* Reads the regular files below dir into a record, a JSON text the caller
 * frees. Files over CM_RECORD_INLINE_MAX are stored as blobs through e
 * under prefix first (refused when e is NULL). */
CM_MUST_CHECK enum cm_rc cm_record_build(struct cm_etcd *e, const char *prefix, const char *dir, char **out, size_t *len, struct cm_err *err);

/* Writes the files of the record (len bytes at rec) below dir, made if
 * need be (0700; files 0600), fetching blobs through e under prefix
 * (checked against their SHA-256 and size). */
CM_MUST_CHECK enum cm_rc cm_record_write(struct cm_etcd *e, const char *prefix, const char *rec, size_t len, const char *dir, struct cm_err *err);

/* Parses and checks a record: the schema, every path (cm_record_path_valid)
 * and every entry's form. The caller frees *out. */
CM_MUST_CHECK enum cm_rc cm_record_parse(const char *rec, size_t len, cJSON **out, struct cm_err *err);

/* A relative path of at most CM_RECORD_MAX_DEPTH components of
 * [A-Za-z0-9._-], none empty or starting with a dot. */
bool cm_record_path_valid(const char *rel);

/* True when the len bytes at data hold a PEM private key that is not
 * encrypted. */
bool cm_record_plain_key(const char *data, size_t len);

#endif
