/*
 * redis.c - one async connection to Redis on the worker's loop, with the
 * timeouts and reconnects hiredis' libev adapter lacks (see redis.h).
 *
 * hiredis frees a context itself after a failed connect and after a lost
 * connection, and defers redisAsyncFree() called from inside one of its
 * reply callbacks until that callback returns, then runs every remaining
 * callback with a NULL reply.  So: r->ac is cleared before any context is
 * let go, every callback first checks that its context is still r->ac, and
 * nothing here frees a context from the connect callback (hiredis goes on
 * using it after that returns).
 */
#include "worker/redis.h"

#include <arpa/inet.h>
#include <hiredis/adapters/libev.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <netdb.h>
#include <stdarg.h>
#include <openssl/sha.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "lib/log.h"

#define REDIS_BACKOFF_MIN 0.1
#define REDIS_BACKOFF_MAX 1.0

struct redis {
	struct ev_loop *loop;
	const struct config_redis *cfg;
	char *script;
	char sha[2 * SHA_DIGEST_LENGTH + 1];
	redis_reply_cb *on_reply;
	redis_state_cb *on_state;
	void *arg;
	char ip[INET6_ADDRSTRLEN]; /* the host, resolved at start; "" if it could not be */
	redisAsyncContext *ac;	   /* the connection being made or in use; NULL between attempts */
	int connecting;		   /* ac's connect has not completed */
	unsigned outstanding;	   /* commands sent on ac and not answered */
	int up;			   /* ac is connected and the script loaded */
	int starting;		   /* the first attempt since the worker started, not failed yet */
	int logged_down;	   /* "unreachable" was logged and "back" was not yet */
	double backoff;		   /* before the next attempt, seconds */
	ev_timer timeout;	   /* no progress on ac for cfg->timeout_ms */
	ev_timer retry;		   /* the next attempt */
	struct redis_stats stats;
};

/* Handshake steps, as the privdata of their commands. */
#define REDIS_STEP_AUTH 1
#define REDIS_STEP_SELECT 2
#define REDIS_STEP_LOAD 3

static void redis_connect(struct redis *r);

static const char *
redis_where(const struct redis *r)
{
	return r->cfg->address;
}

/* The timer runs while something on ac waits for an answer. */
static void
redis_progress(struct redis *r)
{
	if (r->ac != NULL && (r->connecting || r->outstanding > 0))
		ev_timer_again(r->loop, &r->timeout);
	else
		ev_timer_stop(r->loop, &r->timeout);
}

/* The connection is gone (ac already let go, or never made): say so once,
 * tell the owner, and try again after the backoff. */
static void
redis_down(struct redis *r, const char *why)
{
	int was_up = r->up;

	r->ac = NULL;
	r->up = 0;
	r->connecting = 0;
	r->outstanding = 0;
	r->stats.errors++;
	ev_timer_stop(r->loop, &r->timeout);
	if (!r->logged_down) {
		log_warnx("redis %s: %s; limits are %s until it is back", redis_where(r), why,
		          r->cfg->fail_closed ? "refused (fail: closed)" : "local to this machine (fail: open)");
		r->logged_down = 1;
	}
	r->starting = 0;
	(void)was_up;
	r->on_state(r->arg, 0);
	ev_timer_set(&r->retry, r->backoff, 0.0);
	ev_timer_start(r->loop, &r->retry);
	r->backoff = r->backoff * 2 > REDIS_BACKOFF_MAX ? REDIS_BACKOFF_MAX : r->backoff * 2;
}

/* Lets the current connection go (callable from anywhere but the connect
 * callback). */
static void
redis_drop(struct redis *r, const char *why)
{
	redisAsyncContext *ac = r->ac;

	if (ac == NULL)
		return;
	redis_down(r, why);
	redisAsyncFree(ac); /* deferred by hiredis when inside its callback */
}

/*
 * libev runs the timers that expired during a long loop turn before the
 * I/O that arrived in it: an answer (or the connect) may be waiting on the
 * socket, unread, when this fires after a turn longer than the timeout (a
 * loaded machine).  That is progress, not a dead Redis.
 */
