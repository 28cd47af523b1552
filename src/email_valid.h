/*
 * email_valid.h
 *		Plausibility check for e-mail addresses; plain C, no server headers,
 *		so the fuzz and unit-test binaries link it as is.
 */
#ifndef IPAI_EMAIL_VALID_H
#define IPAI_EMAIL_VALID_H

#include <stdbool.h>
#include <stddef.h>

extern bool ipai_email_plausible(const char *s, size_t len);

#endif
