/* type = "s3" store: placeholder until the module lands. */
#include "receiver/publish/publish.h"

int
store_s3_publish(const struct pub_store *s, const struct pub_bundle *b,
    struct pub_result *res)
{
	return pub_fail(res, true, "not_implemented", "store type not built");
}

int
store_s3_init(void)
{
	return 0;
}

void
store_s3_cleanup(void)
{
}