static void
redis_on_timeout(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct redis *r = t->data;
	struct pollfd p = {.fd = r->ac != NULL ? r->ac->c.fd : -1, .events = r->connecting ? POLLOUT : POLLIN};

	if (p.fd >= 0 && poll(&p, 1, 0) == 1 && !(p.revents & POLLNVAL)) {
		if (r->connecting)
			redisAsyncHandleWrite(r->ac);
		else
			redisAsyncHandleRead(r->ac);
		redis_progress(r);
		return;
	}
	redis_drop(r, r->connecting ? "connect timed out" : "no answer within the timeout");
}

static void
redis_on_retry(struct ev_loop *loop, ev_timer *t, int revents)
{
	redis_connect(t->data);
}

/* The reply to a script call. */
static void
redis_on_eval(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct redis *r = ac->data;
	const redisReply *rep = reply;

	if (ac == r->ac) {
		r->outstanding--;
		redis_progress(r);
		if (rep != NULL && rep->type != REDIS_REPLY_ERROR)
			r->stats.replies++;
	}
	r->on_reply(r->arg, (uint64_t)(uintptr_t)privdata, rep);
	if (ac == r->ac && rep != NULL && rep->type == REDIS_REPLY_ERROR) {
		/* NOSCRIPT (a SCRIPT FLUSH), OOM, a replica: start over,
		 * which loads the script again */
		char why[160];

		snprintf(why, sizeof(why), "script error: %.100s", rep->str);
		redis_drop(r, why);
	}
}

static void
redis_on_step(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct redis *r = ac->data;
	const redisReply *rep = reply;
	int step = (int)(uintptr_t)privdata;
	char why[160];

	if (ac != r->ac || rep == NULL)
		return;
	r->outstanding--;
	redis_progress(r);
	if (rep->type == REDIS_REPLY_ERROR) {
		/* never the password: Redis' own message does not hold it */
		snprintf(why, sizeof(why), "%s refused: %.100s",
		         step == REDIS_STEP_AUTH ? "AUTH" : step == REDIS_STEP_SELECT ? "SELECT" : "SCRIPT LOAD", rep->str);
		redis_drop(r, why);
		return;
	}
	if (step != REDIS_STEP_LOAD)
		return;
	if (rep->type != REDIS_REPLY_STRING || strcmp(rep->str, r->sha) != 0) {
		redis_drop(r, "SCRIPT LOAD answered an unexpected digest");
		return;
	}
	r->up = 1;
	r->starting = 0;
	r->backoff = REDIS_BACKOFF_MIN;
	r->stats.connects++;
	if (r->logged_down) {
		log_info("redis %s: connected again; limits are shared again", redis_where(r));
		r->logged_down = 0;
	}
	r->on_state(r->arg, 1);
}

static void
redis_step(struct redis *r, int step, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = redisvAsyncCommand(r->ac, redis_on_step, (void *)(uintptr_t)step, fmt, ap);
	va_end(ap);
	if (rc == REDIS_OK)
		r->outstanding++;
}

static void
redis_on_connect(const redisAsyncContext *cac, int status)
{
	struct redis *r = cac->data;

	if (cac != r->ac)
		return;
	if (status != REDIS_OK) {
		char why[160];

		/* hiredis frees the context when this returns */
		snprintf(why, sizeof(why), "cannot connect: %.100s", cac->errstr);
		redis_down(r, why);
		return;
	}
	r->connecting = 0;
	if (r->cfg->password != NULL && r->cfg->username != NULL)
		redis_step(r, REDIS_STEP_AUTH, "AUTH %s %s", r->cfg->username, r->cfg->password);
	else if (r->cfg->password != NULL)
		redis_step(r, REDIS_STEP_AUTH, "AUTH %s", r->cfg->password);
	if (r->cfg->database != 0)
		redis_step(r, REDIS_STEP_SELECT, "SELECT %u", r->cfg->database);
	redis_step(r, REDIS_STEP_LOAD, "SCRIPT LOAD %s", r->script);
	redis_progress(r);
}

static void
redis_on_disconnect(const redisAsyncContext *cac, int status)
{
	struct redis *r = cac->data;

	if (cac != r->ac)
		return; /* one we let go ourselves */
	redis_down(r, status == REDIS_OK ? "connection closed" : "connection lost");
}

