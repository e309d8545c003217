/* Certificates as operators send them: PEM bundles or base64 DER. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "render.h"
#include "pki.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	STACK_OF(X509) *certs = NULL;
	int i;

	if(text == NULL){
		return 0;
	}
	memcpy(text, data, size);
	text[size] = '\0';
	if(cm_pki_parse_certs(text, size, &certs, NULL) == CM_OK){
		for(i = 0; i < sk_X509_num(certs); i++){
			X509 *c = sk_X509_value(certs, i);
			char id[CM_ID_LEN + 1];
			cJSON_Delete(cm_render_cert_details(c));
			(void)cm_pki_check_ca(c, 1800000000, NULL);
			(void)cm_pki_cert_id(c, id, NULL);
		}
		sk_X509_pop_free(certs, X509_free);
	}
	free(text);
	return 0;
}
