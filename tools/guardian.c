/* pk-guardian: the helper a program using processkit starts once, at its
 * first run with kill_on_owner_death, to kill that program's whole tree
 * when it dies. Installed next to the library (or in
 * libexec/processkit); see pk_real_opts in pk.h. */
#include <pk/pk.h>

int main(int argc, char **argv) { return pk_guardian_main(argc, argv); }
