#include <stdio.h>
#include <string.h>

#include "topic.h"

static const char *const placeholders[] = {"{org}", "{type}", "{id}"};

/* A level ends at '/' or the end of the string. */
static size_t level_len(const char *s)
{
	const char *slash = strchr(s, '/');
	return slash ? (size_t)(slash - s) : strlen(s);
}

enum cm_rc cm_topic_pattern_valid(const char *p, struct cm_err *err)
{
	const char *level = p;

	if(p == NULL || p[0] == '\0' || strlen(p) > 256){
		return cm_err_set(err, CM_ERR_INVAL, "a topic pattern must hold 1 to 256 characters");
	}
	if(p[0] == '$'){
		return cm_err_set(err, CM_ERR_INVAL, "topic pattern '%s': patterns may not start with '$'", p);
	}
	for(;;){
		size_t n = level_len(level);
		size_t i;
		bool is_placeholder = false;

		for(i = 0; i < 3; i++){
			if(n == strlen(placeholders[i]) && !strncmp(level, placeholders[i], n)){
				is_placeholder = true;
			}
		}
		if(!is_placeholder){
			for(i = 0; i < n; i++){
				char c = level[i];
				if(c == '{' || c == '}'){
					return cm_err_set(err, CM_ERR_INVAL, "topic pattern '%s': a placeholder must fill a whole level ({org}, {type} or {id})", p);
				}
				if((c == '+' || c == '#') && n != 1){
					return cm_err_set(err, CM_ERR_INVAL, "topic pattern '%s': wildcards must fill a whole level", p);
				}
			}
			if(n == 1 && level[0] == '#' && level[1] != '\0'){
				return cm_err_set(err, CM_ERR_INVAL, "topic pattern '%s': '#' must be the last level", p);
			}
		}
		if(level[n] == '\0'){
			break;
		}
		level += n + 1;
	}
	return CM_OK;
}

bool cm_topic_fill(const char *pattern, const struct cm_identity *ident, char *out, size_t outlen)
{
	const char *values[3] = {ident->org, ident->type, ident->id};
	size_t used = 0;
	const char *p = pattern;

	while(*p){
		const char *piece = NULL;
		size_t plen = 0, i;

		for(i = 0; i < 3; i++){
			size_t n = strlen(placeholders[i]);
			if(!strncmp(p, placeholders[i], n)){
				piece = values[i];
				plen = strlen(piece);
				p += n;
				break;
			}
		}
		if(piece == NULL){
			piece = p;
			plen = 1;
			p++;
		}
		if(used + plen + 1 > outlen){
			return false;
		}
		memcpy(out + used, piece, plen);
		used += plen;
	}
	out[used] = '\0';
	return true;
}

bool cm_topic_matches(const char *filter, const char *topic)
{
	/* Topics starting with '$' are never matched by a leading wildcard. */
	if(topic[0] == '$' && (filter[0] == '+' || filter[0] == '#')){
		return false;
	}
	for(;;){
		size_t fl = level_len(filter), tl = level_len(topic);

		if(fl == 1 && filter[0] == '#'){
			return true;
		}
		if(!(fl == 1 && filter[0] == '+') && (fl != tl || strncmp(filter, topic, fl))){
			return false;
		}
		if(filter[fl] == '\0' || topic[tl] == '\0'){
			/* "a/#" also matches "a". */
			return filter[fl] == '\0' && topic[tl] == '\0'
				? true
				: (topic[tl] == '\0' && !strcmp(filter + fl, "/#"));
		}
		filter += fl + 1;
		topic += tl + 1;
	}
}

bool cm_topic_sub_within(const char *acl, const char *sub)
{
	if(sub[0] == '$' && acl[0] != '$'){
		return false;
	}
	for(;;){
		size_t al = level_len(acl), sl = level_len(sub);
		bool a_hash = al == 1 && acl[0] == '#';
		bool a_plus = al == 1 && acl[0] == '+';
		bool s_hash = sl == 1 && sub[0] == '#';
		bool s_plus = sl == 1 && sub[0] == '+';

		if(a_hash){
			return true;
		}
		if(s_hash){
			return false; /* '#' reaches deeper than any non-'#' level */
		}
		if(s_plus && !a_plus){
			return false;
		}
		if(!a_plus && (al != sl || strncmp(acl, sub, al))){
			return false;
		}
		if(sub[sl] == '\0' || acl[al] == '\0'){
			if(sub[sl] == '\0' && acl[al] == '\0'){
				return true;
			}
			/* sub ends where acl goes on: only "…/#" also covers it. */
			return sub[sl] == '\0' && !strcmp(acl + al, "/#");
		}
		acl += al + 1;
		sub += sl + 1;
	}
}
