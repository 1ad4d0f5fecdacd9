/*
 * status.h - HTTP reason phrases, for the status lines h2o writes.
 */
#ifndef ESGATE_STATUS_H
#define ESGATE_STATUS_H

/* "OK", "Bad Gateway", ...; a generic phrase for codes not listed. */
const char *status_reason(int status);

#endif
