/* t_noinit: has _create but no _init, so the module is rejected: LAUNCH fails and
 * _create is never called. */
#include "ctest.h"

void *
t_noinit_create(void) {
	skynet_error(NULL, "NOINIT create called");
	return NULL;
}
