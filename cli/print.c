/* certmgr_ctrl: the broker's answer for a person (tables for lists, the
 * details of a tenant or a CA), as JSON, or written to a file (-o). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <mosquitto.h>

#include "fsutil.h"
#include "print.h"

static const char *str(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
	return cJSON_IsString(v) ? v->valuestring : "";
}

static void print_list(const cJSON *o, const char *name)
{
	const cJSON *arr = cJSON_GetObjectItemCaseSensitive(o, name), *v;
	bool first = true;

	cJSON_ArrayForEach(v, arr){
		printf("%s%s", first ? "" : ",", cJSON_IsString(v) ? v->valuestring : "?");
		first = false;
	}
	if(first){
		printf("-");
	}
}

static void print_tenant(const cJSON *t)
{
	const cJSON *cas = cJSON_GetObjectItemCaseSensitive(t, "cas"), *ca;

	printf("Tenant:      %s\n", str(t, "tenant"));
	printf("Org id:      %s\n", str(t, "orgId"));
	printf("Policy:      %s\n", str(t, "policy"));
	printf("Host names:  ");
	print_list(t, "hostnames");
	printf("\nPublish:     ");
	print_list(t, "publishPatterns");
	printf("\nSubscribe:   ");
	print_list(t, "subscribePatterns");
	printf("\nCAs:\n");
	cJSON_ArrayForEach(ca, cas){
		printf("  %s  %-8s %s  %s\n", str(ca, "id"), cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ca, "active")) ? "active" : "inactive",
				str(ca, "commonName"), str(ca, "description"));
	}
}

/* -o FILE: the PEM the command returns, whichever it is. */
static int write_outfile(const char *path, const char *command, const cJSON *data)
{
	const char *body = !strcmp(command, "getCA") || !strcmp(command, "createIssuingCA") || !strcmp(command, "importIssuingCA") ? str(cJSON_GetObjectItemCaseSensitive(data, "ca"), "certificate")
		: !strcmp(command, "exportTrustList") ? str(data, "trustList")
		: !strcmp(command, "getRejected") ? str(cJSON_GetObjectItemCaseSensitive(data, "rejected"), "chain")
		: !strcmp(command, "getServerCertificate") ? str(cJSON_GetObjectItemCaseSensitive(data, "certificate"), "certificate")
		: !strcmp(command, "getCSR") || !strcmp(command, "createCSR") ? str(cJSON_GetObjectItemCaseSensitive(data, "csr"), "csr") : NULL;
	struct cm_err e;

	if(body == NULL){
		fprintf(stderr, "certmgr_ctrl: -o is for getCA, exportTrustList, getRejected and getServerCertificate\n");
		return MOSQ_ERR_INVAL;
	}
	if(cm_fs_write_atomic(path, body, strlen(body), 0644, &e) != CM_OK){
		fprintf(stderr, "certmgr_ctrl: %s\n", e.msg);
		return MOSQ_ERR_INVAL;
	}
	return MOSQ_ERR_SUCCESS;
}

static double num(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
	return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static bool flag(const cJSON *o, const char *name)
{
	return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, name));
}

static void print_tenants(const cJSON *data)
{
	const cJSON *v;

	printf("%-24s %-16s %-18s %-4s %s\n", "TENANT", "ORG", "POLICY", "CAS", "HOSTNAMES");
	cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(data, "tenants")){
		printf("%-24s %-16s %-18s %-4d ", str(v, "tenant"), str(v, "orgId"), str(v, "policy"), (int)num(v, "caCount"));
		print_list(v, "hostnames");
		printf("\n");
	}
}

static void print_cas(const cJSON *data)
{
	const cJSON *v;

	printf("%-64s %-8s %-20s %s\n", "ID", "STATE", "NOT AFTER", "COMMON NAME");
	cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(data, "cas")){
		printf("%-64s %-8s %-20s %s\n", str(v, "id"), flag(v, "active") ? "active" : "inactive", str(v, "notAfter"), str(v, "commonName"));
	}
	cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(data, "pinned")){
		printf("%-64s %-8s %-20s %s\n", str(v, "id"), "pinned", str(v, "notAfter"), str(v, "commonName"));
	}
}

