#ifndef CM_TESTUTIL_H
#define CM_TESTUTIL_H
/* Helpers for the unit tests: scratch directories and a digest of a whole
 * directory tree, to prove that a refused operation changed nothing. */

#include <stddef.h>
#include <stdarg.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

/* A new empty directory under $TMPDIR (or /tmp); the caller frees it and
 * removes it with tu_rmtree. */
char *tu_mkdtemp(void);
void tu_rmtree(const char *dir);

/* SHA-256 over every path, mode and content below dir, as hex. */
void tu_tree_digest(const char *dir, char out[65]);

void tu_write_file(const char *path, const char *content);
/* Copies a directory tree (files and directories only). */
void tu_copytree(const char *from, const char *to);

#endif
