/*
 * curlclient.h - libcurl's multi interface on the worker's libev loop, as
 * an upstream transport (worker/transport.h): https:// nodes (TLS,
 * certificates, verification), and every node with "http_client: curl".
 */
#ifndef ESGATE_CURLCLIENT_H
#define ESGATE_CURLCLIENT_H

#include <ev.h>

#include "lib/config.h"
#include "worker/transport.h"

/* The transport on LOOP with CFG's timeouts, connection caps and TLS
 * settings (CFG must outlive it).  It takes every node.  NULL on failure. */
struct transport *curlclient_new(struct ev_loop *loop, const struct config_upstream *cfg);

#endif
