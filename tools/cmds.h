/*
 * Subcommands of sluice(1) that live in files of their own.  Each takes
 * argv from the subcommand's name on and returns the exit status (0 ok,
 * 1 failure, 2 usage).
 */
#ifndef SLUICE_TOOLS_CMDS_H
#define SLUICE_TOOLS_CMDS_H

int cmd_replay(int argc, char **argv);
int cmd_link_report(int argc, char **argv);

#endif
