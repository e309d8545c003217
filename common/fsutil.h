#ifndef CM_FSUTIL_H
#define CM_FSUTIL_H
/* File writes that survive a crash at any instant, and bounded reads. */

#include <stddef.h>
#include <sys/types.h>

#include "error.h"

/* Replaces path with data: a temporary file beside it, written, fsynced,
 * renamed over path, then the directory fsynced. A crash at any instant
 * leaves either the old content or the new one. mode is the new file's
 * permission (0600 for keys). */
CM_MUST_CHECK enum cm_rc cm_fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode, struct cm_err *err);

/* Reads the whole file into a NUL-terminated buffer the caller frees.
 * A file larger than maxlen is refused. *out_len excludes the NUL.
 * Returns CM_ERR_IO with errno preserved when the file cannot be opened. */
CM_MUST_CHECK enum cm_rc cm_fs_read_file(const char *path, size_t maxlen, char **out, size_t *out_len, struct cm_err *err);

/* Creates dir with mode if it does not exist; it is fine if it does. */
CM_MUST_CHECK enum cm_rc cm_fs_mkdir(const char *dir, mode_t mode, struct cm_err *err);

/* Removes a file and fsyncs its directory; a missing file is not an error. */
CM_MUST_CHECK enum cm_rc cm_fs_remove(const char *path, struct cm_err *err);

/* fsyncs the directory that holds path. */
CM_MUST_CHECK enum cm_rc cm_fs_sync_parent(const char *path, struct cm_err *err);

/* snprintf into buf that fails (CM_ERR_INVAL) instead of truncating. */
CM_MUST_CHECK enum cm_rc cm_fs_path(char *buf, size_t buflen, struct cm_err *err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#endif
