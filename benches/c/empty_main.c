/* The smallest program: what exec of a statically linked binary costs (os_spawn.c). */
int main(void) { return 0; }
