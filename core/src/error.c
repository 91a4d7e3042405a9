/* error.c - the status-code table and the thread's last error. */
#include <stdio.h>

#include "internal.h"

static _Thread_local int last_code;
static _Thread_local char last_message[256];

unsigned rill_version(void) { return RILL_VERSION_HEX; }
const char *rill_version_string(void) { return RILL_VERSION_STRING; }

const char *rill_strerror(int code) {
  switch (code) {
  case RILL_OK: return "success";
#define RILL__ERR_TEXT(name, num, text) \
  case num: return text;
    RILL_ERRNO_MAP(RILL__ERR_TEXT)
#undef RILL__ERR_TEXT
  default: return "unknown error";
  }
}

const char *rill_err_name(int code) {
  switch (code) {
  case RILL_OK: return "RILL_OK";
#define RILL__ERR_NAME(name, num, text) \
  case num: return "RILL_" #name;
    RILL_ERRNO_MAP(RILL__ERR_NAME)
#undef RILL__ERR_NAME
  default: return NULL;
  }
}

int rill_last_error(void) { return last_code; }

const char *rill_last_error_message(void) {
  return last_code ? last_message : "success";
}

int rill__fail(int code, const char *fmt, ...) {
  last_code = code;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(last_message, sizeof last_message, fmt, ap);
  va_end(ap);
  if (n < 0) snprintf(last_message, sizeof last_message, "%s", rill_strerror(code));
  return code;
}
