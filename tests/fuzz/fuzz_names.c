/* What every handshake and CONNECT brings: the SNI extension, the client
 * id, topics against patterns, host names. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "identity.h"
#include "sni.h"
#include "store.h"
#include "topic.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char sni[254], norm[254], filled[2048];
	char *text = malloc(size + 1), *sep;
	struct cm_identity id;

	(void)cm_sni_parse(data, size, sni);
	if(text == NULL){
		return 0;
	}
	memcpy(text, data, size);
	text[size] = '\0';
	(void)cm_hostname_normalize(text, norm, NULL);
	(void)cm_tenant_name_valid(text);
	if(cm_identity_parse(text, &id, NULL) == CM_OK){
		(void)cm_topic_fill("{org}/{type}/{id}/#", &id, filled, sizeof(filled));
	}
	/* "pattern\ntopic" */
	sep = strchr(text, '\n');
	if(sep){
		*sep = '\0';
		if(cm_topic_pattern_valid(text, NULL) == CM_OK){
			(void)cm_topic_matches(text, sep + 1);
			(void)cm_topic_sub_within(text, sep + 1);
		}
	}
	free(text);
	return 0;
}
