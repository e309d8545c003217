/* A slot's entries in memory. */
#include <stdlib.h>
#include <string.h>

#include "slot.h"

static const char *const slot_names[CM_SLOT_COUNT] = {"mqtt", "websockets", "bridge"};

const char *cm_slot_name(enum cm_slot_id slot)
{
	return (slot >= 0 && slot < CM_SLOT_COUNT) ? slot_names[slot] : "?";
}

int cm_slot_parse(const char *name)
{
	int i;

	for(i = 0; name && i < CM_SLOT_COUNT; i++){
		if(!strcmp(name, slot_names[i])){
			return i;
		}
	}
	return -1;
}

void cm_server_cert_free(struct cm_server_cert **pcert)
{
	struct cm_server_cert *cert;

	if(pcert == NULL || *pcert == NULL){
		return;
	}
	cert = *pcert;
	free(cert->description);
	X509_free(cert->leaf);
	sk_X509_pop_free(cert->extra, X509_free);
	EVP_PKEY_free(cert->key);
	free(cert);
	*pcert = NULL;
}

void cm_csr_free(struct cm_csr **pcsr)
{
	if(pcsr && *pcsr){
		X509_REQ_free((*pcsr)->req);
		EVP_PKEY_free((*pcsr)->key);
		free(*pcsr);
		*pcsr = NULL;
	}
}

enum cm_rc cm_server_cert_new(X509 *leaf, STACK_OF(X509) *extra, EVP_PKEY *key, const char *description, bool builtin,
		struct cm_server_cert **out, struct cm_err *err)
{
	struct cm_server_cert *c = calloc(1, sizeof(*c));

	*out = NULL;
	if(c == NULL || (c->description = strdup(description ? description : "")) == NULL
			|| (c->extra = extra ? X509_chain_up_ref(extra) : sk_X509_new_null()) == NULL){
		if(c){
			free(c->description);
			free(c);
		}
		return cm_err_set(err, CM_ERR_NOMEM, "out of memory");
	}
	if(cm_pki_cert_id(leaf, c->id, err) != CM_OK){
		cm_server_cert_free(&c);
		return CM_ERR_CRYPTO;
	}
	X509_up_ref(leaf);
	c->leaf = leaf;
	EVP_PKEY_up_ref(key);
	c->key = key;
	c->builtin = builtin;
	c->added = time(NULL);
	*out = c;
	return CM_OK;
}
