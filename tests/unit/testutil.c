#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "testutil.h"

char *tu_mkdtemp(void)
{
	const char *base = getenv("TMPDIR");
	char *path;

	if(base == NULL || base[0] == '\0'){
		base = "/tmp";
	}
	assert_true(asprintf(&path, "%s/certmgr-unit-XXXXXX", base) > 0);
	assert_non_null(mkdtemp(path));
	return path;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if(flag == FTW_DP){
		rmdir(path);
	}else{
		unlink(path);
	}
	return 0;
}

void tu_rmtree(const char *dir)
{
	nftw(dir, rm_one, 32, FTW_DEPTH | FTW_PHYS);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void digest_dir(EVP_MD_CTX *md, const char *root, const char *rel)
{
	char path[PATH_MAX];
	char **names = NULL;
	size_t count = 0, i;
	struct dirent *d;
	DIR *dir;

	snprintf(path, sizeof(path), "%s%s", root, rel);
	dir = opendir(path);
	assert_non_null(dir);
	while((d = readdir(dir)) != NULL){
		if(!strcmp(d->d_name, ".") || !strcmp(d->d_name, "..")){
			continue;
		}
		names = realloc(names, (count + 1) * sizeof(*names));
		names[count++] = strdup(d->d_name);
	}
	closedir(dir);
	if(count > 1){
		qsort(names, count, sizeof(*names), cmp_str);
	}
	for(i = 0; i < count; i++){
		char sub[PATH_MAX];
		struct stat st;

		snprintf(sub, sizeof(sub), "%s/%s", rel, names[i]);
		snprintf(path, sizeof(path), "%s%s", root, sub);
		assert_int_equal(lstat(path, &st), 0);
		EVP_DigestUpdate(md, sub, strlen(sub) + 1);
		EVP_DigestUpdate(md, &st.st_mode, sizeof(st.st_mode));
		if(S_ISDIR(st.st_mode)){
			digest_dir(md, root, sub);
		}else{
			char buf[4096];
			ssize_t n;
			int fd = open(path, O_RDONLY);
			assert_true(fd >= 0);
			while((n = read(fd, buf, sizeof(buf))) > 0){
				EVP_DigestUpdate(md, buf, (size_t)n);
			}
			close(fd);
		}
		free(names[i]);
	}
	free(names);
}

void tu_tree_digest(const char *dir, char out[65])
{
	unsigned char md[32];
	unsigned int len = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int i;

	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	digest_dir(ctx, dir, "");
	EVP_DigestFinal_ex(ctx, md, &len);
	EVP_MD_CTX_free(ctx);
	for(i = 0; i < 32; i++){
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	}
}

void tu_write_file(const char *path, const char *content)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(content, f);
	fclose(f);
}

static const char *copy_from, *copy_to;

static int copy_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	char dest[PATH_MAX];

	(void)ftw;
	snprintf(dest, sizeof(dest), "%s%s", copy_to, path + strlen(copy_from));
	if(flag == FTW_D){
		mkdir(dest, st->st_mode & 07777);
		chmod(dest, st->st_mode & 07777);
	}else if(flag == FTW_F){
		char buf[4096];
		ssize_t n;
		int in = open(path, O_RDONLY);
		int out = open(dest, O_WRONLY | O_CREAT | O_TRUNC, st->st_mode & 07777);
		assert_true(in >= 0 && out >= 0);
		while((n = read(in, buf, sizeof(buf))) > 0){
			assert_int_equal(write(out, buf, (size_t)n), n);
		}
		close(in);
		close(out);
	}
	return 0;
}

void tu_copytree(const char *from, const char *to)
{
	copy_from = from;
	copy_to = to;
	assert_int_equal(nftw(from, copy_one, 32, FTW_PHYS), 0);
}
