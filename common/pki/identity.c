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

/* name ("k:<type>:<id>") as a client id under org into out; false when it
 * is not a device's name. */
static bool name_clientid(const char *name, size_t len, const char *org, char out[CM_IDENT_CLIENTID_MAX + 1])
{
	char buf[CM_IDENT_CLIENTID_MAX + 1];
	struct cm_identity id;
	int n;

	if(len < 2 || len > 2 * CM_IDENT_PART_MAX + 3 || memchr(name, '\0', len)){
		return false;
	}
	n = snprintf(buf, sizeof(buf), "%c:%s:%.*s", name[0], org, (int)(len - 2), name + 2);
	if(n < 0 || (size_t)n >= sizeof(buf) || name[1] != ':' || cm_identity_parse(buf, &id, NULL) != CM_OK){
		return false;
	}
	memcpy(out, buf, (size_t)n + 1);
	return true;
}

size_t cm_identity_cert_clientids(X509 *cert, const char *org, char out[][CM_IDENT_CLIENTID_MAX + 1], bool *more)
{
	GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	char cn[256];
	size_t n = 0;

	*more = false;
	cm_pki_subject_cn(cert, cn, sizeof(cn));
	if(name_clientid(cn, strlen(cn), org, out[n])){
		n++;
	}
	for(int i = 0; names && i < sk_GENERAL_NAME_num(names); i++){
		const GENERAL_NAME *gen = sk_GENERAL_NAME_value(names, i);
		const ASN1_IA5STRING *s;

		if(gen->type != GEN_EMAIL){
			continue;
		}
		s = gen->d.rfc822Name;
		if(n == CM_IDENT_CERT_MAX){
			*more = true;
			break;
		}
		if(name_clientid((const char *)ASN1_STRING_get0_data(s), (size_t)ASN1_STRING_length(s), org, out[n])
				&& (n == 0 || strcmp(out[n], out[0]))){
			n++;
		}
	}
	GENERAL_NAMES_free(names);
	return n;
}
