/* Atomic writes: the old content or the new one, never a mix. */
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
#include "testutil.h"

static void test_write_creates_file_with_exact_mode(void **state)
{
	char *dir = tu_mkdtemp();
	char path[512];
	struct stat st;
	char *back = NULL;
	size_t len = 0;
	struct cm_err err;
	mode_t old = umask(0077);

	(void)state;
	snprintf(path, sizeof(path), "%s/f", dir);
	assert_int_equal(cm_fs_write_atomic(path, "hello", 5, 0644, &err), CM_OK);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644); /* the umask did not narrow it */
	assert_int_equal(cm_fs_write_atomic(path, "key!", 4, 0600, &err), CM_OK);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(cm_fs_read_file(path, 100, &back, &len, &err), CM_OK);
	assert_int_equal(len, 4);
	assert_string_equal(back, "key!");
	free(back);
	umask(old);
	tu_rmtree(dir);
	free(dir);
}

static void test_write_leaves_no_temporary_file(void **state)
{
	char *dir = tu_mkdtemp();
	char path[512], digest1[65], digest2[65];
	struct cm_err err;

	(void)state;
	snprintf(path, sizeof(path), "%s/f", dir);
	assert_int_equal(cm_fs_write_atomic(path, "a", 1, 0600, &err), CM_OK);
	tu_tree_digest(dir, digest1);
	assert_int_equal(cm_fs_write_atomic(path, "b", 1, 0600, &err), CM_OK);
	assert_int_equal(cm_fs_write_atomic(path, "a", 1, 0600, &err), CM_OK);
	tu_tree_digest(dir, digest2);
	assert_string_equal(digest1, digest2);
	tu_rmtree(dir);
	free(dir);
}

static void test_write_into_missing_directory_fails_clearly(void **state)
{
	char *dir = tu_mkdtemp();
	char path[512];
	struct cm_err err;

	(void)state;
	snprintf(path, sizeof(path), "%s/nope/f", dir);
	assert_int_equal(cm_fs_write_atomic(path, "a", 1, 0600, &err), CM_ERR_IO);
	assert_non_null(strstr(err.msg, "cannot create"));
	assert_non_null(strstr(err.msg, "nope/f"));
	tu_rmtree(dir);
	free(dir);
}

static void test_read_refuses_large_and_missing_files(void **state)
{
	char *dir = tu_mkdtemp();
	char path[512];
	char *buf = NULL;
	struct cm_err err;

	(void)state;
	snprintf(path, sizeof(path), "%s/f", dir);
	assert_int_equal(cm_fs_read_file(path, 10, &buf, NULL, &err), CM_ERR_IO);
	assert_int_equal(errno, ENOENT);
	assert_null(buf);
	tu_write_file(path, "0123456789abc");
	assert_int_equal(cm_fs_read_file(path, 10, &buf, NULL, &err), CM_ERR_INVAL);
	assert_non_null(strstr(err.msg, "larger than"));
	assert_null(buf);
	assert_int_equal(cm_fs_read_file(dir, 10, &buf, NULL, &err), CM_ERR_IO);
	assert_non_null(strstr(err.msg, "not a regular file"));
	tu_rmtree(dir);
	free(dir);
}

static void test_path_refuses_truncation(void **state)
{
	char buf[8];
	struct cm_err err;

	(void)state;
	assert_int_equal(cm_fs_path(buf, sizeof(buf), &err, "%s", "1234567"), CM_OK);
	assert_int_equal(cm_fs_path(buf, sizeof(buf), &err, "%s", "12345678"), CM_ERR_INVAL);
}

/* A child rewrites a large file over and over with alternating content and
 * is killed at a random moment: the file must then hold one whole version. */
static void test_killed_writer_leaves_old_or_new_state(void **state)
{
	enum { SIZE = 4 * 1024 * 1024, ROUNDS = 25 };
	char *dir = tu_mkdtemp();
	char path[512];
	char *a = malloc(SIZE), *b = malloc(SIZE);
	struct cm_err err;
	int round;
	int saw_b = 0;

	(void)state;
	memset(a, 'a', SIZE);
	memset(b, 'b', SIZE);
	snprintf(path, sizeof(path), "%s/big", dir);
	assert_int_equal(cm_fs_write_atomic(path, a, SIZE, 0600, &err), CM_OK);
	srand((unsigned)time(NULL));
	for(round = 0; round < ROUNDS; round++){
		char *back = NULL;
		size_t len = 0;
		size_t i;
		pid_t pid = fork();
		assert_true(pid >= 0);
		if(pid == 0){
			for(i = 0;; i++){
				if(cm_fs_write_atomic(path, (i & 1) ? a : b, SIZE, 0600, NULL) != CM_OK){
					_exit(1);
				}
			}
		}
		usleep((useconds_t)(1000 + rand() % 150000));
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		assert_int_equal(cm_fs_read_file(path, SIZE * 2, &back, &len, &err), CM_OK);
		assert_int_equal(len, SIZE);
		for(i = 1; i < len; i++){
			if(back[i] != back[0]){
				fail_msg("round %d: mixed content at byte %zu", round, i);
			}
		}
		assert_true(back[0] == 'a' || back[0] == 'b');
		saw_b += back[0] == 'b';
		free(back);
	}
	/* Proof that the child really was writing when it died. */
	assert_true(saw_b > 0);
	free(a);
	free(b);
	tu_rmtree(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_write_creates_file_with_exact_mode),
		cmocka_unit_test(test_write_leaves_no_temporary_file),
		cmocka_unit_test(test_write_into_missing_directory_fails_clearly),
		cmocka_unit_test(test_read_refuses_large_and_missing_files),
		cmocka_unit_test(test_path_refuses_truncation),
		cmocka_unit_test(test_killed_writer_leaves_old_or_new_state),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
