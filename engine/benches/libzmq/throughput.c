/* Raw libzmq PUSH -> PULL throughput in one process, the reference that `npm run
 * bench:engine` is compared with (scripts/bench-libzmq.sh builds and runs it).
 *
 * The same shape as engine/benches/throughput.rs: PULL binds tcp loopback (or ipc), PUSH
 * connects, one warm-up message, then one thread sends N messages while the main thread
 * receives N; the clock runs from just before the first send to the last receive. Payloads
 * are one static buffer sent zero-copy (zmq_msg_init_data with a no-op free), as the Rust
 * bench clones one `Bytes`, so neither side pays for building payloads.
 *
 * usage: throughput <tcp|ipc> <size> <count>     prints one JSON line
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

static void *push_sock;
static size_t size;
static long count;
static char *payload;

static void no_free(void *data, void *hint) { (void)data; (void)hint; }

static void die(const char *what) {
    fprintf(stderr, "%s: %s\n", what, zmq_strerror(zmq_errno()));
    exit(1);
}

static void send_one(void) {
    zmq_msg_t m;
    if (zmq_msg_init_data(&m, payload, size, no_free, NULL) != 0) die("zmq_msg_init_data");
    if (zmq_msg_send(&m, push_sock, 0) < 0) die("zmq_msg_send");
}

static void *sender(void *arg) {
    (void)arg;
    for (long i = 0; i < count; i++) send_one();
    return NULL;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s <tcp|ipc> <size> <count>\n", argv[0]);
        return 2;
    }
    const char *transport = argv[1];
    size = strtoul(argv[2], NULL, 10);
    count = strtol(argv[3], NULL, 10);
    payload = malloc(size ? size : 1);
    memset(payload, 7, size);

    void *ctx = zmq_ctx_new();
    void *pull = zmq_socket(ctx, ZMQ_PULL);
    push_sock = zmq_socket(ctx, ZMQ_PUSH);
    char endpoint[256];
    if (strcmp(transport, "ipc") == 0)
        snprintf(endpoint, sizeof endpoint, "ipc:///tmp/zp-libzmq-bench-%d.sock", (int)getpid());
    else
        snprintf(endpoint, sizeof endpoint, "tcp://127.0.0.1:*");
    if (zmq_bind(pull, endpoint) != 0) die("zmq_bind");
    size_t len = sizeof endpoint;
    zmq_getsockopt(pull, ZMQ_LAST_ENDPOINT, endpoint, &len);
    if (zmq_connect(push_sock, endpoint) != 0) die("zmq_connect");

    zmq_msg_t m;
    zmq_msg_init(&m);
    send_one();
    if (zmq_msg_recv(&m, pull, 0) < 0) die("warm-up");

    pthread_t t;
    double t0 = now();
    pthread_create(&t, NULL, sender, NULL);
    for (long i = 0; i < count; i++) {
        if (zmq_msg_recv(&m, pull, 0) < 0) die("zmq_msg_recv");
        if (zmq_msg_size(&m) != size) {
            fprintf(stderr, "received %zu bytes, sent %zu\n", zmq_msg_size(&m), size);
            return 1;
        }
    }
    double secs = now() - t0;
    pthread_join(t, NULL);
    zmq_msg_close(&m);
    printf("{\"lib\":\"libzmq (C)\",\"transport\":\"%s\",\"size\":%zu,\"n\":%ld,\"secs\":%.4f,"
           "\"rate\":%.0f,\"GBps\":%.3f}\n",
           transport, size, count, secs, count / secs, count * (double)size / secs / 1e9);
    int zero = 0;
    zmq_setsockopt(push_sock, ZMQ_LINGER, &zero, sizeof zero);
    zmq_close(push_sock);
    zmq_close(pull);
    zmq_ctx_term(ctx);
    if (strcmp(transport, "ipc") == 0) unlink(endpoint + strlen("ipc://"));
    return 0;
}
