/* certmem DIR COUNT: the heap a parsed certificate takes in OpenSSL (its
 * decoded fields and public key), averaged over DIR/ca-0.pem ...
 * ca-<COUNT-1>.pem as bench/mkpki writes them. bench/run-bench subtracts
 * it from the broker's memory per tenant. glibc only (mallinfo2). */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>

#include <openssl/crypto.h>
#include <openssl/pem.h>

static X509 *load(const char *dir, int i)
{
	char path[1024];
	FILE *f;
	X509 *x;

	snprintf(path, sizeof(path), "%s/ca-%d.pem", dir, i);
	if((f = fopen(path, "r")) == NULL || (x = PEM_read_X509(f, NULL, NULL, NULL)) == NULL){
		fprintf(stderr, "certmem: cannot read %s\n", path);
		exit(1);
	}
	fclose(f);
	return x;
}

int main(int argc, char **argv)
{
	struct mallinfo2 before, after;
	X509 **certs;
	int n, i;

	if(argc != 3 || (n = atoi(argv[2])) < 1){
		fprintf(stderr, "usage: certmem DIR COUNT\n");
		return 2;
	}
	certs = calloc((size_t)n, sizeof(*certs));
	if(certs == NULL){
		return 1;
	}
	X509_free(load(argv[1], 0)); /* OpenSSL's one-time set-up, not counted */
	before = mallinfo2();
	for(i = 0; i < n; i++){
		certs[i] = load(argv[1], i);
	}
	after = mallinfo2();
	printf("%zu\n", (after.uordblks - before.uordblks) / (size_t)n);
	for(i = 0; i < n; i++){
		X509_free(certs[i]);
	}
	free(certs);
	return 0;
}
