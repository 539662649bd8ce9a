/* sluice-publish: placeholder until main.c lands. */
#include <stdio.h>

int
main(void)
{
	fprintf(stderr, "sluice-publish: not built yet\n");
	return 1;
}
