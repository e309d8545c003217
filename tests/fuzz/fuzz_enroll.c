/* The parsers of enrollment: the first byte picks one, the rest is its
 * input. 0: a tenant's "enrollment" record (tenant.json, what the store
 * reads back), then written again; 1: a device's CSR as PEM, 2: as DER,
 * through the checks a request passes (signature, key, identity). */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "enroll.h"
#include "pki.h"
#include "sign.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void record(const uint8_t *data, size_t size)
{
	cJSON *json = cJSON_ParseWithLength((const char *)data, size);
	struct cm_enroll *e = NULL, *copy;

	if(json && cm_enroll_from_json(json, NULL, &e, NULL) == CM_OK){
		cJSON *again = cm_enroll_to_json(e);
		copy = cm_enroll_clone(e);
		cJSON_Delete(again);
		cm_enroll_free(&copy);
		cm_enroll_free(&e);
	}
	cJSON_Delete(json);
}

static void csr(const uint8_t *data, size_t size, bool pem)
{
	static const struct cm_csr_rules rules = {true, true, true, 2048, true, false};
	char ident[CM_ENROLL_IDENT_MAX + 1], key_id[65];
	X509_REQ *req = NULL;
	const unsigned char *p = data;

	if(pem){
		char *text = malloc(size + 1);
		if(text == NULL){
			return;
		}
		memcpy(text, data, size);
		text[size] = '\0';
		if(cm_pki_parse_csr_pem(text, size, &req, NULL) != CM_OK){
			req = NULL;
		}
		free(text);
	}else if(size < LONG_MAX){
		req = d2i_X509_REQ(NULL, &p, (long)size);
	}
	if(req && cm_sign_check_csr(req, &rules, ident, NULL) == CM_OK){
		(void)cm_sign_key_id(X509_REQ_get0_pubkey(req), key_id, NULL);
	}
	X509_REQ_free(req);
	ERR_clear_error();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if(size < 1){
		return 0;
	}
	switch(data[0] % 3){
		case 0:
			record(data + 1, size - 1);
			break;
		default:
			csr(data + 1, size - 1, data[0] % 3 == 1);
			break;
	}
	return 0;
}
