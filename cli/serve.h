/* brine subcommands that live outside cli/brine.c. Each takes argv with
 * argv[0] = the subcommand name and returns the process exit status
 * (0 ok, 1 input rejected, 2 usage or I/O error). */
#ifndef BRINE_SERVE_H
#define BRINE_SERVE_H

/* brine serve [--one-shot]: libpkl as a brine adapter (docs/adapter-protocol.md). */
int cmd_serve(int argc, char **argv);

/* brine impls [--json]: every pickle implementation available here (cli/impls.c). */
int cmd_impls(int argc, char **argv);

/* brine run: cases through implementations, judged against the oracle (cli/run.c). */
int cmd_run(int argc, char **argv);

/* brine fuzz: differential fuzzing with findings deduplicated and minimized (cli/fuzz.c). */
int cmd_fuzz(int argc, char **argv);

#endif
