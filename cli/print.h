#ifndef CM_PRINT_H
#define CM_PRINT_H
/* certmgr_ctrl's output. */

#include <stdbool.h>

#include <cjson/cJSON.h>

/* Prints r, the answer to command: its error on stderr (MOSQ_ERR_UNKNOWN,
 * the exit code of a refusal), the raw JSON when json, else as a person
 * reads it; with outfile, the PEM the command returns is written there
 * too (MOSQ_ERR_INVAL when it returns none or the file cannot be
 * written). MOSQ_ERR_SUCCESS otherwise. */
int cm_print_answer(const char *outfile, bool json, const char *command, const cJSON *r);

#endif
