/* loadgen: mutual-TLS MQTT connections against a broker, as fast as K
 * workers can make them. Each connection: TCP connect, TLS handshake with
 * SNI and a device certificate (optionally resuming that device's last
 * session), MQTT 3.1.1 CONNECT with the device's client id, CONNACK,
 * DISCONNECT. Devices are cycled from a manifest, one per line:
 *
 *     CERT.pem KEY.pem CLIENT_ID SNI
 *
 * (SNI "-" sends none). Prints connections per second, p50/p99/max connect
 * latency, failures by kind, and the broker's CPU time per connection from
 * /proc/PID/stat, which holds even when generator and broker share cores
 * (-b given more than once: the sum of those processes, for a TLS proxy
 * in front of a broker).
 *
 *     loadgen -p PORT -m MANIFEST [-H HOST] [-c WORKERS] [-d SECONDS]
 *             [-r] [-b BROKER_PID] [-i IDLE_COUNT]
 *
 * -r resumes sessions; -i opens IDLE_COUNT connections, keeps them open
 * until stdin closes, and prints nothing else. Output is one line of
 * key=value pairs. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

struct device {
	X509 *cert;
	EVP_PKEY *key;
	char clientid[128];
	char sni[256];
	SSL_SESSION *session;
	pthread_mutex_t lock;
};

enum failure { F_TCP, F_TLS, F_MQTT_REFUSED, F_CLOSED, F_COUNT };
static const char *const failure_names[F_COUNT] = {"tcp", "tls", "connack_refused", "closed"};

static struct device *devices;
static size_t ndevices;
static atomic_size_t next_device;
static SSL_CTX *ctx;
static struct sockaddr_storage addr;
static socklen_t addrlen;
static bool resume;
static atomic_bool stopping;

struct worker {
	pthread_t th;
	double *lat; /* milliseconds */
	size_t nlat, caplat;
	size_t ok, resumed, fail[F_COUNT];
};

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int tcp_connect(void)
{
	int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	struct timeval tv = {10, 0};

	if(fd < 0){
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if(connect(fd, (struct sockaddr *)&addr, addrlen) != 0){
		close(fd);
		return -1;
	}
	return fd;
}

static size_t mqtt_connect_packet(unsigned char *buf, const char *clientid)
{
	size_t idlen = strlen(clientid), n = 0;
	size_t remaining = 10 + 2 + idlen;

	buf[n++] = 0x10;
	buf[n++] = (unsigned char)remaining; /* client ids here are short */
	memcpy(buf + n, "\0\4MQTT\4\2\0\x3c", 10);
	n += 10;
	buf[n++] = (unsigned char)(idlen >> 8);
	buf[n++] = (unsigned char)idlen;
	memcpy(buf + n, clientid, idlen);
	return n + idlen;
}

/* One connection; returns -1 on success or the failure kind. */
static int one(struct device *d, bool *was_resumed)
{
	unsigned char buf[300], ack[4];
	size_t len, got = 0;
	SSL *ssl;
	int fd, rc = -1;

	fd = tcp_connect();
	if(fd < 0){
		return F_TCP;
	}
	ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fd);
	if(d->sni[0]){
		SSL_set_tlsext_host_name(ssl, d->sni);
	}
	SSL_use_certificate(ssl, d->cert);
	SSL_use_PrivateKey(ssl, d->key);
	if(resume){
		pthread_mutex_lock(&d->lock);
		if(d->session){
			SSL_set_session(ssl, d->session);
		}
		pthread_mutex_unlock(&d->lock);
	}
	if(SSL_connect(ssl) != 1){
		rc = F_TLS;
		goto out;
	}
	*was_resumed = SSL_session_reused(ssl);
	len = mqtt_connect_packet(buf, d->clientid);
	if(SSL_write(ssl, buf, (int)len) != (int)len){
		rc = F_CLOSED;
		goto out;
	}
	/* TLS 1.3: the session tickets come before the CONNACK. */
	while(got < sizeof(ack)){
		int r = SSL_read(ssl, ack + got, (int)(sizeof(ack) - got));
		if(r <= 0){
			break;
		}
		got += (size_t)r;
	}
	if(got < sizeof(ack)){
		rc = F_CLOSED;
		goto out;
	}
	if(ack[0] != 0x20 || ack[3] != 0){
		rc = F_MQTT_REFUSED;
		goto out;
	}
	SSL_write(ssl, "\xe0\x00", 2);
	/* A close_notify: OpenSSL will not resume a session whose connection
	 * ended without one. */
	SSL_shutdown(ssl);
	if(resume){
		SSL_SESSION *s = SSL_get1_session(ssl);
		pthread_mutex_lock(&d->lock);
		SSL_SESSION_free(d->session);
		d->session = s;
		pthread_mutex_unlock(&d->lock);
	}
out:
	SSL_free(ssl);
	close(fd);
	return rc;
}

