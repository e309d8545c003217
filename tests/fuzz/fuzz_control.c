/* The control-payload dispatcher, end to end, with a fake broker: the
 * plugin is initialised on a scratch store, and every input is one
 * request on $CONTROL/certmgr/v1 from an administrator. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

extern struct mosquitto fake_admin;
extern MOSQ_FUNC_generic_callback fake_control_cb, fake_tick_cb;
extern void *fake_userdata;

static void start(void)
{
	static char store[512], conf[512], confopt[600];
	const char *tmp = getenv("CERTMGR_FUZZ_TMP");
	struct mosquitto_opt opts[4];
	void *userdata = NULL;
	FILE *f;

	snprintf(store, sizeof(store), "%s/certmgr-fuzz-control-%d", tmp && tmp[0] ? tmp : "/tmp", (int)getpid());
	snprintf(conf, sizeof(conf), "%s.conf", store);
	f = fopen(conf, "w");
	if(f == NULL){
		abort();
	}
	fputs("per_listener_settings false\n", f);
	fclose(f);
	(void)confopt;
	opts[0] = (struct mosquitto_opt){"store_dir", store};
	opts[1] = (struct mosquitto_opt){"broker_config", conf};
	opts[2] = (struct mosquitto_opt){"admin_users", "fuzzadmin"};
	opts[3] = (struct mosquitto_opt){"max_payload", "65536"};
	if(mosquitto_plugin_init(NULL, &userdata, opts, 4) != MOSQ_ERR_SUCCESS || fake_control_cb == NULL){
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mosquitto_evt_control ev;
	struct mosquitto_evt_tick tick;

	if(fake_control_cb == NULL){
		start();
	}
	memset(&ev, 0, sizeof(ev));
	ev.client = &fake_admin;
	ev.topic = "$CONTROL/certmgr/v1";
	ev.payload = data;
	ev.payloadlen = (uint32_t)size;
	fake_control_cb(MOSQ_EVT_CONTROL, &ev, fake_userdata);
	/* Let what the request started (a key on the worker) finish. */
	memset(&tick, 0, sizeof(tick));
	fake_tick_cb(MOSQ_EVT_TICK, &tick, fake_userdata);
	return 0;
}
