/* Private keys (PEM or base64 DER, encrypted or not) and base64 PKCS#12
 * bundles, with and without a passphrase; CSRs in PEM. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "pki.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), *b64;
	EVP_PKEY *key = NULL;
	STACK_OF(X509) *certs = NULL;
	X509_REQ *req = NULL;

	if(text == NULL || size > 1 << 20){
		free(text);
		return 0;
	}
	memcpy(text, data, size);
	text[size] = '\0';
	if(cm_pki_parse_key_any(text, size, NULL, &key, NULL) == CM_OK){
		EVP_PKEY_free(key);
	}
	key = NULL;
	if(cm_pki_parse_key_any(text, size, "fuzz", &key, NULL) == CM_OK){
		EVP_PKEY_free(key);
	}
	if(cm_pki_parse_csr_pem(text, size, &req, NULL) == CM_OK){
		char id[CM_ID_LEN + 1];
		(void)cm_pki_csr_id(req, id, NULL);
		X509_REQ_free(req);
	}
	/* The raw bytes as a PKCS#12 bundle. */
	b64 = malloc(size / 3 * 4 + 8);
	if(b64){
		EVP_EncodeBlock((unsigned char *)b64, data, (int)size);
		key = NULL;
		if(cm_pki_parse_pkcs12(b64, "fuzz", &key, &certs, NULL) == CM_OK){
			EVP_PKEY_free(key);
			sk_X509_pop_free(certs, X509_free);
		}
		free(b64);
	}
	free(text);
	return 0;
}
