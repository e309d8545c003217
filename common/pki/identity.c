#include <string.h>

#include <openssl/x509v3.h>

#include "identity.h"
#include "pki.h"

bool cm_identity_part_valid(const char *s)
{
	size_t n = 0;

	if(s == NULL){
		return false;
	}
	for(; s[n]; n++){
		char c = s[n];
		if(!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
				|| c == '-' || c == '_' || c == '.')){
			return false;
		}
	}
	return n >= 1 && n <= CM_IDENT_PART_MAX;
}

/* Copies the text up to the next ':' (or the end when last) into out. */
static const char *take_part(const char *p, bool last, char out[CM_IDENT_PART_MAX + 1], bool *ok)
{
	const char *end = last ? p + strlen(p) : strchr(p, ':');

	*ok = false;
	if(end == NULL || (size_t)(end - p) > CM_IDENT_PART_MAX){
		return p;
	}
	memcpy(out, p, (size_t)(end - p));
	out[end - p] = '\0';
	*ok = cm_identity_part_valid(out);
	return last ? end : end + 1;
}

enum cm_rc cm_identity_parse(const char *clientid, struct cm_identity *out, struct cm_err *err)
{
	const char *p;
	bool ok;

	memset(out, 0, sizeof(*out));
	if(clientid == NULL || (clientid[0] != 'd' && clientid[0] != 'g') || clientid[1] != ':'){
		return cm_err_set(err, CM_ERR_INVAL, "client id must be d:<org>:<type>:<id> or g:<org>:<type>:<id>");
	}
	out->kind = clientid[0];
	p = take_part(clientid + 2, false, out->org, &ok);
	if(!ok){
		return cm_err_set(err, CM_ERR_INVAL, "client id has no valid org id");
	}
	p = take_part(p, false, out->type, &ok);
	if(!ok){
		return cm_err_set(err, CM_ERR_INVAL, "client id has no valid device type (letters, digits, '-', '_', '.')");
	}
	take_part(p, true, out->id, &ok);
	if(!ok){
		return cm_err_set(err, CM_ERR_INVAL, "client id has no valid device id (letters, digits, '-', '_', '.')");
	}
	return CM_OK;
}

static bool san_email_matches(X509 *cert, const char *expected)
{
	GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	bool found = false;
	int i;

	for(i = 0; names && !found && i < sk_GENERAL_NAME_num(names); i++){
		const GENERAL_NAME *gen = sk_GENERAL_NAME_value(names, i);
		if(gen->type == GEN_EMAIL){
			const ASN1_IA5STRING *s = gen->d.rfc822Name;
			size_t len = (size_t)ASN1_STRING_length(s);
			found = len == strlen(expected) && !memcmp(ASN1_STRING_get0_data(s), expected, len);
		}
	}
	GENERAL_NAMES_free(names);
	return found;
}

enum cm_rc cm_identity_check(const char *clientid, const char *org_id, X509 *cert, struct cm_identity *out, struct cm_err *err)
{
	char expected[3 * CM_IDENT_PART_MAX + 8];
	char cn[256];
	enum cm_rc rc;

	rc = cm_identity_parse(clientid, out, err);
	if(rc != CM_OK){
		return rc;
	}
	if(strcmp(out->org, org_id)){
		return cm_err_set(err, CM_ERR_INVAL, "client id names org '%s', the tenant's org is '%s'", out->org, org_id);
	}
	snprintf(expected, sizeof(expected), "%c:%s:%s", out->kind, out->type, out->id);
	cm_pki_subject_cn(cert, cn, sizeof(cn));
	if(!strcmp(cn, expected) || san_email_matches(cert, expected)){
		return CM_OK;
	}
	return cm_err_set(err, CM_ERR_INVAL, "certificate (CN '%s') does not identify %s as CN or SubjectAltName email", cn, expected);
}
