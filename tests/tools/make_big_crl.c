/* make_big_crl CA.pem CA.key COUNT OUT.der [SERIAL_HEX [NEXT_UPDATE_SECONDS]]
 *
 * Writes a DER CRL issued by CA revoking COUNT serials (1000...), plus
 * SERIAL_HEX when given: test material for CRLs of a million entries,
 * which `openssl ca` takes hours to make. */
#include <stdio.h>
#include <stdlib.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

int main(int argc, char **argv)
{
	X509 *ca;
	EVP_PKEY *key;
	X509_CRL *crl;
	ASN1_TIME *t;
	FILE *f;
	long count, i, next = 30L * 86400;
	unsigned char *der = NULL;
	int len;

	if(argc < 5){
		fprintf(stderr, "usage: make_big_crl CA.pem CA.key COUNT OUT.der [SERIAL_HEX [NEXT_UPDATE_SECONDS]]\n");
		return 2;
	}
	f = fopen(argv[1], "r");
	ca = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	if(f){
		fclose(f);
	}
	f = fopen(argv[2], "r");
	key = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
	if(f){
		fclose(f);
	}
	count = strtol(argv[3], NULL, 10);
	if(argc > 6){
		next = strtol(argv[6], NULL, 10);
	}
	if(ca == NULL || key == NULL || count < 0){
		fprintf(stderr, "make_big_crl: cannot read the CA or its key\n");
		return 1;
	}
	crl = X509_CRL_new();
	t = ASN1_TIME_new();
	X509_CRL_set_version(crl, 1);
	X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca));
	/* Now: newer than the test PKI's CRLs of the same CA, which it
	 * replaces (certmgr refuses to roll back to an older CRL). */
	X509_gmtime_adj(t, 0);
	X509_CRL_set1_lastUpdate(crl, t);
	X509_gmtime_adj(t, next);
	X509_CRL_set1_nextUpdate(crl, t);
	for(i = 0; i <= count; i++){
		X509_REVOKED *r;
		ASN1_INTEGER *serial = NULL;
		BIGNUM *bn = NULL;

		if(i == count){
			if(argc < 6 || !BN_hex2bn(&bn, argv[5])){
				break;
			}
			serial = BN_to_ASN1_INTEGER(bn, NULL);
			BN_free(bn);
		}else{
			serial = ASN1_INTEGER_new();
			ASN1_INTEGER_set_int64(serial, 1000 + i);
		}
		r = X509_REVOKED_new();
		X509_REVOKED_set_serialNumber(r, serial);
		X509_gmtime_adj(t, -120);
		X509_REVOKED_set_revocationDate(r, t);
		X509_CRL_add0_revoked(crl, r);
		ASN1_INTEGER_free(serial);
	}
	X509_CRL_sort(crl);
	if(!X509_CRL_sign(crl, key, EVP_sha256()) || (len = i2d_X509_CRL(crl, &der)) <= 0){
		fprintf(stderr, "make_big_crl: cannot sign\n");
		return 1;
	}
	f = fopen(argv[4], "wb");
	if(f == NULL || fwrite(der, 1, (size_t)len, f) != (size_t)len){
		fprintf(stderr, "make_big_crl: cannot write %s\n", argv[4]);
		return 1;
	}
	fclose(f);
	OPENSSL_free(der);
	X509_CRL_free(crl);
	ASN1_TIME_free(t);
	X509_free(ca);
	EVP_PKEY_free(key);
	return 0;
}
