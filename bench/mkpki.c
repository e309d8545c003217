/* mkpki OUTDIR CAS DEVICES_PER_CA: benchmark material, fast (the openssl
 * command line takes minutes for ten thousand CAs). Writes, all EC P-256:
 *
 *     ca-<i>.pem, ca-<i>.key            root CA of tenant t<i>
 *     dev-<i>-<j>.pem, dev-<i>-<j>.key  CN d:sensor:s<j>, by ca-<i>, serial 2^40 + j
 *     manifest                          loadgen's device list: client id
 *                                       d:t<i>:sensor:s<j>, SNI t<i>.bench
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

static EVP_PKEY *ec_key(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	if(k == NULL){
		abort();
	}
	return k;
}

static void add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX v3;
	X509_EXTENSION *ext;

	X509V3_set_ctx(&v3, issuer, cert, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	if(ext == NULL || !X509_add_ext(cert, ext, -1)){
		abort();
	}
	X509_EXTENSION_free(ext);
}

static X509 *make_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, int64_t serial, int is_ca)
{
	X509 *c = X509_new();
	X509_NAME *name = X509_NAME_new();

	X509_set_version(c, 2);
	ASN1_INTEGER_set_int64(X509_get_serialNumber(c), serial);
	X509_gmtime_adj(X509_getm_notBefore(c), -3600);
	X509_gmtime_adj(X509_getm_notAfter(c), 365L * 86400);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0);
	X509_set_subject_name(c, name);
	X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer) : name);
	X509_NAME_free(name);
	X509_set_pubkey(c, key);
	if(is_ca){
		add_ext(c, c, NID_basic_constraints, "critical,CA:TRUE");
		add_ext(c, c, NID_key_usage, "critical,keyCertSign,cRLSign");
		add_ext(c, c, NID_subject_key_identifier, "hash");
	}else{
		add_ext(c, issuer, NID_basic_constraints, "critical,CA:FALSE");
		add_ext(c, issuer, NID_key_usage, "critical,digitalSignature");
		add_ext(c, issuer, NID_ext_key_usage, "clientAuth");
	}
	if(!X509_sign(c, issuer_key ? issuer_key : key, EVP_sha256())){
		abort();
	}
	return c;
}

static void write_pair(const char *dir, const char *base, X509 *c, EVP_PKEY *k)
{
	char path[1024];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s.pem", dir, base);
	if((f = fopen(path, "w")) == NULL || !PEM_write_X509(f, c)){
		perror(path);
		exit(1);
	}
	fclose(f);
	snprintf(path, sizeof(path), "%s/%s.key", dir, base);
	if((f = fopen(path, "w")) == NULL || !PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL)){
		perror(path);
		exit(1);
	}
	fclose(f);
}

int main(int argc, char **argv)
{
	char path[1024], base[64], cn[64];
	long cas, devs, i, j;
	FILE *manifest;

	if(argc != 4 || (cas = atol(argv[2])) < 1 || (devs = atol(argv[3])) < 1){
		fprintf(stderr, "usage: mkpki OUTDIR CAS DEVICES_PER_CA\n");
		return 2;
	}
	snprintf(path, sizeof(path), "%s/manifest", argv[1]);
	manifest = fopen(path, "w");
	if(manifest == NULL){
		perror(path);
		return 1;
	}
	for(i = 0; i < cas; i++){
		EVP_PKEY *cakey = ec_key();
		X509 *ca;

		snprintf(cn, sizeof(cn), "Bench CA %ld", i);
		ca = make_cert(cn, cakey, NULL, NULL, 1, 1);
		snprintf(base, sizeof(base), "ca-%ld", i);
		write_pair(argv[1], base, ca, cakey);
		for(j = 0; j < devs; j++){
			EVP_PKEY *k = ec_key();
			X509 *d;

			snprintf(cn, sizeof(cn), "d:sensor:s%ld", j);
			/* Above the serials make_big_crl revokes (1000 on). */
			d = make_cert(cn, k, ca, cakey, ((int64_t)1 << 40) + j, 0);
			snprintf(base, sizeof(base), "dev-%ld-%ld", i, j);
			write_pair(argv[1], base, d, k);
			fprintf(manifest, "%s/%s.pem %s/%s.key d:t%ld:sensor:s%ld t%ld.bench\n", argv[1], base, argv[1], base, i, j, i);
			X509_free(d);
			EVP_PKEY_free(k);
		}
		X509_free(ca);
		EVP_PKEY_free(cakey);
	}
	fclose(manifest);
	return 0;
}