static void *work(void *arg)
{
	struct worker *w = arg;

	while(!atomic_load(&stopping)){
		struct device *d = &devices[atomic_fetch_add(&next_device, 1) % ndevices];
		bool reused = false;
		double start = now_ms();
		int f = one(d, &reused);

		if(f >= 0){
			w->fail[f]++;
			continue;
		}
		w->ok++;
		w->resumed += reused;
		if(w->nlat == w->caplat){
			w->caplat = w->caplat ? w->caplat * 2 : 4096;
			w->lat = realloc(w->lat, w->caplat * sizeof(*w->lat));
			if(w->lat == NULL){
				abort();
			}
		}
		w->lat[w->nlat++] = now_ms() - start;
	}
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* utime + stime of pid, in seconds. */
static double cpu_seconds(long pid)
{
	char path[64], buf[2048], *p;
	unsigned long ut = 0, st = 0;
	FILE *f;
	size_t n;

	if(pid <= 0){
		return 0;
	}
	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	f = fopen(path, "r");
	if(f == NULL){
		return 0;
	}
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')'); /* the command name may hold spaces */
	if(p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2){
		return 0;
	}
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double cpu_seconds_sum(const long *pids, int n)
{
	double sum = 0;

	for(int i = 0; i < n; i++){
		sum += cpu_seconds(pids[i]);
	}
	return sum;
}

static void load_manifest(const char *path)
{
	char line[2048];
	size_t cap = 0;
	FILE *f = fopen(path, "r");

	if(f == NULL){
		perror(path);
		exit(2);
	}
	while(fgets(line, sizeof(line), f)){
		char cert[900], key[900], id[128], sni[256];
		struct device *d;
		FILE *pf;

		if(sscanf(line, "%899s %899s %127s %255s", cert, key, id, sni) != 4){
			continue;
		}
		if(ndevices == cap){
			cap = cap ? cap * 2 : 256;
			devices = realloc(devices, cap * sizeof(*devices));
			if(devices == NULL){
				abort();
			}
		}
		d = &devices[ndevices];
		memset(d, 0, sizeof(*d));
		pthread_mutex_init(&d->lock, NULL);
		snprintf(d->clientid, sizeof(d->clientid), "%s", id);
		if(strcmp(sni, "-")){
			snprintf(d->sni, sizeof(d->sni), "%s", sni);
		}
		if((pf = fopen(cert, "r")) == NULL || (d->cert = PEM_read_X509(pf, NULL, NULL, NULL)) == NULL){
			fprintf(stderr, "loadgen: cannot read certificate %s\n", cert);
			exit(2);
		}
		fclose(pf);
		if((pf = fopen(key, "r")) == NULL || (d->key = PEM_read_PrivateKey(pf, NULL, NULL, NULL)) == NULL){
			fprintf(stderr, "loadgen: cannot read key %s\n", key);
			exit(2);
		}
		fclose(pf);
		ndevices++;
	}
	fclose(f);
	if(ndevices == 0){
		fprintf(stderr, "loadgen: no devices in %s\n", path);
		exit(2);
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: loadgen -p PORT -m MANIFEST [-H HOST] [-c WORKERS] [-d SECONDS] [-r] [-b BROKER_PID] [-i IDLE_COUNT]\n");
	exit(2);
}

static int idle(size_t count)
{
	size_t i, open_ok = 0;
	SSL **ssls = calloc(count, sizeof(*ssls));
	char c;

	for(i = 0; i < count && ssls; i++){
		struct device *d = &devices[i % ndevices];
		unsigned char buf[300], ack[4];
		size_t len;
		int fd = tcp_connect();

		if(fd < 0){
			continue;
		}
		ssls[i] = SSL_new(ctx);
		SSL_set_fd(ssls[i], fd);
		if(d->sni[0]){
			SSL_set_tlsext_host_name(ssls[i], d->sni);
		}
		SSL_use_certificate(ssls[i], d->cert);
		SSL_use_PrivateKey(ssls[i], d->key);
		len = mqtt_connect_packet(buf, d->clientid);
		if(SSL_connect(ssls[i]) == 1 && SSL_write(ssls[i], buf, (int)len) == (int)len
				&& SSL_read(ssls[i], ack, sizeof(ack)) == (int)sizeof(ack) && ack[3] == 0){
			open_ok++;
		}
	}
	printf("idle_open=%zu\n", open_ok);
	fflush(stdout);
	while(read(0, &c, 1) > 0){
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *host = "127.0.0.1", *port = NULL, *manifest = NULL;
	int workers = 2, opt;
	double seconds = 10;
	long broker_pids[8] = {0};
	int nbrokers = 0;
	size_t idle_count = 0, i, total = 0, resumed = 0, fail[F_COUNT] = {0}, n = 0;
	struct addrinfo hints = {0}, *ai;
	struct worker *w;
	double *all, t0, t1, cpu0, cpu1;

	while((opt = getopt(argc, argv, "H:p:m:c:d:rb:i:")) != -1){
		switch(opt){
			case 'H': host = optarg; break;
			case 'p': port = optarg; break;
			case 'm': manifest = optarg; break;
			case 'c': workers = atoi(optarg); break;
			case 'd': seconds = atof(optarg); break;
			case 'r': resume = true; break;
			case 'b':
				if(nbrokers == (int)(sizeof(broker_pids) / sizeof(broker_pids[0]))){
					usage();
				}
				broker_pids[nbrokers++] = atol(optarg);
				break;
			case 'i': idle_count = (size_t)atol(optarg); break;
			default: usage();
		}
	}
	if(port == NULL || manifest == NULL || workers < 1 || seconds <= 0){
		usage();
	}
	signal(SIGPIPE, SIG_IGN); /* a broker that hangs up is a failure, counted */
	hints.ai_socktype = SOCK_STREAM;
	if(getaddrinfo(host, port, &hints, &ai) != 0){
		fprintf(stderr, "loadgen: cannot resolve %s:%s\n", host, port);
		return 2;
	}
	memcpy(&addr, ai->ai_addr, ai->ai_addrlen);
	addrlen = ai->ai_addrlen;
	freeaddrinfo(ai);
	load_manifest(manifest);
	ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	if(idle_count){
		return idle(idle_count);
	}
	w = calloc((size_t)workers, sizeof(*w));
	cpu0 = cpu_seconds_sum(broker_pids, nbrokers);
	t0 = now_ms();
	for(i = 0; i < (size_t)workers; i++){
		pthread_create(&w[i].th, NULL, work, &w[i]);
	}
	usleep((useconds_t)(seconds * 1e6));
	atomic_store(&stopping, true);
	for(i = 0; i < (size_t)workers; i++){
		pthread_join(w[i].th, NULL);
		total += w[i].ok;
		resumed += w[i].resumed;
		for(int f = 0; f < F_COUNT; f++){
			fail[f] += w[i].fail[f];
		}
	}
	t1 = now_ms();
	cpu1 = cpu_seconds_sum(broker_pids, nbrokers);
	all = malloc((total ? total : 1) * sizeof(*all));
	for(i = 0; i < (size_t)workers; i++){
		memcpy(all + n, w[i].lat, w[i].nlat * sizeof(*all));
		n += w[i].nlat;
	}
	qsort(all, n, sizeof(*all), cmp_double);
	printf("connections=%zu seconds=%.2f per_second=%.1f resumed=%zu p50_ms=%.2f p99_ms=%.2f max_ms=%.2f",
			total, (t1 - t0) / 1e3, (double)total / ((t1 - t0) / 1e3), resumed,
			n ? all[n / 2] : 0.0, n ? all[(size_t)((double)n * 0.99)] : 0.0, n ? all[n - 1] : 0.0);
	if(nbrokers){
		printf(" broker_cpu_ms_per_conn=%.3f", total ? (cpu1 - cpu0) * 1e3 / (double)total : 0.0);
	}
	for(int f = 0; f < F_COUNT; f++){
		printf(" fail_%s=%zu", failure_names[f], fail[f]);
	}
	printf("\n");
	return 0;
}
