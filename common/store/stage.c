/* A tenant's files outside the store: staged into a directory of their
 * own (what a replicated back end sends), loaded from one (what it
 * receives), and adopted into the store before the commit (store.h,
 * "Staging"). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "store.h"
#include "store-int.h"

enum cm_rc cm_store_check_tenant(const struct cm_store *store, struct cm_tenant *t, struct cm_err *err)
{
	struct cm_sni_entry *list = NULL;
	enum cm_rc rc = validate_tenant(store, t, &list, err);

	sni_list_free(&list);
	return rc;
}

/* Hard links every file below from into to (made), keeping the layout. */
static enum cm_rc link_tree(const char *from, const char *to, int depth, struct cm_err *err)
{
	char a[PATH_MAX], b[PATH_MAX];
	struct dirent *d;
	DIR *dh;
	enum cm_rc rc;

	rc = cm_fs_mkdir(to, 0700, err);
	if(rc != CM_OK || (dh = opendir(from)) == NULL){
		return rc != CM_OK ? rc : (errno == ENOENT ? CM_OK : cm_err_set(err, CM_ERR_IO, "cannot read %s: %s", from, strerror(errno)));
	}
	while(rc == CM_OK && (d = readdir(dh)) != NULL){
		struct stat st;

		if(d->d_name[0] == '.' || strstr(d->d_name, ".tmp.")){
			continue;
		}
		if(cm_fs_path(a, sizeof(a), err, "%s/%s", from, d->d_name) != CM_OK || cm_fs_path(b, sizeof(b), err, "%s/%s", to, d->d_name) != CM_OK){
			rc = CM_ERR_INVAL;
		}else if(lstat(a, &st) != 0){
			continue;
		}else if(S_ISDIR(st.st_mode) && depth < 4){
			rc = link_tree(a, b, depth + 1, err);
		}else if(S_ISREG(st.st_mode) && link(a, b) != 0 && errno != EEXIST){
			rc = cm_err_set(err, CM_ERR_IO, "cannot link %s: %s", b, strerror(errno));
		}
	}
	closedir(dh);
	return rc;
}

enum cm_rc cm_store_link_tree(const char *from, const char *to, struct cm_err *err)
{
	return link_tree(from, to, 0, err);
}

enum cm_rc cm_store_stage_tenant(const struct cm_store *store, struct cm_tenant *t, const char *base, struct cm_err *err)
{
	char from[PATH_MAX], to[PATH_MAX];
	struct cm_store tmp;
	const struct cm_tenant *prev = cm_store_find_tenant(store, t->name);
	uint64_t saved_gen = t->generation;
	enum cm_rc rc;

	if(cm_fs_path(from, sizeof(from), err, "%s/tenants/%s", store->dir, t->name) != CM_OK
			|| cm_fs_path(to, sizeof(to), err, "%s/tenants", base) != CM_OK){
		return CM_ERR_INVAL;
	}
	rc = cm_fs_mkdir(base, 0700, err);
	if(rc == CM_OK){
		rc = cm_fs_mkdir(to, 0700, err);
	}
	if(rc == CM_OK && cm_fs_path(to, sizeof(to), err, "%s/tenants/%s", base, t->name) != CM_OK){
		rc = CM_ERR_INVAL;
	}
	if(rc == CM_OK && prev){
		rc = link_tree(from, to, 0, err);
	}
	if(rc != CM_OK){
		return rc;
	}
	/* The store's own writer, pointed at base: the staged directory is
	 * what the store would hold after the commit. */
	tmp = *store;
	tmp.dir = (char *)base;
	t->generation = store->generation + 1;
	rc = write_tenant(&tmp, t, err);
	t->generation = saved_gen;
	if(rc == CM_OK){
		remove_unnamed_files(&tmp, prev, t);
	}
	return rc;
}

enum cm_rc cm_store_load_tenant(const char *base, const char *name, const char *pass, struct cm_tenant **out, struct cm_err *err)
{
	if(!cm_tenant_name_valid(name)){
		return cm_err_set(err, CM_ERR_INVAL, "invalid tenant name");
	}
	return load_tenant(base, name, pass, out, err);
}

/* Renames every file below from but tenant.json into to (made). */
static enum cm_rc adopt_tree(const char *from, const char *to, int depth, struct cm_err *err)
{
	char a[PATH_MAX], b[PATH_MAX];
	struct dirent *d;
	DIR *dh;
	enum cm_rc rc;

	rc = cm_fs_mkdir(to, 0700, err);
	if(rc != CM_OK){
		return rc;
	}
	dh = opendir(from);
	if(dh == NULL){
		return cm_err_set(err, CM_ERR_IO, "cannot read %s: %s", from, strerror(errno));
	}
	while(rc == CM_OK && (d = readdir(dh)) != NULL){
		struct stat st;

		if(d->d_name[0] == '.' || (depth == 0 && !strcmp(d->d_name, "tenant.json"))){
			continue;
		}
		if(cm_fs_path(a, sizeof(a), err, "%s/%s", from, d->d_name) != CM_OK || cm_fs_path(b, sizeof(b), err, "%s/%s", to, d->d_name) != CM_OK){
			rc = CM_ERR_INVAL;
		}else if(lstat(a, &st) != 0){
			continue;
		}else if(S_ISDIR(st.st_mode) && depth < 4){
			rc = adopt_tree(a, b, depth + 1, err);
		}else if(S_ISREG(st.st_mode) && rename(a, b) != 0){
			rc = cm_err_set(err, CM_ERR_IO, "cannot move %s into the store: %s", a, strerror(errno));
		}
	}
	closedir(dh);
	return rc;
}

enum cm_rc cm_store_adopt_files(const struct cm_store *store, const char *name, const char *base, struct cm_err *err)
{
	char from[PATH_MAX], to[PATH_MAX];

	if(!cm_tenant_name_valid(name)
			|| cm_fs_path(from, sizeof(from), err, "%s/tenants/%s", base, name) != CM_OK
			|| cm_fs_path(to, sizeof(to), err, "%s/tenants/%s", store->dir, name) != CM_OK){
		return cm_err_set(err, CM_ERR_INVAL, "invalid tenant name or path");
	}
	return adopt_tree(from, to, 0, err);
}

const char *cm_store_dir(const struct cm_store *store)
{
	return store->dir;
}