static void
redis_connect(struct redis *r)
{
	redisAsyncContext *ac;

	if (r->cfg->unix_path != NULL)
		ac = redisAsyncConnectUnix(r->cfg->unix_path);
	else if (r->ip[0] != '\0')
		ac = redisAsyncConnect(r->ip, (int)r->cfg->port);
	else {
		redis_down(r, "its host name did not resolve at start (reload to try again)");
		ev_timer_stop(r->loop, &r->retry); /* nothing to retry */
		return;
	}
	if (ac == NULL) {
		redis_down(r, "out of memory");
		return;
	}
	if (ac->err != 0) {
		char why[160];

		snprintf(why, sizeof(why), "cannot connect: %.100s", ac->errstr);
		redisAsyncFree(ac);
		redis_down(r, why);
		return;
	}
	ac->data = r;
	r->ac = ac;
	r->connecting = 1;
	r->outstanding = 0;
	/* the first attempt is made before the loop runs: its clock is the
	 * loop's creation time, which the worker's start-up has left behind */
	ev_now_update(r->loop);
	redisLibevAttach(r->loop, ac);
	redisAsyncSetConnectCallback(ac, redis_on_connect);
	redisAsyncSetDisconnectCallback(ac, redis_on_disconnect);
	redis_progress(r);
}

/* Once, when the worker starts: the loop is not running yet. */
static void
redis_resolve(struct redis *r)
{
	struct addrinfo hints, *res = NULL;
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if ((rc = getaddrinfo(r->cfg->host, NULL, &hints, &res)) != 0 || res == NULL) {
		log_warnx("redis %s: cannot resolve %s: %s", redis_where(r), r->cfg->host, gai_strerror(rc));
		return;
	}
	if (res->ai_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)res->ai_addr)->sin_addr, r->ip, sizeof(r->ip));
	else if (res->ai_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)(void *)res->ai_addr)->sin6_addr, r->ip, sizeof(r->ip));
	freeaddrinfo(res);
}

struct redis *
redis_new(struct ev_loop *loop, const struct config_redis *cfg, const char *script, redis_reply_cb *on_reply,
          redis_state_cb *on_state, void *arg)
{
	struct redis *r = calloc(1, sizeof(*r));
	unsigned char md[SHA_DIGEST_LENGTH];

	if (r == NULL || (r->script = strdup(script)) == NULL) {
		free(r);
		return NULL;
	}
	r->loop = loop;
	r->cfg = cfg;
	r->on_reply = on_reply;
	r->on_state = on_state;
	r->arg = arg;
	r->starting = 1;
	r->backoff = REDIS_BACKOFF_MIN;
	SHA1((const unsigned char *)script, strlen(script), md);
	for (size_t i = 0; i < sizeof(md); i++)
		snprintf(r->sha + 2 * i, 3, "%02x", md[i]);
	ev_init(&r->timeout, redis_on_timeout);
	r->timeout.repeat = (double)cfg->timeout_ms / 1000.0;
	r->timeout.data = r;
	ev_init(&r->retry, redis_on_retry);
	r->retry.data = r;
	if (cfg->unix_path == NULL)
		redis_resolve(r);
	redis_connect(r);
	return r;
}

void
redis_free(struct redis *r)
{
	redisAsyncContext *ac;

	if (r == NULL)
		return;
	ev_timer_stop(r->loop, &r->timeout);
	ev_timer_stop(r->loop, &r->retry);
	if ((ac = r->ac) != NULL) {
		/* the callbacks see ac != r->ac and only hand NULLs on */
		r->ac = NULL;
		redisAsyncFree(ac);
	}
	free(r->script);
	free(r);
}

int
redis_up(const struct redis *r)
{
	return r->up;
}

int
redis_eval(struct redis *r, uint64_t tag, const char *key, size_t keylen, int nargs, const char *const *args)
{
	const char *argv[3 + 1 + 8];
	size_t lens[3 + 1 + 8];
	int argc = 0;

	if (!r->up || nargs > 8)
		return -1;
	argv[argc] = "EVALSHA";
	lens[argc++] = 7;
	argv[argc] = r->sha;
	lens[argc++] = strlen(r->sha);
	argv[argc] = "1";
	lens[argc++] = 1;
	argv[argc] = key;
	lens[argc++] = keylen;
	for (int i = 0; i < nargs; i++) {
		argv[argc] = args[i];
		lens[argc++] = strlen(args[i]);
	}
	if (redisAsyncCommandArgv(r->ac, redis_on_eval, (void *)(uintptr_t)tag, argc, argv, lens) != REDIS_OK)
		return -1;
	r->outstanding++;
	if (r->outstanding == 1)
		redis_progress(r);
	return 0;
}

const struct redis_stats *
redis_stats(const struct redis *r)
{
	return &r->stats;
}
