/*
 * http.h - the worker's HTTP face: h2o configuration, the router and the
 * JSON error answers.
 */
#ifndef ESGATE_HTTP_H
#define ESGATE_HTTP_H

#include <h2o.h>

#include <stdint.h>
#include <sys/socket.h>

struct worker;

/* One request's bookkeeping, from arrival to its last byte: metrics and
 * the access log line are written when its pool goes away. */
struct http_exchange {
	h2o_req_t *req;
	struct worker *w;
	uint64_t start_us;	   /* CLOCK_MONOTONIC */
	int route;		   /* metrics route index, -1 if none */
	const char *request_id;
	const char *upstream_node; /* in req's pool, set by the proxy */
	uint64_t upstream_us;
	int client_gone;	   /* the client left before its answer was complete */
	const char *cache;	   /* what the micro-cache did (X-Cache), NULL if not asked */
	struct sockaddr_storage peer; /* taken at arrival: gone with the connection */
	socklen_t peerlen;	   /* 0 if unknown */
	char client[64];	   /* PEER as text, "" until http_exchange_client() */
};

/* CLOCK_MONOTONIC in microseconds. */
uint64_t http_now_us(void);

/* Fills W's h2o global configuration (limits, timeouts, the one handler
 * that routes every path).  Called once, after fork. */
void http_configure(struct worker *w);
/* Answers REQ with STATUS and {"error":{"type":TYPE,"reason":REASON},"status":STATUS}. */
void http_send_error(h2o_req_t *req, int status, const char *type, const char *reason);

#endif
