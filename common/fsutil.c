#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"

enum cm_rc cm_fs_path(char *buf, size_t buflen, struct cm_err *err, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, buflen, fmt, ap);
	va_end(ap);
	if(n < 0 || (size_t)n >= buflen){
		return cm_err_set(err, CM_ERR_INVAL, "path too long");
	}
	return CM_OK;
}

enum cm_rc cm_fs_sync_parent(const char *path, struct cm_err *err)
{
	char dir[PATH_MAX];
	char *slash;
	int fd;

	if(strlen(path) >= sizeof(dir)){
		return cm_err_set(err, CM_ERR_INVAL, "path too long: %s", path);
	}
	memcpy(dir, path, strlen(path) + 1);
	slash = strrchr(dir, '/');
	if(slash == NULL){
		dir[0] = '.';
		dir[1] = '\0';
	}else if(slash == dir){
		dir[1] = '\0';
	}else{
		*slash = '\0';
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if(fd < 0){
		return cm_err_set(err, CM_ERR_IO, "cannot open directory %s: %s", dir, strerror(errno));
	}
	if(fsync(fd) != 0){
		int e = errno;
		close(fd);
		return cm_err_set(err, CM_ERR_IO, "cannot sync directory %s: %s", dir, strerror(e));
	}
	close(fd);
	return CM_OK;
}

static enum cm_rc write_all(int fd, const char *data, size_t len)
{
	while(len > 0){
		ssize_t n = write(fd, data, len);
		if(n < 0){
			if(errno == EINTR){
				continue;
			}
			return CM_ERR_IO;
		}
		data += n;
		len -= (size_t)n;
	}
	return CM_OK;
}

enum cm_rc cm_fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode, struct cm_err *err)
{
	char tmp[PATH_MAX];
	int fd;
	int e;

	if(cm_fs_path(tmp, sizeof(tmp), err, "%s.tmp.%ld", path, (long)getpid()) != CM_OK){
		return CM_ERR_INVAL;
	}
	/* A leftover from a process with our pid that was killed earlier. */
	(void)unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if(fd < 0){
		return cm_err_set(err, CM_ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
	}
	/* open() applies the umask; keys must be exactly 0600 whatever it is. */
	if(fchmod(fd, mode) != 0 || write_all(fd, data, len) != CM_OK || fsync(fd) != 0){
		e = errno;
		close(fd);
		unlink(tmp);
		return cm_err_set(err, CM_ERR_IO, "cannot write %s: %s", path, strerror(e));
	}
	if(close(fd) != 0){
		e = errno;
		unlink(tmp);
		return cm_err_set(err, CM_ERR_IO, "cannot write %s: %s", path, strerror(e));
	}
	if(rename(tmp, path) != 0){
		e = errno;
		unlink(tmp);
		return cm_err_set(err, CM_ERR_IO, "cannot replace %s: %s", path, strerror(e));
	}
	return cm_fs_sync_parent(path, err);
}

enum cm_rc cm_fs_read_file(const char *path, size_t maxlen, char **out, size_t *out_len, struct cm_err *err)
{
	struct stat st;
	char *buf = NULL;
	size_t got = 0;
	int fd;
	int e;

	*out = NULL;
	if(out_len){
		*out_len = 0;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if(fd < 0){
		e = errno;
		cm_err_set(err, CM_ERR_IO, "cannot open %s: %s", path, strerror(e));
		errno = e;
		return CM_ERR_IO;
	}
	if(fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)){
		close(fd);
		return cm_err_set(err, CM_ERR_IO, "%s is not a regular file", path);
	}
	if((unsigned long long)st.st_size > maxlen){
		close(fd);
		return cm_err_set(err, CM_ERR_INVAL, "%s is larger than %zu bytes", path, maxlen);
	}
	buf = malloc((size_t)st.st_size + 1);
	if(buf == NULL){
		close(fd);
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory reading %s", path);
	}
	while(got < (size_t)st.st_size){
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		if(n < 0 && errno == EINTR){
			continue;
		}
		if(n <= 0){
			e = errno;
			free(buf);
			close(fd);
			return cm_err_set(err, CM_ERR_IO, "cannot read %s: %s", path, n == 0 ? "file shrank while reading" : strerror(e));
		}
		got += (size_t)n;
	}
	close(fd);
	buf[got] = '\0';
	*out = buf;
	if(out_len){
		*out_len = got;
	}
	return CM_OK;
}

enum cm_rc cm_fs_mkdir(const char *dir, mode_t mode, struct cm_err *err)
{
	struct stat st;

	if(mkdir(dir, mode) == 0){
		if(chmod(dir, mode) != 0){
			return cm_err_set(err, CM_ERR_IO, "cannot set mode of %s: %s", dir, strerror(errno));
		}
		return cm_fs_sync_parent(dir, err);
	}
	if(errno == EEXIST && stat(dir, &st) == 0 && S_ISDIR(st.st_mode)){
		return CM_OK;
	}
	return cm_err_set(err, CM_ERR_IO, "cannot create directory %s: %s", dir, strerror(errno));
}

enum cm_rc cm_fs_remove(const char *path, struct cm_err *err)
{
	if(unlink(path) != 0){
		if(errno == ENOENT){
			return CM_OK;
		}
		return cm_err_set(err, CM_ERR_IO, "cannot remove %s: %s", path, strerror(errno));
	}
	return cm_fs_sync_parent(path, err);
}
