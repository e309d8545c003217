/* CRLs from HTTP servers and uploads: parsed, verified against a CA,
 * indexed and looked up. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crl.h"
#include "pki.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static X509 *ca;
static EVP_PKEY *ca_key;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cm_crl *crl = NULL;
	STACK_OF(X509) *cands;

	if(ca == NULL && cm_pki_make_ca("Fuzz CA", 30, &ca, &ca_key, NULL) != CM_OK){
		return 0;
	}
	/* now 0 skips the time checks, as for a stored CRL */
	if(cm_crl_load(data, size, 1 << 24, ca, 0, &crl, NULL) == CM_OK){
		ASN1_INTEGER *s = ASN1_INTEGER_new();
		ASN1_INTEGER_set(s, 1000);
		(void)cm_crl_is_revoked(crl, s);
		ASN1_INTEGER_free(s);
		cm_crl_free(&crl);
	}
	cands = sk_X509_new_null();
	if(cands){
		sk_X509_push(cands, ca);
		(void)cm_crl_find_issuer(data, size, cands);
		sk_X509_free(cands);
	}
	return 0;
}
