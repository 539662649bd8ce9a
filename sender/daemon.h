/*
 * sluice-send --daemon: send what appears in spool_dir, in queue order,
 * with heartbeats in between; see daemon.c and common/spool.h.
 */
#ifndef SLUICE_DAEMON_H
#define SLUICE_DAEMON_H

#include <signal.h>

#include "common/conf.h"
#include "sender/send.h"

/* Runs until *stop is set: 0, or -errno if it cannot start. */
int sender_daemon(const struct sender_conf *c, struct sender *s,
    volatile sig_atomic_t *stop);

#endif