static void print_rejected(const cJSON *data)
{
	const cJSON *v;

	printf("%-64s %-6s %-20s %-12s %s\n", "ID", "COUNT", "LAST SEEN", "TENANT", "REASON");
	cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(data, "rejected")){
		/* The id is the chain's: the same leaf under another chain is
		 * another entry, so the chain's length is shown too. */
		printf("%-64s %-6.0f %-20s %-12s %s (CN '%s', SNI '%s', %.0f certificates)\n", str(v, "id"), num(v, "count"), str(v, "lastSeen"),
				str(v, "tenant"), str(v, "reason"), str(v, "commonName"), str(v, "sni"), num(v, "chainLength"));
	}
}

static void print_server_certificates(const cJSON *data)
{
	const cJSON *v;

	printf("%-64s %-7s %-20s %-5s %s\n", "ID", "DEFAULT", "NOT AFTER", "CHAIN", "COMMON NAME (DESCRIPTION)");
	cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(data, "certificates")){
		printf("%-64s %-7s %-20s %-5.0f %s (%s)\n", str(v, "id"), flag(v, "default") ? "yes" : "", str(v, "notAfter"),
				num(v, "chainLength"), str(v, "commonName"), str(v, "description"));
	}
}

static void print_csrs(const cJSON *data)
{
	const cJSON *v;

	printf("%-64s %-8s %-20s %s\n", "ID", "KEY", "CREATED", "SUBJECT");
	cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(data, "csrs")){
		printf("%-64s %-8s %-20s %s\n", str(v, "id"), str(v, "keyType"), str(v, "created"), str(v, "subject"));
	}
}

static const cJSON *obj(const cJSON *o, const char *name)
{
	return cJSON_GetObjectItemCaseSensitive(o, name);
}

/* The nodes that answered a fleet-wide command, and those that did not. */
static void print_nodes(const cJSON *data)
{
	const cJSON *v;
	bool first = true;

	printf("Nodes:");
	cJSON_ArrayForEach(v, obj(data, "nodes")){
		printf("%s %s%s", first ? "" : ",", str(v, "node"), flag(v, "answered") ? "" : " (no answer)");
		first = false;
	}
	printf("\n");
}

static void print_devices(const cJSON *data)
{
	const cJSON *v;

	printf("%-32s %-9s %-20s %-20s %-16s %-6s %s\n", "DEVICE", "CONNECTED", "LAST SEEN", "NOT AFTER", "KEY", "CERTS", "FINGERPRINT");
	cJSON_ArrayForEach(v, obj(data, "devices")){
		const cJSON *c = obj(v, "certificate");
		char key[32];
		snprintf(key, sizeof(key), "%s-%.0f", str(c, "keyType"), num(c, "keyBits"));
		printf("%-32s %-9s %-20s %-20s %-16s %-6.0f %s%s\n", str(v, "id"), flag(v, "connected") ? str(v, "node") : "no",
				str(v, "lastSeen"), str(c, "notAfter"), key, num(v, "certificates"), str(c, "fingerprint"),
				flag(v, "blocked") ? "  BLOCKED" : "");
	}
	printf("%.0f device(s) from offset %.0f; ", num(data, "total"), num(data, "offset"));
	print_nodes(data);
}

static void print_blocked(const cJSON *data)
{
	const cJSON *v;

	printf("%-12s %-64s %-20s %-16s %s\n", "KIND", "DEVICE OR CERTIFICATE", "BLOCKED AT", "BY", "REASON");
	cJSON_ArrayForEach(v, obj(data, "devices")){
		printf("%-12s %-64s %-20s %-16s %s\n", "device", str(v, "id"), str(v, "blockedAt"), str(v, "by"), str(v, "reason"));
	}
	cJSON_ArrayForEach(v, obj(data, "certificates")){
		printf("%-12s %-64s %-20s %-16s %s\n", "certificate", str(v, "fingerprint"), str(v, "blockedAt"), str(v, "by"), str(v, "reason"));
	}
}

static void print_findings(const cJSON *data)
{
	const cJSON *v;

	printf("%-22s %-16s %s\n", "FINDING", "TENANT", "DEVICES OR CAS");
	cJSON_ArrayForEach(v, obj(data, "findings")){
		printf("%-22s %-16s ", str(v, "finding"), str(v, "tenant"));
		print_list(v, obj(v, "devices") ? "devices" : "cas");
		printf("\n");
	}
	printf("Counts:");
	cJSON_ArrayForEach(v, obj(data, "counts")){
		printf(" %s %.0f", v->string, cJSON_IsNumber(v) ? v->valuedouble : 0);
	}
	printf("%s\n", flag(data, "truncated") ? " (the list shows the first 1,000 of each)" : "");
	print_nodes(data);
}

