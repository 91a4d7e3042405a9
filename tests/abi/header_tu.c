/* header_tu.c - rill.h alone in a translation unit, compiled by the abi_header_*
 * tests as C99 and as C++11/C++20 with -Wall -Wextra -Werror -pedantic. */
#include <rill.h>

#ifdef __cplusplus
static_assert(sizeof(rill_loop *) == sizeof(void *), "opaque handles");
#endif

int rill_header_tu_uses_the_api(void);
int rill_header_tu_uses_the_api(void) {
  rill_loop *loop = rill_loop_new();
  int rc = loop ? RILL_OK : rill_last_error();
  rill_loop_free(loop);
  return rc == RILL_OK ? (int)RILL_GATHER_RETURN_ERRORS : RILL_EINVAL;
}
