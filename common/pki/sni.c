#include <string.h>

#include "sni.h"

bool cm_sni_parse(const unsigned char *p, size_t len, char out[CM_HOSTNAME_MAX + 1])
{
	size_t list_len, pos;

	if(p == NULL || len < 2){
		return false;
	}
	list_len = ((size_t)p[0] << 8) | p[1];
	if(list_len != len - 2){
		return false;
	}
	pos = 2;
	while(pos + 3 <= len){
		unsigned char type = p[pos];
		size_t name_len = ((size_t)p[pos + 1] << 8) | p[pos + 2];
		size_t i;

		pos += 3;
		if(name_len > len - pos){
			return false;
		}
		if(type == 0){
			if(name_len == 0 || name_len > CM_HOSTNAME_MAX){
				return false;
			}
			for(i = 0; i < name_len; i++){
				unsigned char c = p[pos + i];
				if(c >= 'A' && c <= 'Z'){
					c = (unsigned char)(c - 'A' + 'a');
				}else if(!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.')){
					return false;
				}
				out[i] = (char)c;
			}
			out[name_len] = '\0';
			return true;
		}
		pos += name_len;
	}
	return false;
}