static void print_device(const cJSON *data)
{
	const cJSON *d = obj(data, "device"), *c = obj(d, "certificate"), *r = obj(d, "lastRefusal");

	printf("Device:      %s%s\n", str(d, "id"), flag(d, "blocked") ? " (BLOCKED)" : "");
	printf("Connected:   %s\n", flag(d, "connected") ? str(d, "node") : "no");
	printf("First seen:  %s\n", str(d, "firstSeen"));
	printf("Last seen:   %s\n", str(d, "lastSeen"));
	printf("Certificate: %s (serial %s, issuer %s)\n", str(c, "fingerprint"), str(c, "serial"), cJSON_IsString(obj(c, "issuer")) ? str(c, "issuer") : "unknown");
	printf("             %s-%.0f, %s, until %s\n", str(c, "keyType"), num(c, "keyBits"), str(c, "signatureAlgorithm"), str(c, "notAfter"));
	printf("Certificates seen: %.0f\n", num(d, "certificates"));
	printf("Last refusal: %s%s%s\n", cJSON_IsObject(r) ? str(r, "reason") : "none", cJSON_IsObject(r) ? " at " : "", cJSON_IsObject(r) ? str(r, "time") : "");
	print_nodes(data);
}

/* getCA's answer, and addCA's, modifyCA's, setCAState's. */
static void print_ca(const cJSON *v, bool with_pem)
{
	printf("Id:          %s\n", str(v, "id"));
	printf("Subject:     %s\n", str(v, "subject"));
	printf("Issuer:      %s\n", str(v, "issuer"));
	printf("Serial:      %s\n", str(v, "serial"));
	printf("Valid:       %s to %s\n", str(v, "notBefore"), str(v, "notAfter"));
	printf("Key:         %s\n", str(v, "keyType"));
	printf("SHA-1:       %s\n", str(v, "sha1"));
	printf("State:       %s\n", flag(v, "active") ? "active" : "inactive");
	printf("Description: %s\n", str(v, "description"));
	if(with_pem){
		printf("%s\n", str(v, "certificate"));
	}
}

/* The lists as tables; false for a command that answers no list. */
static bool print_table(const char *command, const cJSON *data)
{
	static const struct {
		const char *command;
		void (*print)(const cJSON *data);
	} tables[] = {
		{"listTenants", print_tenants},
		{"listCAs", print_cas},
		{"listRejected", print_rejected},
		{"listServerCertificates", print_server_certificates},
		{"listCSRs", print_csrs},
		{"listDevices", print_devices},
		{"getDevice", print_device},
		{"listBlocked", print_blocked},
		{"auditFleet", print_findings},
	};
	size_t i;

	for(i = 0; i < sizeof(tables) / sizeof(tables[0]); i++){
		if(!strcmp(command, tables[i].command)){
			tables[i].print(data);
			return true;
		}
	}
	return false;
}

static void print_json(const cJSON *v)
{
	char *text = cJSON_Print(v);

	printf("%s\n", text ? text : "");
	free(text);
}

int cm_print_answer(const char *outfile, bool json, const char *command, const cJSON *r)
{
	const cJSON *err = cJSON_GetObjectItemCaseSensitive(r, "error");
	const cJSON *data = cJSON_GetObjectItemCaseSensitive(r, "data");
	const cJSON *v;
	int rc;

	if(cJSON_IsString(err)){
		fprintf(stderr, "Error: %s\n", err->valuestring);
		return MOSQ_ERR_UNKNOWN;
	}
	if(outfile && (rc = write_outfile(outfile, command, data)) != MOSQ_ERR_SUCCESS){
		return rc;
	}
	if(json){
		print_json(r);
		return MOSQ_ERR_SUCCESS;
	}
	if(print_table(command, data)){
		return MOSQ_ERR_SUCCESS;
	}
	if(!strcmp(command, "exportTrustList") && !outfile){
		printf("%s", str(data, "trustList"));
	}else if(cJSON_GetObjectItemCaseSensitive(data, "tenant")){
		print_tenant(cJSON_GetObjectItemCaseSensitive(data, "tenant"));
	}else if((v = cJSON_GetObjectItemCaseSensitive(data, "ca")) != NULL){
		print_ca(v, !outfile && !strcmp(command, "getCA"));
	}else if(data){
		/* Everything else: the data as indented JSON is readable enough. */
		print_json(data);
	}else{
		printf("OK\n");
	}
	return MOSQ_ERR_SUCCESS;
}

