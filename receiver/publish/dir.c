/* type = "dir" store: placeholder until the module lands. */
#include "receiver/publish/publish.h"

int
store_dir_publish(const struct pub_store *s, const struct pub_bundle *b,
    struct pub_result *res)
{
	return pub_fail(res, true, "not_implemented", "store type not built");
}
