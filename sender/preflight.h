/*
 * sluice-send's start-up checks (see preflight.c): one line per problem
 * on stderr; returns how many.
 */
#ifndef SLUICE_SENDER_PREFLIGHT_H
#define SLUICE_SENDER_PREFLIGHT_H

#include "common/conf.h"

unsigned sender_preflight(const struct sender_conf *c);

#endif
